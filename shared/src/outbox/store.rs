//! Committing a unit of work with the idempotency completion: one more fenced store
//! operation.

use std::future::Future;
use std::sync::Arc;

use super::unit_of_work::{StagedEvent, UnitOfWork};
use crate::idempotency::{
    Completion, DynamoDbStore, GuardedStore, IdempotencyStore, InMemoryStore, StoreError,
};

/// A unit of work committed with its completion (what [`InMemoryStore::commits`] lists).
#[derive(Clone, Debug)]
pub struct CommittedWork {
    /// The idempotency key whose completion committed it.
    pub key: String,
    /// The staged writes.
    pub writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    /// The staged events.
    pub events: Vec<StagedEvent>,
}

/// An idempotency store that can commit a handler's unit of work in the same atomic step as
/// its completion, fenced on the claim's owner like
/// [`complete`](IdempotencyStore::complete): all of it happens, or none.
///
/// - [`StoreError::Fenced`]: the claim was taken over; nothing was written.
/// - [`StoreError::StagedConditionFailed`]: a staged write's condition did not hold;
///   nothing was written, the claim is still the caller's.
///
/// An event whose outbox item is present already was staged by an earlier commit: its item
/// is left as it is, and the rest commits (present means
/// staged, see the [module docs](super)).
pub trait TransactionalStore: IdempotencyStore {
    /// Marks `key` completed with `result` and `expiration` and commits `work`, if `owner`
    /// still owns the claim.
    fn complete_with(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
        work: UnitOfWork,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Commits `work` alone, for a record processed without idempotency (no key, and the
    /// policy says to process it anyway); `record_id` names it in the outbox.
    fn commit_alone(
        &self,
        work: UnitOfWork,
        record_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`complete_with`](Self::complete_with) for each of `completions`, one result per
    /// completion in the same order, each all or nothing on its own (the batched mode's
    /// group commit). The default commits them concurrently, one transaction each;
    /// [`DynamoDbStore`] shares transactions between them.
    fn complete_many_with(
        &self,
        completions: Vec<(Completion, UnitOfWork)>,
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send {
        futures::future::join_all(
            completions
                .into_iter()
                .map(|(completion, work)| async move {
                    self.complete_with(
                        &completion.key,
                        &completion.owner,
                        &completion.result,
                        completion.expiration,
                        work,
                    )
                    .await
                }),
        )
    }
}

impl<S: TransactionalStore> TransactionalStore for Arc<S> {
    fn complete_many_with(
        &self,
        completions: Vec<(Completion, UnitOfWork)>,
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send {
        (**self).complete_many_with(completions)
    }

    fn commit_alone(
        &self,
        work: UnitOfWork,
        record_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).commit_alone(work, record_id)
    }

    fn complete_with(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
        work: UnitOfWork,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete_with(key, owner, result, expiration, work)
    }
}

/// The completion with its unit of work goes through the store's breaker as every other
/// request (one transaction: one call counted).
impl<S: TransactionalStore> TransactionalStore for GuardedStore<S> {
    async fn complete_with(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
        work: UnitOfWork,
    ) -> Result<(), StoreError> {
        self.one(|| {
            self.store()
                .complete_with(key, owner, result, expiration, work)
        })
        .await
    }

    async fn commit_alone(&self, work: UnitOfWork, record_id: &str) -> Result<(), StoreError> {
        self.one(|| self.store().commit_alone(work, record_id))
            .await
    }

    /// One call counted for the group, failed only when every completion found DynamoDB
    /// unavailable.
    async fn complete_many_with(
        &self,
        completions: Vec<(Completion, UnitOfWork)>,
    ) -> Vec<Result<(), StoreError>> {
        let count = completions.len();
        self.many(count, || self.store().complete_many_with(completions))
            .await
    }
}

/// Records the work next to the completion (see [`InMemoryStore::commits`]); applies none
/// of the writes, which name DynamoDB tables. An event committed before is left out of the
/// record (present means staged).
impl TransactionalStore for InMemoryStore {
    async fn complete_with(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
        work: UnitOfWork,
    ) -> Result<(), StoreError> {
        InMemoryStore::complete_with(self, key, owner, result, expiration, work)
    }

    async fn commit_alone(&self, work: UnitOfWork, record_id: &str) -> Result<(), StoreError> {
        self.record_commit(record_id, work);
        Ok(())
    }
}

/// One `TransactWriteItems`: the completion's update (fenced on the owner), the staged
/// writes, and one conditional put per staged event into the outbox table, or the events on
/// the completion itself (see `transaction.rs`). Events alone on a completion are a plain
/// write of the record.
impl TransactionalStore for DynamoDbStore {
    async fn complete_with(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
        work: UnitOfWork,
    ) -> Result<(), StoreError> {
        if work.is_empty() {
            return self.complete(key, owner, result, expiration).await;
        }
        let completion = Completion {
            key: key.to_string(),
            owner: owner.to_string(),
            result: result.to_string(),
            expiration,
        };
        // A group of one: the batched mode's paths (events alone on a plain completion,
        // else a transaction).
        self.commit_group(vec![(completion, work)])
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::other("completion left without a result")))
    }

    async fn commit_alone(&self, work: UnitOfWork, record_id: &str) -> Result<(), StoreError> {
        if work.is_empty() {
            return Ok(());
        }
        self.commit_work(work, record_id).await
    }

    /// Completions without work share one batch of statements; the others share
    /// transactions of up to 100 actions (see `transaction.rs`).
    async fn complete_many_with(
        &self,
        completions: Vec<(Completion, UnitOfWork)>,
    ) -> Vec<Result<(), StoreError>> {
        self.commit_group(completions).await
    }
}
