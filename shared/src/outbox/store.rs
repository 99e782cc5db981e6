//! Committing a unit of work with the idempotency completion: one more fenced store
//! operation.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::item::to_item;
use super::unit_of_work::{StagedEvent, UnitOfWork};
use crate::idempotency::{DynamoDbStore, IdempotencyStore, InMemoryStore, StoreError};

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
}

impl<S: TransactionalStore> TransactionalStore for Arc<S> {
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

/// Records the work next to the completion (see [`InMemoryStore::commits`]); applies none
/// of the writes, which name DynamoDB tables.
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
/// writes, and one put per staged event into the outbox table.
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
        let completion = self.completion_update(key, owner, result, expiration)?;
        let completion = TransactWriteItem::builder().update(completion).build();
        // The owner token is the claim's, unique per claim: DynamoDB treats a retried
        // request with the same token (the SDK's own retries) as the same transaction.
        self.transact(Some(completion), work, key, Some(owner))
            .await
    }

    async fn commit_alone(&self, work: UnitOfWork, record_id: &str) -> Result<(), StoreError> {
        if work.is_empty() {
            return Ok(());
        }
        self.transact(None, work, record_id, None).await
    }
}

impl DynamoDbStore {
    async fn transact(
        &self,
        completion: Option<TransactWriteItem>,
        work: UnitOfWork,
        committed_by: &str,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        let first_staged = usize::from(completion.is_some());
        let (writes, events) = work.into_parts();
        let mut actions = Vec::with_capacity(writes.len() + events.len() + 1);
        actions.extend(completion);
        actions.extend(writes);
        if !events.is_empty() {
            let Some(outbox) = self.outbox_table() else {
                return Err(StoreError::other(
                    "events were staged but the store has no outbox table (DynamoDbStore::with_outbox)",
                ));
            };
            let now = chrono::Utc::now();
            for staged in &events {
                let put = Put::builder()
                    .table_name(outbox)
                    .set_item(Some(to_item(staged, committed_by, now)))
                    .build()
                    .map_err(|error| StoreError::other(error.to_string()))?;
                actions.push(TransactWriteItem::builder().put(put).build());
            }
        }
        let outcome = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(actions))
            .set_client_request_token(token.map(str::to_string))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error) => Err(commit_error(self.table(), first_staged, error)),
        }
    }
}

/// A cancelled transaction names the action whose condition failed: the first is the
/// completion (fenced), any other a staged write.
fn commit_error<R>(
    table: &str,
    first_staged: usize,
    error: SdkError<TransactWriteItemsError, R>,
) -> StoreError
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    {
        let reasons = cancelled.cancellation_reasons();
        let failed = reasons
            .iter()
            .position(|reason| reason.code() == Some("ConditionalCheckFailed"));
        match failed {
            Some(position) if position < first_staged => return StoreError::Fenced,
            Some(position) => {
                return StoreError::StagedConditionFailed {
                    position: position - first_staged,
                    message: reasons[position].message().unwrap_or_default().to_string(),
                }
            }
            None => {
                let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
                return StoreError::other(format!(
                    "unit of work's transaction was cancelled ({}): {}",
                    codes.join(", "),
                    DisplayErrorContext(&error)
                ));
            }
        }
    }
    crate::idempotency::store_error(table, error)
}
