//! An optional in-process LRU cache of completed records, so that a warm Lambda instance
//! replays a duplicate without a DynamoDB request.
//!
//! Only `COMPLETED` records are cached: an in-progress record changes (completes, is
//! released, is taken over) without this process seeing it. A cached record is dropped once
//! it has expired, by the same rule as the store's. The caller applies payload validation to
//! cache hits exactly as to store hits.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use lru::LruCache;

use super::record::{IdempotencyRecord, Status};

/// Completed records by idempotency key, least recently used evicted first.
#[derive(Debug)]
pub(crate) struct RecordCache {
    records: Mutex<LruCache<String, IdempotencyRecord>>,
}

impl RecordCache {
    /// A cache of at most `capacity` records.
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            records: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The live completed record for `key` at `now_ms`, if cached.
    pub(crate) fn get(&self, key: &str, now_ms: u64) -> Option<IdempotencyRecord> {
        // Every operation is one call on the map, so a poisoned lock still guards a
        // consistent cache.
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        match records.get(key) {
            Some(record) if !record.is_expired(now_ms) => Some(record.clone()),
            Some(_) => {
                records.pop(key);
                None
            }
            None => None,
        }
    }

    /// Caches `record` if it is completed; anything else is ignored.
    pub(crate) fn put(&self, record: IdempotencyRecord) {
        if record.status != Status::Completed {
            return;
        }
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(record.key.clone(), record);
    }

    /// How many records are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, status: Status, expiration: u64) -> IdempotencyRecord {
        IdempotencyRecord {
            key: key.into(),
            status,
            expiration,
            in_progress_expiry_ms: None,
            result: Some("1".into()),
            payload_hash: None,
            owner: None,
        }
    }

    #[test]
    fn caches_completed_records_only_until_they_expire() {
        let cache = RecordCache::new(NonZeroUsize::new(4).unwrap());
        cache.put(record("a", Status::InProgress, 100));
        assert!(cache.is_empty());
        cache.put(record("a", Status::Completed, 100));
        assert!(cache.get("a", 100_999).is_some());
        assert!(cache.get("a", 101_000).is_none());
        assert!(cache.is_empty(), "expired entries are dropped");
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = RecordCache::new(NonZeroUsize::new(2).unwrap());
        cache.put(record("a", Status::Completed, 100));
        cache.put(record("b", Status::Completed, 100));
        assert!(cache.get("a", 0).is_some());
        cache.put(record("c", Status::Completed, 100));
        assert!(cache.get("b", 0).is_none());
        assert!(cache.get("a", 0).is_some() && cache.get("c", 0).is_some());
    }
}
