//! [`Handler`]: the user's function as a [`RecordHandler`]: the record decoded into what
//! the function asks for, the function run, its error classified.

use std::future::Future;
use std::marker::PhantomData;

use super::{FromRecord, Handled, Invocation, RecordHandler};
use crate::batch::RecordError;
use crate::events::EventRecord;

/// A handler of typed events, implemented by a type of the user's (a service holding its
/// clients): the way to a function whose type can be named, with no boxing.
///
/// ```
/// use eventkit::events::{EventEnvelope, VersionedEvent};
/// use eventkit::handler::{EventHandler, Handler, Invocation};
/// # #[derive(serde::Deserialize)] struct OrderPlaced { order_id: String }
/// # impl VersionedEvent for OrderPlaced { const EVENT_TYPE: &'static str = "OrderPlaced"; const CURRENT_VERSION: u32 = 1; }
///
/// struct Inventory { warehouse: String }
///
/// impl EventHandler for Inventory {
///     type Event = EventEnvelope<OrderPlaced>;
///     type Output = String;
///     type Error = std::io::Error;
///
///     async fn handle(&self, event: Self::Event, invocation: &Invocation) -> Result<String, Self::Error> {
///         Ok(format!("{} reserved in {} ({})", event.data.order_id, self.warehouse, invocation.request_id()))
///     }
/// }
///
/// let handler: Handler<Inventory> = Handler::from_service(Inventory { warehouse: "north".into() });
/// # let _ = handler;
/// ```
pub trait EventHandler {
    /// What the handler asks for ([`FromRecord`]): an `EventEnvelope<T>`, a `Json<T>`, ...
    type Event: FromRecord;
    /// What it returns for an event (stored by the idempotency layer as JSON).
    type Output;
    /// Its error: a [`RecordError`], or any error type that implements
    /// [`Classify`](crate::batch::Classify).
    type Error: Into<RecordError>;

    /// Handles one event of `invocation`.
    fn handle(
        &self,
        event: Self::Event,
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>>;
}

/// The user's function with its decoding: a [`RecordHandler`]. A record that does not decode
/// into what the function asks for fails alone, permanently, naming the record.
#[derive(Clone, Debug)]
pub struct Handler<H> {
    inner: H,
}

impl<F, T> Handler<FnHandler<F, T>> {
    /// Wraps an `async fn(T) -> Result<O, E>`, where `T` is anything [`FromRecord`] (an
    /// `EventEnvelope<MyEvent>`, a `Json<MyStruct>`, the `EventRecord`, or a pair with the
    /// [`Invocation`]) and `E` a [`RecordError`] or a [`Classify`](crate::batch::Classify)
    /// error.
    pub fn new<O, E>(function: F) -> Self
    where
        F: AsyncFn(T) -> Result<O, E>,
    {
        Self {
            inner: FnHandler {
                function,
                input: PhantomData,
            },
        }
    }
}

impl<S, F, T> Handler<StateHandler<S, F, T>> {
    /// Wraps an `async fn(&S, T) -> Result<O, E>` (a method of `S`, for example) with the
    /// state it is called with: clients, tables, configuration, built once at init.
    pub fn with_state<O, E>(state: S, function: F) -> Self
    where
        F: AsyncFn(&S, T) -> Result<O, E>,
    {
        Self {
            inner: StateHandler {
                state,
                function,
                input: PhantomData,
            },
        }
    }
}

impl<H: EventHandler> Handler<H> {
    /// Wraps a type of the user's that implements [`EventHandler`].
    pub fn from_service(service: H) -> Self {
        Self { inner: service }
    }
}

impl<H> Handler<H> {
    /// The wrapped function or service.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<H: EventHandler> RecordHandler for Handler<H> {
    type Output = H::Output;

    async fn handle(
        &self,
        record: &EventRecord,
        invocation: &Invocation,
    ) -> Result<Handled<H::Output>, RecordError> {
        let event = H::Event::from_record(record, invocation).map_err(RecordError::permanent)?;
        let event_type = record
            .json()
            .ok()
            .and_then(|json| json.get("eventType"))
            .and_then(serde_json::Value::as_str);
        let span = crate::telemetry::steps::handler(event_type);
        let output: Result<H::Output, RecordError> =
            tracing::Instrument::instrument(self.inner.handle(event, invocation), span.clone())
                .await
                .map_err(Into::into);
        crate::telemetry::steps::handled(&span, &output);
        Ok(Handled::computed(output?))
    }
}

/// An `async fn(T)` as an [`EventHandler`] (see [`Handler::new`]).
pub struct FnHandler<F, T> {
    function: F,
    // The input type, fixed here so the impl below names it.
    input: PhantomData<fn(T)>,
}

impl<F: Clone, T> Clone for FnHandler<F, T> {
    fn clone(&self) -> Self {
        Self {
            function: self.function.clone(),
            input: PhantomData,
        }
    }
}

impl<F, T> std::fmt::Debug for FnHandler<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnHandler")
            .field("input", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<F, T, O, E> EventHandler for FnHandler<F, T>
where
    F: AsyncFn(T) -> Result<O, E>,
    T: FromRecord,
    E: Into<RecordError>,
{
    type Event = T;
    type Output = O;
    type Error = E;

    async fn handle(&self, event: T, _: &Invocation) -> Result<O, E> {
        (self.function)(event).await
    }
}

/// An `async fn(&S, T)` with its state as an [`EventHandler`] (see [`Handler::with_state`]).
pub struct StateHandler<S, F, T> {
    state: S,
    function: F,
    input: PhantomData<fn(T)>,
}

impl<S: std::fmt::Debug, F, T> std::fmt::Debug for StateHandler<S, F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateHandler")
            .field("state", &self.state)
            .field("input", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<S, F, T, O, E> EventHandler for StateHandler<S, F, T>
where
    F: AsyncFn(&S, T) -> Result<O, E>,
    T: FromRecord,
    E: Into<RecordError>,
{
    type Event = T;
    type Output = O;
    type Error = E;

    async fn handle(&self, event: T, _: &Invocation) -> Result<O, E> {
        (self.function)(&self.state, event).await
    }
}
