//! The storage seam of the breakers' shared state: one trait, [`BreakerStore`], with a
//! DynamoDB implementation shared by every execution environment and an in-memory one (one
//! process: unit tests, local runs, or a breaker that needs no sharing).
//!
//! The four operations and their rules are documented on [`BreakerStore`].

mod memory;

#[cfg(feature = "dynamodb")]
mod dynamodb;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::record::BreakerRecord;
use crate::batch::BoxError;

#[cfg(feature = "dynamodb")]
pub use dynamodb::{BreakerAttributeNames, DynamoDbBreakerStore};
pub use memory::InMemoryBreakerStore;

/// What an [`open`](BreakerStore::open) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenOutcome {
    /// The caller's open record is stored.
    Opened,
    /// Another environment's open (or half-open) record was there first; it was kept.
    AlreadyOpen(BreakerRecord),
}

/// What a [`claim_probe`](BreakerStore::claim_probe) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeClaim {
    /// The caller holds the probe: the record as written.
    Won(BreakerRecord),
    /// The probe was not claimable: the record that says why (closed, open with a later
    /// probe, or another environment's probe with a live lease).
    Lost(BreakerRecord),
}

/// A failure of a [`BreakerStore`] operation. Except [`Fenced`](Self::Fenced), the breaker
/// answers each by deciding on this environment's own state (fail-open), never by refusing
/// calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerStoreError {
    /// The caller no longer holds the probe (its lease lapsed and another environment
    /// claimed it); the outcome was not written.
    #[error("breaker {name}: the probe is no longer held by this environment")]
    Fenced {
        /// The breaker.
        name: String,
    },
    /// The stored record could not be read (a missing or malformed attribute).
    #[error("breaker {name}: the stored state is malformed: {reason}")]
    Corrupt {
        /// The breaker.
        name: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The store could not be reached or refused the request (network, throttling, a
    /// missing table, credentials).
    #[error("breaker store request failed: {message}")]
    Unavailable {
        /// What failed, with the service's error code when there is one.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// Persistence for breakers' shared state: four operations, each one request, every write
/// conditional, all logic above them. Times are given by the caller: a store never reads a
/// clock.
///
/// - **get**: the stored record (an environment that has just seen a failure adopts an open
///   state another one wrote);
/// - **open**: write an open record over an absent or closed one
///   ([`BreakerRecord::is_openable`]); otherwise return the stored record, whose probe time
///   is kept;
/// - **claim_probe**: take the probe for an owner token and a lease, if the probe is
///   claimable ([`probe_claimable`](super::probe_claimable)); of environments claiming at
///   once, exactly one wins;
/// - **resolve_probe**: write the probe's outcome (closed, or open until the next probe),
///   only while the caller still holds the probe ([`BreakerRecord::is_probe_owned_by`]).
///
/// `breaker::conformance::check_store` (feature `testing`) checks
/// a store against these rules.
pub trait BreakerStore: Send + Sync {
    /// The record of breaker `name`, if one was ever written.
    fn get(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<BreakerRecord>, BreakerStoreError>> + Send;

    /// Writes `record` (open) if the stored record is absent or closed; otherwise returns the
    /// stored one unchanged.
    fn open(
        &self,
        record: &BreakerRecord,
    ) -> impl Future<Output = Result<OpenOutcome, BreakerStoreError>> + Send;

    /// Makes the record of `name` half-open, its probe held by `owner` until
    /// `lease_expiry_ms`, if the probe is claimable at `now_ms` (an absent record, an open
    /// one whose probe is due, a half-open one whose lease lapsed); otherwise returns the
    /// stored record unchanged. `failed_probes` is kept.
    fn claim_probe(
        &self,
        name: &str,
        owner: &str,
        lease_expiry_ms: u64,
        now_ms: u64,
    ) -> impl Future<Output = Result<ProbeClaim, BreakerStoreError>> + Send;

    /// Replaces the record with `record` (closed, or open until the next probe) if `owner`
    /// still holds the probe; otherwise [`BreakerStoreError::Fenced`].
    fn resolve_probe(
        &self,
        record: &BreakerRecord,
        owner: &str,
    ) -> impl Future<Output = Result<(), BreakerStoreError>> + Send;
}

/// One store shared by several breakers (environments, in a test) or with a test that
/// inspects it.
impl<S: BreakerStore> BreakerStore for Arc<S> {
    fn get(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<BreakerRecord>, BreakerStoreError>> + Send {
        (**self).get(name)
    }

    fn open(
        &self,
        record: &BreakerRecord,
    ) -> impl Future<Output = Result<OpenOutcome, BreakerStoreError>> + Send {
        (**self).open(record)
    }

    fn claim_probe(
        &self,
        name: &str,
        owner: &str,
        lease_expiry_ms: u64,
        now_ms: u64,
    ) -> impl Future<Output = Result<ProbeClaim, BreakerStoreError>> + Send {
        (**self).claim_probe(name, owner, lease_expiry_ms, now_ms)
    }

    fn resolve_probe(
        &self,
        record: &BreakerRecord,
        owner: &str,
    ) -> impl Future<Output = Result<(), BreakerStoreError>> + Send {
        (**self).resolve_probe(record, owner)
    }
}

/// [`BreakerStore`] with boxed futures, so that a [`Breaker`](super::Breaker) holds any
/// store without a type parameter (breakers of different stores go into one layer). A store
/// is asked rarely (see the module docs of [`breaker`](super)), so the boxing costs nothing.
pub(crate) trait ErasedStore: Send + Sync {
    fn get<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakerRecord>, BreakerStoreError>>;
    fn open<'a>(
        &'a self,
        record: &'a BreakerRecord,
    ) -> BoxFuture<'a, Result<OpenOutcome, BreakerStoreError>>;
    fn claim_probe<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        lease_expiry_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ProbeClaim, BreakerStoreError>>;
    fn resolve_probe<'a>(
        &'a self,
        record: &'a BreakerRecord,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), BreakerStoreError>>;
}

impl<S: BreakerStore> ErasedStore for S {
    fn get<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakerRecord>, BreakerStoreError>> {
        Box::pin(BreakerStore::get(self, name))
    }

    fn open<'a>(
        &'a self,
        record: &'a BreakerRecord,
    ) -> BoxFuture<'a, Result<OpenOutcome, BreakerStoreError>> {
        Box::pin(BreakerStore::open(self, record))
    }

    fn claim_probe<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        lease_expiry_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ProbeClaim, BreakerStoreError>> {
        Box::pin(BreakerStore::claim_probe(
            self,
            name,
            owner,
            lease_expiry_ms,
            now_ms,
        ))
    }

    fn resolve_probe<'a>(
        &'a self,
        record: &'a BreakerRecord,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), BreakerStoreError>> {
        Box::pin(BreakerStore::resolve_probe(self, record, owner))
    }
}
