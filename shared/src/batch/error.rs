//! Record errors and their class. A permanent error (poison: input that will never succeed)
//! and a transient one are both reported as failures, so SQS redrives either to the DLQ
//! after `maxReceiveCount`; the class decides what the log says and what metrics count.

use std::error::Error as StdError;
use std::fmt;

/// Why a record is reported failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The handler (or decoding, or idempotency) returned an error.
    Error,
    /// Another delivery of the same idempotency key is in progress.
    InProgress,
    /// The handler panicked; the panic was contained to this record.
    Panicked,
    /// FIFO: an earlier record of the same message group failed, so this one was not run.
    SkippedAfterGroupFailure,
    /// FIFO with [`FifoPolicy::StopBatch`](super::FifoPolicy::StopBatch): an earlier record
    /// failed, so this one was not run.
    SkippedAfterBatchStopped,
    /// The invocation was too close to its deadline to start this record.
    DeadlineReached,
    /// A dependency the record needs is unavailable (its circuit breaker is open), so the
    /// record was not attempted, or its call was not made; a retry can first succeed after
    /// the breaker's next probe ([`RecordError::retry_at_ms`]).
    DependencyUnavailable,
}

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

/// A boxed error, as [`RecordError`] keeps its cause.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Says once, on an error type, whether a record that failed with it can succeed later.
///
/// Implement it on your handler's error type and return that type from the handler (or use
/// `?` into a [`RecordError`]): the class travels with the error to the batch response and
/// the logs. The default is [`ErrorClass::Transient`], so `impl Classify for MyError {}`
/// declares an error that a retry may fix.
///
/// ```
/// use eventkit::batch::{Classify, ErrorClass};
///
/// #[derive(Debug, thiserror::Error)]
/// enum StockError {
///     #[error("order {0} has no items")]
///     InvalidOrder(String),
///     #[error("inventory table unavailable")]
///     Table(#[source] std::io::Error),
/// }
///
/// impl Classify for StockError {
///     fn class(&self) -> ErrorClass {
///         match self {
///             Self::InvalidOrder(_) => ErrorClass::Permanent,
///             Self::Table(_) => ErrorClass::Transient,
///         }
///     }
/// }
/// ```
pub trait Classify {
    /// Whether retrying can help; transient unless the type says otherwise.
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }

    /// When the error says a dependency is unavailable until a known instant (epoch ms): a
    /// circuit breaker's next probe. `?` then makes the record's error
    /// [`RecordError::dependency_unavailable`], whose redelivery aims past that instant.
    /// `None` (the default) for every other error; an error type that wraps a
    /// [`BreakerError`](crate::breaker::BreakerError) passes its answer on.
    fn unavailable_until_ms(&self) -> Option<u64> {
        None
    }
}

/// I/O failures are worth retrying.
impl Classify for std::io::Error {}

/// A JSON value that does not fit a type will not fit it on the next delivery either.
impl Classify for serde_json::Error {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// A record that does not decode will not decode on the next delivery either.
impl Classify for crate::events::DecodeError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// An event the bus, topic or queue did not accept after the retries: a later delivery may
/// publish it, unless it was too large for its carrier, which it stays.
impl Classify for crate::events::PublishFailure {
    fn class(&self) -> ErrorClass {
        if self.code == crate::events::EVENT_TOO_LARGE {
            ErrorClass::Permanent
        } else {
            ErrorClass::Transient
        }
    }
}

/// An event is as large on every attempt.
impl Classify for crate::events::EventTooLarge {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// An AWS SDK request failure (network, throttling, a service error): retry later.
impl<E, R> Classify for aws_smithy_runtime_api::client::result::SdkError<E, R> {}

/// Why one record failed: its [class](ErrorClass), and the error that caused it as its
/// [`source`](StdError::source), kept with its type and its own causes.
///
/// `?` converts any error that implements [`Classify`] into a `RecordError` of the class
/// the error declares; [`permanent`](Self::permanent) and [`transient`](Self::transient)
/// classify any other error (or a message) at the call site, and [`ResultExt`] does the
/// same on a `Result`.
#[derive(Debug)]
pub struct RecordError {
    class: ErrorClass,
    kind: FailureKind,
    retry_at_ms: Option<u64>,
    source: BoxError,
}

impl RecordError {
    /// A permanent (poison) error: retrying the record cannot help.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self::new(ErrorClass::Permanent, error)
    }

    /// A transient error: a later delivery may succeed.
    pub fn transient(error: impl Into<BoxError>) -> Self {
        Self::new(ErrorClass::Transient, error)
    }

    /// An error of `class`.
    pub fn new(class: ErrorClass, error: impl Into<BoxError>) -> Self {
        Self {
            class,
            kind: FailureKind::Error,
            retry_at_ms: None,
            source: error.into(),
        }
    }

    /// Another delivery of the record's idempotency key is in progress (transient); its claim
    /// lapses at `expiry_ms` (epoch ms) when known, which is when a retry can take it over.
    pub(crate) fn in_progress(expiry_ms: Option<u64>, error: impl Into<BoxError>) -> Self {
        Self {
            class: ErrorClass::Transient,
            kind: FailureKind::InProgress,
            retry_at_ms: expiry_ms,
            source: error.into(),
        }
    }

    /// A dependency the record needs is unavailable until `retry_at_ms` (epoch ms: a circuit
    /// breaker's next probe, plus jitter): transient, and the record's way back to its queue
    /// ([`RecordBackoff`](crate::redelivery::RecordBackoff)) waits at least until then.
    pub fn dependency_unavailable(retry_at_ms: u64, error: impl Into<BoxError>) -> Self {
        Self {
            class: ErrorClass::Transient,
            kind: FailureKind::DependencyUnavailable,
            retry_at_ms: Some(retry_at_ms),
            source: error.into(),
        }
    }

    /// The earliest instant (epoch ms) a retry can succeed, when the failure knows it (a
    /// claim's in-progress window, a circuit breaker's next probe): the record's way back to
    /// its queue aims there.
    pub fn retry_at_ms(&self) -> Option<u64> {
        self.retry_at_ms
    }

    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> FailureKind {
        self.kind.clone()
    }

    /// The error that caused this one, to downcast to the handler's own error type.
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// The cause, if it is an `E`.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref()
    }
}

impl fmt::Display for RecordError {
    /// The cause and each of its own causes, `: `-separated: the whole story on one line,
    /// as the batch response's reason and Lambda's error message need it.
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

impl StdError for RecordError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// `?` on a classified error keeps its class, and the instant its dependency is unavailable
/// until when it says one.
impl<E> From<E> for RecordError
where
    E: Classify + StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        match error.unavailable_until_ms() {
            Some(retry_at_ms) => Self::dependency_unavailable(retry_at_ms, error),
            None => Self::new(error.class(), error),
        }
    }
}

/// `?` on a message: transient.
impl From<&str> for RecordError {
    fn from(message: &str) -> Self {
        Self::transient(message)
    }
}

/// `?` on a message: transient.
impl From<String> for RecordError {
    fn from(message: String) -> Self {
        Self::transient(message)
    }
}

/// `?` on a boxed error, whose type says nothing of its class: transient.
impl From<BoxError> for RecordError {
    fn from(error: BoxError) -> Self {
        Self::transient(error)
    }
}

/// Classifies the error of a `Result` at the call site, for errors whose type does not
/// implement [`Classify`] (a third-party error, a message).
///
/// ```
/// use eventkit::batch::{RecordError, ResultExt};
///
/// fn quantity(text: &str) -> Result<u32, RecordError> {
///     text.parse::<u32>().permanent() // bad input never parses
/// }
/// # assert!(quantity("x").is_err());
/// ```
pub trait ResultExt<T> {
    /// A failure is permanent.
    fn permanent(self) -> Result<T, RecordError>;
    /// A failure is transient.
    fn transient(self) -> Result<T, RecordError>;
}

impl<T, E: Into<BoxError>> ResultExt<T> for Result<T, E> {
    fn permanent(self) -> Result<T, RecordError> {
        self.map_err(RecordError::permanent)
    }

    fn transient(self) -> Result<T, RecordError> {
        self.map_err(RecordError::transient)
    }
}

/// Why a whole invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Every record of the batch failed and the policy is to fail the invocation.
    #[error(
        "all {count} records of the batch failed; first: {}",
        naming(first_id, first_reason)
    )]
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
    #[error(
        "{failed} of {total} records failed; first: {}",
        naming(first_id, first_reason)
    )]
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

/// A failure's reason naming its record once: a decode error's reason starts with
/// `record <id>: `, and the idempotency layer's say `for record <id>` or `(record <id>)`.
fn naming(record_id: &str, reason: &str) -> String {
    if names_record(reason, record_id) {
        reason.to_string()
    } else {
        format!("record {record_id}: {reason}")
    }
}

/// Whether `text` says `record <id>` with the whole id (`record m-1` is not `record m-10`).
fn names_record(text: &str, record_id: &str) -> bool {
    let mention = format!("record {record_id}");
    text.match_indices(&mention).any(|(at, _)| {
        let after = text[at + mention.len()..].chars().next();
        !after.is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    })
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
