//! The persistence seam: one trait, [`IdempotencyStore`], with a DynamoDB implementation for
//! production and an in-memory one for unit tests and local runs. Both implement the same
//! four operations with the same semantics, and the integration tests run one suite against
//! both.
//!
//! The operations are deliberately few and conditional, so that each is one request:
//!
//! - **claim**: write an `INPROGRESS` record if the key is absent, expired, or in progress
//!   with an expired in-progress window ([`IdempotencyRecord::is_claimable`]); otherwise
//!   return the live record;
//! - **complete**: store the result, only if the caller still owns the claim;
//! - **release**: remove the claim after a handler error, only if the caller still owns it;
//! - **get**: read a record (diagnostics and tests; the claim already returns what exists).
//!
//! Owning the claim means holding the owner token written by the claim. A delivery whose
//! window expired and whose key was taken over gets [`StoreError::Fenced`] from complete and
//! release instead of overwriting or deleting the new owner's record.
//!
//! Each operation also has a batch form (`claim_many`, `complete_many`, `release_many`) with
//! the same semantics per key, for the batched layer. Their default implementations run the
//! single-record operations concurrently, so a store that only implements the four keeps
//! working; the DynamoDB store sends a whole batch in one or two requests.

mod batch;
mod dynamic;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod guarded;
mod memory;

use std::future::Future;
use std::sync::Arc;

pub use batch::{Completion, Release};
pub use dynamic::{BoxedStore, DynStore};
#[cfg(feature = "dynamodb")]
pub(crate) use dynamodb::{copy_error, statement_passes, store_error};
#[cfg(feature = "dynamodb")]
pub use dynamodb::{AttributeNames, DynamoDbStore};
pub use guarded::GuardedStore;
pub use memory::InMemoryStore;

use super::error::StoreError;
use super::record::{IdempotencyRecord, Status};

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key is now claimed by the caller's record.
    Claimed {
        /// The record the claim replaced, when there was one (expired, or in progress with
        /// an expired window: a takeover).
        replaced: Option<IdempotencyRecord>,
    },
    /// A live record holds the key; it was not changed.
    Exists(IdempotencyRecord),
}

impl ClaimOutcome {
    /// This outcome, seen by the caller that wrote `claim`: a live record carrying the
    /// claim's own owner token is the claim itself, written by an earlier try of the same
    /// request whose answer was lost (the SDK retried it, and the retry met the record it
    /// had just written). Taken for someone else's, it would block the key until the
    /// in-progress window ends, and fail every delivery until then.
    pub(crate) fn seen_by(self, claim: &IdempotencyRecord) -> Self {
        match self {
            Self::Exists(existing)
                if existing.status == Status::InProgress
                    && existing.owner.is_some()
                    && existing.owner == claim.owner =>
            {
                tracing::info!(idempotency_key = %claim.key, outcome = "own_claim", "the claim's answer was lost and it was sent again; the record found is this claim's own");
                Self::Claimed { replaced: None }
            }
            outcome => outcome,
        }
    }
}

/// Persistence for idempotency records: four conditional operations, each one request.
///
/// - **claim**: write an `INPROGRESS` record if the key is absent, expired, or in progress
///   with an expired in-progress window ([`IdempotencyRecord::is_claimable`]); otherwise
///   return the live record;
/// - **complete**: store the result, only if the caller still owns the claim;
/// - **release**: remove the claim after a handler error, only if the caller still owns it
///   and it is still in progress (a completed record is never released);
/// - **get**: read a record (diagnostics and tests; the claim already returns what exists).
///
/// Owning the claim means holding the owner token written by the claim; a caller whose claim
/// was taken over gets [`StoreError::Fenced`] from complete and release. A store to choose at
/// run time is a [`BoxedStore`].
pub trait IdempotencyStore: Send + Sync {
    /// Writes `record` (status `INPROGRESS`, with its owner token) unless a live record holds
    /// the key at `now_ms` (epoch milliseconds), in which case that record is returned.
    fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Marks the key `COMPLETED` with `result` (JSON text) and a new `expiration` (epoch
    /// seconds), if `owner` still owns the claim; otherwise [`StoreError::Fenced`].
    fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the claim if `owner` still owns it and it is still in progress; otherwise
    /// [`StoreError::Fenced`].
    fn release(
        &self,
        key: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The record stored under `key`, expired or not.
    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;

    /// [`claim`](Self::claim) for each of `records`, with one outcome per record in the same
    /// order. A key given twice is claimed once: its later copies see the first one's claim
    /// as [`ClaimOutcome::Exists`]. The default runs the claims concurrently.
    fn claim_many(
        &self,
        records: &[IdempotencyRecord],
        now_ms: u64,
    ) -> impl Future<Output = Vec<Result<ClaimOutcome, StoreError>>> + Send {
        batch::in_rounds(
            records,
            |record| record.key.as_str(),
            move |record| self.claim(record, now_ms),
        )
    }

    /// [`complete`](Self::complete) for each of `completions`, one result per completion in
    /// the same order. The default runs them concurrently.
    fn complete_many(
        &self,
        completions: &[Completion],
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send {
        batch::in_rounds(
            completions,
            |completion| completion.key.as_str(),
            |completion| {
                self.complete(
                    &completion.key,
                    &completion.owner,
                    &completion.result,
                    completion.expiration,
                )
            },
        )
    }

    /// [`release`](Self::release) for each of `releases`, one result per release in the same
    /// order. The default runs them concurrently.
    fn release_many(
        &self,
        releases: &[Release],
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send {
        batch::in_rounds(
            releases,
            |release| release.key.as_str(),
            |release| self.release(&release.key, &release.owner),
        )
    }
}

/// Sharing one store between several [`Idempotency`](super::Idempotency) instances (or with
/// a test that inspects it).
impl<S: IdempotencyStore> IdempotencyStore for Arc<S> {
    fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send {
        (**self).claim(record, now_ms)
    }

    fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(key, owner, result, expiration)
    }

    fn release(
        &self,
        key: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(key, owner)
    }

    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send {
        (**self).get(key)
    }

    fn claim_many(
        &self,
        records: &[IdempotencyRecord],
        now_ms: u64,
    ) -> impl Future<Output = Vec<Result<ClaimOutcome, StoreError>>> + Send {
        (**self).claim_many(records, now_ms)
    }

    fn complete_many(
        &self,
        completions: &[Completion],
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send {
        (**self).complete_many(completions)
    }

    fn release_many(
        &self,
        releases: &[Release],
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send {
        (**self).release_many(releases)
    }
}
