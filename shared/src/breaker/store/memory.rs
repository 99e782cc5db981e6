//! An in-memory [`BreakerStore`]: the semantics of the DynamoDB store within one process.
//! Shared (in an `Arc`) by several breakers, it plays the table for environments in unit
//! tests; alone, it gives a breaker whose open state is this environment's only.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{BreakerStore, BreakerStoreError, OpenOutcome, ProbeClaim};
use crate::breaker::record::{probe_claimable, BreakerRecord};

/// Breaker records in a `Mutex<HashMap>`.
#[derive(Debug, Default)]
pub struct InMemoryBreakerStore {
    records: Mutex<HashMap<String, BreakerRecord>>,
}

impl InMemoryBreakerStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many breakers have a record.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no breaker has a record (none was ever opened).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, BreakerRecord>> {
        // Every update is a single map operation, so a poisoned map is still consistent.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BreakerStore for InMemoryBreakerStore {
    async fn get(&self, name: &str) -> Result<Option<BreakerRecord>, BreakerStoreError> {
        Ok(self.lock().get(name).cloned())
    }

    async fn open(&self, record: &BreakerRecord) -> Result<OpenOutcome, BreakerStoreError> {
        let mut records = self.lock();
        match records.get(&record.name) {
            Some(existing) if !existing.is_openable() => {
                Ok(OpenOutcome::AlreadyOpen(existing.clone()))
            }
            _ => {
                records.insert(record.name.clone(), record.clone());
                Ok(OpenOutcome::Opened)
            }
        }
    }

    async fn claim_probe(
        &self,
        name: &str,
        owner: &str,
        lease_expiry_ms: u64,
        now_ms: u64,
    ) -> Result<ProbeClaim, BreakerStoreError> {
        let mut records = self.lock();
        let existing = records.get(name);
        if !probe_claimable(existing, now_ms) {
            if let Some(existing) = existing {
                return Ok(ProbeClaim::Lost(existing.clone()));
            }
        }
        // Absent: claimed as an open circuit with no probe time and no failed probe, as
        // DynamoDB's update of an absent item writes it.
        let base = existing.cloned().unwrap_or_else(|| BreakerRecord {
            next_probe_ms: None,
            ..BreakerRecord::open(name, now_ms, 0, now_ms)
        });
        let claimed = base.probed_by(owner, lease_expiry_ms, now_ms);
        records.insert(name.to_string(), claimed.clone());
        Ok(ProbeClaim::Won(claimed))
    }

    async fn resolve_probe(
        &self,
        record: &BreakerRecord,
        owner: &str,
    ) -> Result<(), BreakerStoreError> {
        let mut records = self.lock();
        match records.get(&record.name) {
            Some(existing) if existing.is_probe_owned_by(owner) => {
                records.insert(record.name.clone(), record.clone());
                Ok(())
            }
            _ => Err(BreakerStoreError::Fenced {
                name: record.name.clone(),
            }),
        }
    }
}
