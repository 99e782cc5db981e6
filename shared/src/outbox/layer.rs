//! The transactional idempotency layer: [`TransactionalLayer`] wraps a handler that stages
//! its work ([`Staged`]) in [`Transactional`], which runs it at most once per key and commits
//! its unit of work with the completion.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::store::TransactionalStore;
use super::unit_of_work::{Staged, UnitOfWork};
use crate::batch::{BatchOutcome, BatchProcessor, RecordError};
use crate::events::EventRecord;
use crate::handler::{each_record, Handled, Invocation, RecordHandler};
use crate::idempotency::{
    batches, process_batch, Commit, Completion, Idempotency, IdempotencyConfig, Outcome, StoreError,
};

/// A tower [`Layer`](tower::Layer) for handlers that return [`Staged`] work: the same
/// idempotency as [`IdempotencyLayer`](crate::idempotency::IdempotencyLayer) (key, claim,
/// replay, fencing), and a completion that commits the handler's staged writes and events
/// in the same transaction ([`TransactionalStore::complete_with`]).
#[derive(Debug)]
pub struct TransactionalLayer<S> {
    idempotency: Arc<Idempotency<S>>,
}

impl<S> Clone for TransactionalLayer<S> {
    fn clone(&self) -> Self {
        Self {
            idempotency: self.idempotency.clone(),
        }
    }
}

impl<S: TransactionalStore> TransactionalLayer<S> {
    /// A layer over `store` with `config`, on the system clock.
    pub fn new(store: S, config: IdempotencyConfig) -> Self {
        Self::from(Idempotency::new(store, config))
    }
}

impl<S> From<Idempotency<S>> for TransactionalLayer<S> {
    /// A layer around an already configured [`Idempotency`] (a test clock, say).
    fn from(idempotency: Idempotency<S>) -> Self {
        Self {
            idempotency: Arc::new(idempotency),
        }
    }
}

impl<H, S> tower::Layer<H> for TransactionalLayer<S> {
    type Service = Transactional<H, S>;

    fn layer(&self, inner: H) -> Transactional<H, S> {
        Transactional {
            inner,
            idempotency: self.idempotency.clone(),
        }
    }
}

/// A staging handler run at most once per idempotency key, its unit of work committed with
/// its completion (made by [`TransactionalLayer`]).
#[derive(Debug)]
pub struct Transactional<H, S> {
    inner: H,
    idempotency: Arc<Idempotency<S>>,
}

impl<H, S> Transactional<H, S> {
    /// The idempotency settings and store.
    pub fn idempotency(&self) -> &Idempotency<S> {
        &self.idempotency
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<H, S, O> RecordHandler for Transactional<H, S>
where
    H: RecordHandler<Output = Staged<O>>,
    S: TransactionalStore,
    O: crate::handler::RecordOutput,
{
    type Output = O;

    async fn handle(
        &self,
        record: &EventRecord,
        invocation: &Invocation,
    ) -> Result<Handled<O>, RecordError> {
        let payload = record.json().map_err(RecordError::permanent)?;
        let remaining = self
            .idempotency
            .remaining_until(invocation.deadline().epoch_ms());
        let outcome = self
            .idempotency
            .execute_with(payload, record.id(), remaining, || {
                // Boxed for the same reason as in `Idempotent`: layout query depth.
                let inner: Pin<Box<dyn Future<Output = _> + '_>> =
                    Box::pin(self.inner.handle(record, invocation));
                async { inner.await.map(|handled| handled.output.into_parts()) }
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
    /// one request, and the completions that finish together committed with their units of
    /// work in shared transactions (each record's part all or nothing on its own).
    async fn handle_batch(
        &self,
        records: Vec<EventRecord>,
        invocation: &Invocation,
        processor: &BatchProcessor,
    ) -> BatchOutcome<Handled<O>> {
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
                    Ok(handled.output.into_parts())
                });
                inner
            },
        )
        .await
    }
}

impl<S: TransactionalStore> Commit<S> for UnitOfWork {
    const ATOMIC: bool = true;

    fn events(&self) -> usize {
        UnitOfWork::events(self).len()
    }

    fn commit(
        self,
        store: &S,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> impl Future<Output = Result<(), StoreError>> {
        store.complete_with(key, owner, result, expiration, self)
    }

    fn commit_alone(
        self,
        store: &S,
        record_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> {
        store.commit_alone(self, record_id)
    }

    fn commit_many(
        store: &S,
        completions: Vec<(Completion, Self)>,
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> {
        store.complete_many_with(completions)
    }
}
