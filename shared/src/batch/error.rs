//! Record errors and their class. A permanent error (poison: input that will never succeed)
//! and a transient one are both reported as failures, so SQS redrives either to the DLQ
//! after `maxReceiveCount`; the class decides what the log says and what metrics count.

use std::error::Error as StdError;
use std::fmt;

use super::outcome::FailureKind;
use crate::idempotency::IdempotencyError;

/// Whether retrying a record can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Input that will never succeed: bad JSON, an unknown event, a rejected payload.
    Permanent,
    /// A failure that a later delivery may not meet: a dependency down, a key in progress.
    Transient,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Permanent => "permanent",
            Self::Transient => "transient",
        })
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why one record failed. Any error converts into a transient one with `?`; mark input
/// errors with [`RecordError::permanent`].
#[derive(Debug)]
pub struct RecordError {
    class: ErrorClass,
    kind: FailureKind,
    source: BoxError,
}

impl RecordError {
    /// A permanent (poison) error.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            kind: FailureKind::Error,
            source: error.into(),
        }
    }

    /// A transient error.
    pub fn transient(error: impl Into<BoxError>) -> Self {
        Self {
            class: ErrorClass::Transient,
            kind: FailureKind::Error,
            source: error.into(),
        }
    }

    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> FailureKind {
        self.kind.clone()
    }

    /// The underlying error.
    pub fn source(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// Converts an idempotency outcome, keeping the handler's own error (and its class)
    /// when the handler ran and failed.
    pub fn from_idempotency<E: Into<RecordError>>(error: IdempotencyError<E>) -> Self {
        let class = if error.is_transient() {
            ErrorClass::Transient
        } else {
            ErrorClass::Permanent
        };
        match error {
            IdempotencyError::Handler(handler_error) => handler_error.into(),
            // The claim is left in progress or taken over: a later delivery finds out which.
            IdempotencyError::CompletionFailed { .. }
            | IdempotencyError::CompletionFenced { .. }
            | IdempotencyError::ReleaseFailed { .. }
            | IdempotencyError::ReleaseFenced { .. } => {
                Self::transient(Described(error.to_string()))
            }
            other => Self {
                class,
                kind: match other {
                    IdempotencyError::AlreadyInProgress { .. } => FailureKind::InProgress,
                    _ => FailureKind::Error,
                },
                source: Box::new(Described(other.to_string())),
            },
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        let mut cause = self.source.source();
        while let Some(inner) = cause {
            write!(f, ": {inner}")?;
            cause = inner.source();
        }
        Ok(())
    }
}

impl<E: Into<BoxError>> From<E> for RecordError {
    fn from(error: E) -> Self {
        Self::transient(error)
    }
}

/// An error message that outlives the generic error it came from.
#[derive(Debug)]
struct Described(String);

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Described {}

/// Why a whole invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Every record of the batch failed and the policy is to fail the invocation.
    #[error("all {count} records of the batch failed; first: record {first_id}: {first_reason}")]
    AllFailed {
        /// How many records failed.
        count: usize,
        /// The first failed record's id.
        first_id: String,
        /// Why it failed.
        first_reason: String,
    },
    /// A direct (SNS or EventBridge) invocation had failed records; Lambda's async retries
    /// and the function's DLQ or on-failure destination take over.
    #[error("{failed} of {total} records failed; first: record {first_id}: {first_reason}")]
    RecordsFailed {
        /// How many records failed.
        failed: usize,
        /// How many records the invocation had.
        total: usize,
        /// The first failed record's id.
        first_id: String,
        /// Why it failed.
        first_reason: String,
    },
}

/// Lambda's error response names the failure, so the invocation's error is searchable.
impl From<BatchError> for lambda_runtime::Diagnostic {
    fn from(error: BatchError) -> Self {
        let error_type = match &error {
            BatchError::AllFailed { .. } => "eventkit.AllRecordsFailed",
            BatchError::RecordsFailed { .. } => "eventkit.RecordsFailed",
        };
        Self {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}
