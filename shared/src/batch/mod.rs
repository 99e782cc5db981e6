//! Batch processing with partial failures.
//!
//! A per-record handler runs over an SQS batch (or the records of a direct SNS or
//! EventBridge invocation); the [`BatchOutcome`] says what happened to each record and
//! becomes the `SqsBatchResponse` that lists exactly the failed message ids
//! (ReportBatchItemFailures), so SQS deletes the successes and redelivers the failures,
//! moving them to the DLQ after `maxReceiveCount`. How long a transiently failed record
//! stays away before its next receive is [`redelivery`](crate::redelivery)'s business.
//!
//! - Standard queues: records run concurrently up to [`BatchConfig::max_concurrency`].
//! - FIFO queues: records of one message group run in order; after a failure the group's
//!   later records are not run ([`FifoPolicy::SkipGroup`]) or the whole batch stops
//!   ([`FifoPolicy::StopBatch`]).
//! - A panic fails its record only. Records not started within
//!   [`BatchConfig::deadline_margin`] of the deadline are reported failed rather than lost
//!   to the timeout.
//! - Errors are [`ErrorClass::Permanent`] (poison) or [`ErrorClass::Transient`]; both are
//!   reported failed, and the log line says which, with the record id and the reason.

mod config;
mod deadline;
mod error;
mod outcome;
mod processor;

#[cfg(test)]
mod tests;

pub use config::{AllFailedPolicy, BatchConfig, FifoPolicy};
pub use deadline::Deadline;
pub use error::{BatchError, BoxError, Classify, ErrorClass, FailureKind, RecordError, ResultExt};
pub use outcome::{BatchOutcome, RecordFailure, RecordOutcome};
pub use processor::BatchProcessor;
pub(crate) use processor::{settle, span_of};
