//! What can go wrong, as types a caller can act on: retry later ([`AlreadyInProgress`]),
//! give up on the record ([`PayloadValidation`], [`MissingKey`]), or know that the handler's
//! side effects happened but could not be recorded ([`CompletionFenced`],
//! [`CompletionFailed`]). A store failure is never turned into a silent success.
//!
//! [`AlreadyInProgress`]: IdempotencyError::AlreadyInProgress
//! [`PayloadValidation`]: IdempotencyError::PayloadValidation
//! [`MissingKey`]: IdempotencyError::MissingKey
//! [`CompletionFenced`]: IdempotencyError::CompletionFenced
//! [`CompletionFailed`]: IdempotencyError::CompletionFailed

use std::error::Error as StdError;

use crate::batch::RecordError;

/// A failure of an [`IdempotencyStore`](super::IdempotencyStore) operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The idempotency table does not exist (or is not active).
    #[error("idempotency table {table:?} does not exist: {message}")]
    TableMissing {
        /// The table name.
        table: String,
        /// What the service said.
        message: String,
    },
    /// The store refused the request for capacity reasons, after the client's own retries.
    #[error("idempotency store throttled the request: {message}")]
    Throttled {
        /// What the service said.
        message: String,
    },
    /// The claim is no longer held by this owner token: its window expired and another
    /// delivery took the key over (or the record is gone). The write was refused.
    #[error("idempotency claim is no longer owned by this invocation")]
    Fenced,
    /// A write staged in a unit of work had a condition that did not hold at commit: the
    /// transaction was cancelled, nothing of it was written, and the claim is still the
    /// caller's. A retry reads the new state and decides again.
    #[error("staged write {position} of the unit of work failed its condition: {message}")]
    StagedConditionFailed {
        /// The write's position among the staged writes (events after them).
        position: usize,
        /// What the service said.
        message: String,
    },
    /// A stored record could not be read back (a missing or malformed attribute).
    #[error("idempotency record {key:?} is malformed: {reason}")]
    CorruptRecord {
        /// The record's key.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The record is beyond what DynamoDB stores (a key over its key limit, an item over
    /// 400 KB); no retry can succeed. See
    /// [`IdempotencyRecord::check_limits`](super::IdempotencyRecord::check_limits).
    #[error("idempotency record {key:?} cannot be stored: {reason}")]
    LimitExceeded {
        /// The record's key.
        key: String,
        /// Which limit, and by how much.
        reason: String,
    },
    /// The request was not sent: the store's circuit breaker is open (see
    /// [`GuardedStore`](super::GuardedStore)). Transient: retry after `retry_at_ms`.
    #[error("idempotency store not called: circuit breaker {breaker} is open until {retry_at_ms} (epoch ms)")]
    Unavailable {
        /// The breaker's name.
        breaker: String,
        /// The breaker's next probe plus jitter (epoch ms).
        retry_at_ms: u64,
    },
    /// Any other failure: network, credentials, validation by the service, ...
    #[error("idempotency store request failed: {message}")]
    Other {
        /// A description including the service's error code when there is one.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl StoreError {
    /// An [`Other`](Self::Other) error with a message and no source.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other {
            message: message.into(),
            source: None,
        }
    }
}

/// The outcome of an idempotent call that did not return a result. `E` is the handler's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyError<E> {
    /// Another delivery of this key holds a live claim. Transient: retry the record later.
    #[error("idempotency key {key} is already in progress (record {record_id})")]
    AlreadyInProgress {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// When the other claim's window ends (epoch ms), if known.
        in_progress_expiry_ms: Option<u64>,
    },
    /// The payload differs, in its validated part, from the one that created the stored
    /// record under the same key. Permanent.
    #[error(
        "payload of record {record_id} does not match the one stored under idempotency key {key}"
    )]
    PayloadValidation {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
    },
    /// The payload has no idempotency key and the policy is to fail. Permanent.
    #[error("record {record_id} has no idempotency key ({source_description})")]
    MissingKey {
        /// The record being processed.
        record_id: String,
        /// Where the key was looked for.
        source_description: String,
    },
    /// The payload's key is an empty or blank string (an empty `eventId`, say): it would make
    /// every such record share one key. Permanent, whatever the missing-key policy.
    #[error("record {record_id} has a blank idempotency key ({source_description})")]
    BlankKey {
        /// The record being processed.
        record_id: String,
        /// Where the key was taken from.
        source_description: String,
    },
    /// The handler ran, but its claim had been taken over, so its result was not stored
    /// (and the new owner's record was left alone).
    #[error("handler for record {record_id} ran but its claim on idempotency key {key} was taken over; result not stored")]
    CompletionFenced {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
    },
    /// The handler ran, but storing its result failed. The claim stays in progress until its
    /// window ends.
    #[error("handler for record {record_id} ran but storing its result under idempotency key {key} failed")]
    CompletionFailed {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The handler ran, but its unit of work (its staged writes and events, with the
    /// completion) was not committed: none of it happened. The claim was removed, so a retry
    /// runs the handler again. Transient.
    #[error("handler for record {record_id} ran but its unit of work under idempotency key {key} was not committed; nothing of it happened")]
    NotCommitted {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The handler failed, and its claim had been taken over, so it was not removed (the new
    /// owner's record was left alone).
    #[error("handler for record {record_id} failed and its claim on idempotency key {key} had been taken over")]
    ReleaseFenced {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// The handler's error.
        handler_error: E,
    },
    /// The handler failed, and removing its claim failed too. The claim stays in progress
    /// until its window ends, after which a retry runs the handler again.
    #[error("handler for record {record_id} failed and removing its claim on idempotency key {key} failed")]
    ReleaseFailed {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// The store's error.
        source: StoreError,
        /// The handler's error.
        handler_error: E,
    },
    /// The store failed before the handler ran; the handler did not run.
    #[error("idempotency store failed for record {record_id} (key {key})")]
    Store {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The handler's own error; its claim was removed, so a retry runs it again.
    #[error("handler failed")]
    Handler(#[source] E),
    /// The handler ran, but its result could not be written as JSON, or its JSON does not
    /// read back as its type (an `f64` NaN is written as `null`). The claim is removed
    /// (a result that cannot be stored cannot be replayed), so the error surfaces on every
    /// delivery until the result type is fixed; if removing it fails too, that is logged
    /// and the claim stays in progress until its window ends.
    #[error(
        "result of the handler for record {record_id} (key {key}) cannot be stored and replayed"
    )]
    ResultSerialization {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The handler ran, but its result is too large to be stored with its record (DynamoDB
    /// stores items of up to 400 KB). The claim is removed, as for
    /// [`ResultSerialization`](Self::ResultSerialization); return less (an id of where the
    /// result is kept, say) for it to be replayed.
    #[error(
        "result of the handler for record {record_id} (key {key}) is too large to store: {reason}"
    )]
    ResultTooLarge {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// Which limit, and by how much.
        reason: String,
    },
    /// A completed record's stored result could not be read as the handler's result type
    /// (the type changed since it was stored). The handler did not run.
    #[error("stored result under idempotency key {key} could not be read for record {record_id}")]
    StoredResultUnreadable {
        /// The idempotency key.
        key: String,
        /// The record being processed.
        record_id: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl<E> IdempotencyError<E> {
    /// Whether retrying the same record later can succeed without any change: the key is in
    /// progress elsewhere, or the store failed before the handler ran.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store { source, .. } => !matches!(source, StoreError::LimitExceeded { .. }),
            Self::AlreadyInProgress { .. } => true,
            _ => false,
        }
    }

    /// Whether the handler ran (its side effects may have happened) before this error.
    pub fn handler_ran(&self) -> bool {
        matches!(
            self,
            Self::CompletionFenced { .. }
                | Self::CompletionFailed { .. }
                | Self::NotCommitted { .. }
                | Self::ReleaseFenced { .. }
                | Self::ReleaseFailed { .. }
                | Self::ResultSerialization { .. }
                | Self::ResultTooLarge { .. }
                | Self::Handler(_)
        )
    }

    /// The handler's error, when the handler ran and failed.
    pub fn handler_error(&self) -> Option<&E> {
        match self {
            Self::Handler(error)
            | Self::ReleaseFenced {
                handler_error: error,
                ..
            }
            | Self::ReleaseFailed {
                handler_error: error,
                ..
            } => Some(error),
            _ => None,
        }
    }
}

/// An idempotency outcome as a record's error: the handler's own error as it was; a key in
/// progress elsewhere as [`FailureKind::InProgress`](crate::batch::FailureKind::InProgress);
/// a store its circuit breaker keeps closed off as
/// [`FailureKind::DependencyUnavailable`](crate::batch::FailureKind::DependencyUnavailable);
/// a store failure, or a handler that ran but could not be recorded, transient (a later
/// delivery finds out what happened); bad input, and work past a DynamoDB limit (a result or
/// events too large for the record), permanent. The idempotency error stays the
/// source, with the store's error under it.
impl From<IdempotencyError<RecordError>> for RecordError {
    fn from(error: IdempotencyError<RecordError>) -> Self {
        match error {
            IdempotencyError::Handler(handler_error) => handler_error,
            IdempotencyError::AlreadyInProgress {
                in_progress_expiry_ms,
                ..
            } => RecordError::in_progress(in_progress_expiry_ms, error),
            IdempotencyError::PayloadValidation { .. }
            | IdempotencyError::MissingKey { .. }
            | IdempotencyError::BlankKey { .. }
            | IdempotencyError::ResultSerialization { .. }
            | IdempotencyError::ResultTooLarge { .. }
            | IdempotencyError::StoredResultUnreadable { .. }
            | IdempotencyError::Store {
                source: StoreError::LimitExceeded { .. },
                ..
            }
            // Staged work past a DynamoDB limit at commit (events too large to ride on their
            // record): the same work is refused again however often it is retried.
            | IdempotencyError::NotCommitted {
                source: StoreError::LimitExceeded { .. },
                ..
            } => RecordError::permanent(error),
            IdempotencyError::Store {
                source: StoreError::Unavailable { retry_at_ms, .. },
                ..
            } => RecordError::dependency_unavailable(retry_at_ms, error),
            IdempotencyError::Store { .. }
            | IdempotencyError::CompletionFenced { .. }
            | IdempotencyError::CompletionFailed { .. }
            | IdempotencyError::NotCommitted { .. }
            | IdempotencyError::ReleaseFenced { .. }
            | IdempotencyError::ReleaseFailed { .. } => RecordError::transient(error),
        }
    }
}
