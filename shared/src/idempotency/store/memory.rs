//! An in-memory [`IdempotencyStore`]: the same semantics as DynamoDB, for unit tests and
//! local runs without a cloud. Records live in one process, so it gives no protection across
//! Lambda instances; expired records are replaced on claim but otherwise kept (there is no
//! TTL sweeper), which is fine for the short-lived processes it is meant for.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{ClaimOutcome, IdempotencyStore, Release};
use crate::idempotency::error::StoreError;
use crate::idempotency::record::{IdempotencyRecord, Status};

/// Idempotency records in a `Mutex<HashMap>`.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    records: Mutex<HashMap<String, IdempotencyRecord>>,
    /// Units of work committed with their completions (see
    /// [`TransactionalStore`](crate::outbox::TransactionalStore)).
    #[cfg(feature = "dynamodb")]
    commits: Mutex<Vec<crate::outbox::CommittedWork>>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are stored, expired ones included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Inserts or replaces a record unconditionally: for tests that need a record in a
    /// particular state. (Feature `testing`.)
    #[cfg(any(test, feature = "testing"))]
    pub fn insert(&self, record: IdempotencyRecord) {
        self.lock().insert(record.key.clone(), record);
    }

    /// The units of work committed with their completions, in commit order: what a
    /// DynamoDB-backed store would have written in each completion's transaction.
    #[cfg(feature = "dynamodb")]
    pub fn commits(&self) -> Vec<crate::outbox::CommittedWork> {
        self.commits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Completes `key` and records `work`, as one step under the lock: both or neither.
    #[cfg(feature = "dynamodb")]
    pub(crate) fn complete_with(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
        work: crate::outbox::UnitOfWork,
    ) -> Result<(), StoreError> {
        let mut records = self.lock();
        match records.get_mut(key) {
            Some(record) if owned_by(record, owner) => {
                completed(record, result, expiration).check_limits()?;
                record.status = Status::Completed;
                record.result = Some(result.to_string());
                record.expiration = expiration;
                self.record_commit(key, work);
                Ok(())
            }
            _ => Err(StoreError::Fenced),
        }
    }

    /// Records `work`, without the events an earlier commit staged (present means staged,
    /// as the outbox's conditional put on DynamoDB).
    #[cfg(feature = "dynamodb")]
    pub(crate) fn record_commit(&self, key: &str, work: crate::outbox::UnitOfWork) {
        let (writes, mut events) = work.into_parts();
        let mut commits = self.commits.lock().unwrap_or_else(PoisonError::into_inner);
        events.retain(|event| {
            !commits
                .iter()
                .flat_map(|commit| &commit.events)
                .any(|earlier| crate::outbox::is_same_item(earlier, event))
        });
        commits.push(crate::outbox::CommittedWork {
            key: key.to_string(),
            writes,
            events,
        });
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, IdempotencyRecord>> {
        // A panic while holding the lock cannot leave a half-written record (every update is
        // a single map operation), so a poisoned map is still consistent.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `record` as its completion would leave it, to check against the limits before writing.
fn completed(record: &IdempotencyRecord, result: &str, expiration: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        status: Status::Completed,
        result: Some(result.to_string()),
        expiration,
        ..record.clone()
    }
}

fn owned_by(record: &IdempotencyRecord, owner: &str) -> bool {
    record.owner.as_deref() == Some(owner)
}

impl IdempotencyStore for InMemoryStore {
    async fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        record.check_limits()?;
        let mut records = self.lock();
        match records.get(&record.key) {
            Some(existing) if !existing.is_claimable(now_ms) => {
                Ok(ClaimOutcome::Exists(existing.clone()))
            }
            _ => {
                let replaced = records.insert(record.key.clone(), record.clone());
                Ok(ClaimOutcome::Claimed { replaced })
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> Result<(), StoreError> {
        let mut records = self.lock();
        match records.get_mut(key) {
            Some(record) if owned_by(record, owner) => {
                completed(record, result, expiration).check_limits()?;
                record.status = Status::Completed;
                record.result = Some(result.to_string());
                record.expiration = expiration;
                Ok(())
            }
            _ => Err(StoreError::Fenced),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let mut records = self.lock();
        match records.get(key) {
            Some(record) if owned_by(record, owner) && record.status == Status::InProgress => {
                records.remove(key);
                Ok(())
            }
            found => Release {
                key: key.to_string(),
                owner: owner.to_string(),
            }
            .refused(found),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim_record(owner: &str, now_ms: u64, window_ms: u64) -> IdempotencyRecord {
        IdempotencyRecord {
            key: "fn#k".into(),
            status: Status::InProgress,
            expiration: now_ms / 1000 + 3600,
            in_progress_expiry_ms: Some(now_ms + window_ms),
            result: None,
            payload_hash: None,
            owner: Some(owner.into()),
        }
    }

    #[tokio::test]
    async fn claim_complete_and_duplicate() {
        let store = InMemoryStore::new();
        let first = claim_record("a", 10_000, 1_000);
        assert_eq!(
            store.claim(&first, 10_000).await.unwrap(),
            ClaimOutcome::Claimed { replaced: None }
        );
        let second = claim_record("b", 10_500, 1_000);
        assert_eq!(
            store.claim(&second, 10_500).await.unwrap(),
            ClaimOutcome::Exists(first.clone())
        );
        store.complete("fn#k", "a", "42", 99).await.unwrap();
        let stored = store.get("fn#k").await.unwrap().unwrap();
        assert_eq!(stored.status, Status::Completed);
        assert_eq!(stored.result.as_deref(), Some("42"));
        assert_eq!(stored.expiration, 99);
    }

    #[tokio::test]
    async fn takeover_fences_the_old_owner() {
        let store = InMemoryStore::new();
        store
            .claim(&claim_record("a", 10_000, 100), 10_000)
            .await
            .unwrap();
        let taken = store
            .claim(&claim_record("b", 10_101, 100), 10_101)
            .await
            .unwrap();
        assert!(
            matches!(taken, ClaimOutcome::Claimed { replaced: Some(old) } if old.owner.as_deref() == Some("a"))
        );
        assert!(matches!(
            store.complete("fn#k", "a", "1", 99).await,
            Err(StoreError::Fenced)
        ));
        assert!(matches!(
            store.release("fn#k", "a").await,
            Err(StoreError::Fenced)
        ));
        assert_eq!(store.len(), 1);
        store.release("fn#k", "b").await.unwrap();
        assert!(store.is_empty());
        assert!(matches!(
            store.complete("fn#k", "b", "1", 99).await,
            Err(StoreError::Fenced)
        ));
    }
}
