//! Record handlers and the layers around them.
//!
//! One record's processing is a [`RecordHandler`]: given a record and its [`Invocation`], it
//! returns the output (and whether it was [replayed](Handled::replayed)) or a
//! [`RecordError`]. Everything composes on that one trait:
//!
//! - [`Handler`] decodes the record into what the user's function asks for ([`FromRecord`])
//!   and runs it: a plain `async fn` ([`Handler::new`]), an `async fn` with state
//!   ([`Handler::with_state`]), or a type of the user's that implements [`EventHandler`]
//!   ([`Handler::from_service`], whose type can be named without boxing);
//! - layers wrap a record handler in another one: [`IdempotencyLayer`] runs it once per
//!   key and replays duplicates. Layers are tower [`Layer`]s, added with
//!   [`RecordHandlerExt::layer`] (or a `tower::ServiceBuilder`);
//! - [`EventFunction`](crate::runtime::EventFunction) runs a record handler over each
//!   invocation's batch.
//!
//! ```
//! use eventkit::events::{EventEnvelope, VersionedEvent};
//! use eventkit::handler::{Handler, RecordHandlerExt};
//! use eventkit::idempotency::{IdempotencyConfig, IdempotencyLayer, InMemoryStore};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct OrderPlaced { order_id: String }
//!
//! impl VersionedEvent for OrderPlaced {
//!     const EVENT_TYPE: &'static str = "OrderPlaced";
//!     const CURRENT_VERSION: u32 = 1;
//! }
//!
//! async fn reserve(order: EventEnvelope<OrderPlaced>) -> Result<String, std::io::Error> {
//!     Ok(order.data.order_id)
//! }
//!
//! let handler = Handler::new(reserve)
//!     .layer(IdempotencyLayer::new(InMemoryStore::new(), IdempotencyConfig::new("inventory")));
//! # let _ = handler;
//! ```
//!
//! [`IdempotencyLayer`]: crate::idempotency::IdempotencyLayer
//! [`Layer`]: tower::Layer

mod extract;
mod function;
mod invocation;

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use std::pin::Pin;

use crate::batch::{BatchOutcome, BatchProcessor, RecordError};
use crate::events::EventRecord;

pub use extract::{FromRecord, Json};
pub use function::{EventHandler, FnHandler, Handler, StateHandler};
pub use invocation::Invocation;

/// A record's successful result.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Handled<O> {
    /// The function's output, computed now or stored by an earlier delivery.
    pub output: O,
    /// True when the idempotency layer answered with the stored result and the function did
    /// not run: the record was a duplicate.
    pub replayed: bool,
}

impl<O> Handled<O> {
    /// An output computed now.
    pub fn computed(output: O) -> Self {
        Self {
            output,
            replayed: false,
        }
    }
}

/// One record's processing: decode, run, say whether the result was replayed. Implemented by
/// [`Handler`] (the user's function) and by every layer around it.
pub trait RecordHandler {
    /// What the handler returns for a record (stored by the idempotency layer as JSON, so
    /// a function's outputs are [`RecordOutput`]s).
    type Output;

    /// Processes one record of `invocation`.
    fn handle(
        &self,
        record: &EventRecord,
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Handled<Self::Output>, RecordError>>;

    /// Processes a whole batch with `processor`: by default, [`handle`](Self::handle) for
    /// each record. A layer that does better with the whole batch in view overrides it: the
    /// idempotency layers claim every record of a batch in one request. A layer of your own
    /// that wraps such a layer keeps that only if it forwards this method too.
    fn handle_batch<'a>(
        &'a self,
        records: Vec<EventRecord>,
        invocation: &'a Invocation,
        processor: &'a BatchProcessor,
    ) -> impl Future<Output = BatchOutcome<Handled<Self::Output>>> {
        each_record(self, records, invocation, processor)
    }
}

/// [`RecordHandler::handle_batch`]'s default: `handler`'s `handle` for each record, run by
/// `processor`. Layers that batch call it for what they do not batch.
pub(crate) fn each_record<'a, H: RecordHandler + ?Sized>(
    handler: &'a H,
    records: Vec<EventRecord>,
    invocation: &'a Invocation,
    processor: &'a BatchProcessor,
) -> impl Future<Output = BatchOutcome<Handled<H::Output>>> + 'a {
    processor.process(records, invocation.deadline(), move |record| {
        // Boxed: the composed future type (runtime, batch, idempotency, SDK) is otherwise
        // deep enough to overflow rustc's layout query depth in a function's `main`.
        let handled: Pin<Box<dyn Future<Output = _> + 'a>> =
            Box::pin(async move { handler.handle(&record, invocation).await });
        handled
    })
}

/// What a function's record handler may return: a value that survives a JSON round trip
/// (the idempotency layer stores it and replays it for duplicates).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a function's record output",
    note = "a handler that returns `Staged` work runs under a `TransactionalLayer`, which commits the work and returns the output",
    note = "record outputs are stored and replayed as JSON: they implement `Serialize` and `DeserializeOwned`"
)]
pub trait RecordOutput: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> RecordOutput for T {}

/// Adds [`layer`](Self::layer) to every record handler.
pub trait RecordHandlerExt: RecordHandler + Sized {
    /// Wraps this handler in `layer` (for example an
    /// [`IdempotencyLayer`](crate::idempotency::IdempotencyLayer)). The layer added last runs
    /// first.
    fn layer<L: tower::Layer<Self>>(self, layer: L) -> L::Service {
        layer.layer(self)
    }
}

impl<H: RecordHandler> RecordHandlerExt for H {}

/// A shared handler handles records as the handler does.
impl<H: RecordHandler> RecordHandler for std::sync::Arc<H> {
    type Output = H::Output;

    fn handle(
        &self,
        record: &EventRecord,
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Handled<Self::Output>, RecordError>> {
        (**self).handle(record, invocation)
    }

    fn handle_batch<'a>(
        &'a self,
        records: Vec<EventRecord>,
        invocation: &'a Invocation,
        processor: &'a BatchProcessor,
    ) -> impl Future<Output = BatchOutcome<Handled<Self::Output>>> {
        (**self).handle_batch(records, invocation, processor)
    }
}

#[cfg(test)]
mod tests;
