//! The idempotency layer: [`IdempotencyLayer`] wraps any record handler in [`Idempotent`],
//! which runs it at most once per idempotency key and replays the stored result for
//! duplicates, saying so in its result ([`Handled::replayed`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::batch_layer::{batches, process_batch};
use super::config::IdempotencyConfig;
use super::run::{Idempotency, NoWork, Outcome};
use super::store::IdempotencyStore;
use crate::batch::{BatchOutcome, BatchProcessor, RecordError};
use crate::events::EventRecord;
use crate::handler::{each_record, Handled, Invocation, RecordHandler};

/// A tower [`Layer`](tower::Layer) that makes a record handler idempotent (see the
/// [module docs](super) for the semantics).
///
/// The key is taken from the record's decoded body (the innermost message, not the Lambda
/// event): by default the envelope's `eventId`, or what
/// [`IdempotencyConfig::with_key_path`] selects. The in-progress window is the time left
/// before the invocation's deadline, measured on the layer's clock.
///
/// A batch of more than one record (an SQS batch) is claimed in one request and its
/// completions share requests (see [`Idempotency::execute_batch`]), unless
/// [`IdempotencyConfig::with_batched_claims`] turns that off.
#[derive(Debug)]
pub struct IdempotencyLayer<S> {
    idempotency: Arc<Idempotency<S>>,
}

impl<S> Clone for IdempotencyLayer<S> {
    fn clone(&self) -> Self {
        Self {
            idempotency: self.idempotency.clone(),
        }
    }
}

impl<S: IdempotencyStore> IdempotencyLayer<S> {
    /// A layer over `store` with `config`, on the system clock.
    pub fn new(store: S, config: IdempotencyConfig) -> Self {
        Self::from(Idempotency::new(store, config))
    }
}

impl<S> From<Idempotency<S>> for IdempotencyLayer<S> {
    /// A layer around an already configured [`Idempotency`] (a test clock, say).
    fn from(idempotency: Idempotency<S>) -> Self {
        Self {
            idempotency: Arc::new(idempotency),
        }
    }
}

impl<H, S> tower::Layer<H> for IdempotencyLayer<S> {
    type Service = Idempotent<H, S>;

    fn layer(&self, inner: H) -> Idempotent<H, S> {
        Idempotent {
            inner,
            idempotency: self.idempotency.clone(),
        }
    }
}

/// A record handler run at most once per idempotency key (made by [`IdempotencyLayer`]).
#[derive(Debug)]
pub struct Idempotent<H, S> {
    inner: H,
    idempotency: Arc<Idempotency<S>>,
}

impl<H, S> Idempotent<H, S> {
    /// The idempotency settings and store.
    pub fn idempotency(&self) -> &Idempotency<S> {
        &self.idempotency
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<H, S> RecordHandler for Idempotent<H, S>
where
    H: RecordHandler,
    H::Output: crate::handler::RecordOutput,
    S: IdempotencyStore,
{
    type Output = H::Output;

    async fn handle(
        &self,
        record: &EventRecord,
        invocation: &Invocation,
    ) -> Result<Handled<H::Output>, RecordError> {
        // A body that is not JSON has no key: it fails as the poison it is, before any claim.
        let payload = record.json().map_err(RecordError::permanent)?;
        let remaining = self
            .idempotency
            .remaining_until(invocation.deadline().epoch_ms());
        let outcome = self
            .idempotency
            .execute(payload, record.id(), remaining, || {
                // Boxed: the inner handler's future, nested in the store's and the batch's,
                // is otherwise deep enough to overflow rustc's layout query depth.
                let inner: Pin<Box<dyn Future<Output = _> + '_>> =
                    Box::pin(self.inner.handle(record, invocation));
                async { inner.await.map(|handled| handled.output) }
            })
            .await?;
        Ok(match outcome {
            Outcome::Computed(output) => Handled::computed(output),
            Outcome::Replayed(output) => Handled {
                output,
                replayed: true,
            },
        })
    }

    /// With batched claims (the default) and more than one record: every record claimed in
    /// one request, completions group committed (see
    /// [`IdempotencyConfig::with_batched_claims`](super::IdempotencyConfig::with_batched_claims)).
    async fn handle_batch(
        &self,
        records: Vec<EventRecord>,
        invocation: &Invocation,
        processor: &BatchProcessor,
    ) -> BatchOutcome<Handled<H::Output>> {
        if !batches(&self.idempotency, &records) {
            return each_record(self, records, invocation, processor).await;
        }
        process_batch(
            &self.idempotency,
            records,
            invocation,
            processor,
            |record| {
                let inner: Pin<Box<dyn Future<Output = _> + '_>> = Box::pin(async move {
                    let handled = self.inner.handle(&record, invocation).await?;
                    Ok((handled.output, NoWork))
                });
                inner
            },
        )
        .await
    }
}
