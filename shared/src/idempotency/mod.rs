//! Once-per-key side effects, backed by DynamoDB or memory.
//!
//! A handler wrapped by [`Idempotency::run`] runs at most once per idempotency key while its
//! record lives, however often and however concurrently the record is delivered, and after
//! whatever crash: a duplicate of a completed key replays the stored result without running
//! the handler; a duplicate of a key in progress gets [`IdempotencyError::AlreadyInProgress`]
//! so that it is retried later.
//!
//! ```no_run
//! use std::time::Duration;
//! use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
//!
//! # async fn example(client: aws_sdk_dynamodb::Client, payload: serde_json::Value) {
//! let idempotency = Idempotency::new(
//!     DynamoDbStore::new(client, "idempotency"),
//!     IdempotencyConfig::new("orders").with_key_path("detail.orderId"),
//! );
//! let charged: Result<u64, _> = idempotency
//!     .run(&payload, "message-1", Duration::from_secs(30), || async {
//!         Ok::<_, std::io::Error>(4200) // charge the card once
//!     })
//!     .await;
//! # }
//! ```
//!
//! # How it works
//!
//! 1. The **key** is taken from the payload ([`KeySource`]: the envelope's `eventId` by
//!    default), written as canonical JSON, hashed with SHA-256 and prefixed with the
//!    configured name: `"{name}#{hex}"` (see [`key`] for the exact forms). A payload
//!    without a key fails or runs without idempotency, per [`MissingKeyPolicy`].
//! 2. With a cache configured, a live completed record cached in process is replayed.
//! 3. The key is **claimed** with one conditional write of an `INPROGRESS` record carrying
//!    a fresh owner token, the in-progress expiry (`now + remaining`, epoch milliseconds) and
//!    the record expiry (`now + TTL`, epoch seconds, but never before the in-progress expiry,
//!    so that a short TTL cannot free a key whose handler is still running). The write
//!    succeeds if the key is absent, expired, or in progress with an expired window (a
//!    **takeover**: the claimant ran out of time). Otherwise the existing record decides:
//!    `COMPLETED` replays, `INPROGRESS` is
//!    [`AlreadyInProgress`](IdempotencyError::AlreadyInProgress), and with payload
//!    validation a different payload is
//!    [`PayloadValidation`](IdempotencyError::PayloadValidation).
//! 4. The handler runs. Its result is stored (`COMPLETED`, new expiry) and its error removes
//!    the claim so that a retry runs it again; both writes are **fenced**: accepted only
//!    while the owner token still matches, so an invocation whose claim was taken over can
//!    neither overwrite nor delete the new owner's record. A refused or failed write is
//!    returned as an error, never swallowed.
//!
//! # Batched mode
//!
//! [`Idempotency::execute_batch`] does the same for a whole batch of records in fewer
//! requests: every claim in one batch request, handlers run concurrently, completions and
//! releases group committed within a few milliseconds (5 ms at most), records of the batch
//! sharing a key run once. With the DynamoDB store a batch of ten new records costs two
//! requests (Powertools: twenty), ten duplicates one or two (Powertools: ten).
//!
//! [`IdempotencyLayer`] uses it for every batch of more than one record (an SQS batch)
//! unless [`IdempotencyConfig::with_batched_claims`] says otherwise: the records still run
//! through the function's [`BatchProcessor`](crate::batch::BatchProcessor) (its
//! concurrency, FIFO order and deadline, a span per record), and the claims of records it
//! never starts (after a FIFO failure, or too near the deadline) are released.
//!
//! Each outcome is a `tracing` event with the fields `idempotency_key`, `record_id` and
//! `outcome` (`completed`, `replayed`, `in_progress`, `validation_failed`, `takeover`,
//! `completion_fenced`, `release_fenced`, `handler_failed`, `missing_key`, ...).
//!
//! # Differences from Powertools for AWS Lambda
//!
//! - Completion and deletion are conditional on the owner token (Powertools writes both
//!   unconditionally, so a slow invocation can clobber the record of the one that took over).
//! - A remaining time of zero is a real deadline, not "unknown".
//! - Results are stored as JSON text and replayed exactly, falsy ones included.
//! - The key prefix is a chosen name, not the handler function's name, so refactoring code
//!   never changes keys; the key is computed once, before the handler can mutate anything.
//! - A missing key fails by default.
//! - No global state: each [`Idempotency`] has its own store, config, clock and cache.

mod batch_layer;
mod batched;
mod cache;
// The clock moved to the crate root (breakers and batches read it too); its items are still
// re-exported here.
use crate::clock;
mod config;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod error;
mod group_commit;
pub mod key;
mod layer;
mod record;
mod run;
mod store;

#[cfg(feature = "dynamodb")]
pub(crate) use batch_layer::{batches, process_batch};
pub use batched::{BatchEntry, BatchResult};
#[cfg(any(test, feature = "testing"))]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
pub use config::{
    IdempotencyConfig, MissingKeyPolicy, NameTooLong, DEFAULT_RECORD_TTL, MAX_NAME_BYTES,
};
pub use error::{IdempotencyError, StoreError};
pub use key::{KeyPath, KeySource};
pub use layer::{IdempotencyLayer, Idempotent};
pub use record::{IdempotencyRecord, Status};
#[cfg(feature = "dynamodb")]
pub(crate) use run::Commit;
pub use run::{Idempotency, Outcome};
#[cfg(feature = "dynamodb")]
pub(crate) use store::{copy_error, statement_passes, store_error};
#[cfg(feature = "dynamodb")]
pub use store::{AttributeNames, DynamoDbStore};
pub use store::{
    BoxedStore, ClaimOutcome, Completion, DynStore, GuardedStore, IdempotencyStore, InMemoryStore,
    Release,
};

#[cfg(test)]
mod observability_tests;
#[cfg(test)]
mod tests;
