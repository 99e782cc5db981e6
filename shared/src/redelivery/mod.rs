//! Per-record backoff for SQS: a record that failed transiently goes back to its queue with
//! a delay that grows with its receive count, instead of after the queue's fixed visibility
//! timeout.
//!
//! Without it every failed record comes back after the same visibility timeout and burns one
//! of its `maxReceiveCount` receives each time, so an outage of a dependency longer than
//! `visibility × maxReceiveCount` dead-letters every healthy message in flight, and the
//! retries arrive in waves at a fixed pace. With it (`ChangeMessageVisibilityBatch` on the
//! failed records, before the batch response returns) the receives spread out (jitter) and
//! stretch over hours (exponential, capped) while a blip still costs seconds.
//!
//! - [`RecordBackoff`]: the rule, on the data: how long a failure keeps its record away.
//! - [`Redelivery`] (feature `sqs`): sends records back with a delay. Its
//!   [`send_back`](Redelivery::send_back) is the step any other reason to delay a record
//!   (a circuit breaker's next probe) reuses.
//!
//! Changing a record's visibility is best effort: when it fails (SQS down, a role without
//! `sqs:ChangeMessageVisibility`), the failure is logged and the batch response returns as
//! it would have; the record comes back after the queue's visibility timeout, nothing lost.

#[cfg(feature = "sqs")]
mod queue;
mod schedule;
#[cfg(feature = "sqs")]
mod send_back;

pub use schedule::{RecordBackoff, SQS_MAX_VISIBILITY};
#[cfg(feature = "sqs")]
pub use send_back::{DelayedRecord, Redelivery};

use crate::batch::BoxError;

/// Why a record could not be sent back with its delay (it comes back after its queue's
/// visibility timeout instead).
#[derive(Debug, thiserror::Error)]
pub enum RedeliveryError {
    /// The record's `eventSourceARN` is not an SQS queue's ARN.
    #[error("{arn:?} is not an SQS queue ARN (arn:aws:sqs:region:account:name)")]
    QueueArn {
        /// What the record said.
        arn: String,
    },
    /// `GetQueueUrl` failed (SQS unreachable, or the role lacks `sqs:GetQueueUrl`).
    #[error("the URL of queue {arn} could not be found")]
    QueueUrl {
        /// The queue.
        arn: String,
        /// The SDK's error.
        source: BoxError,
    },
    /// `ChangeMessageVisibilityBatch` failed as a whole (SQS unreachable, or the role lacks
    /// `sqs:ChangeMessageVisibility` on the queue).
    #[error("the visibility of {count} messages of {queue_url} could not be changed")]
    Request {
        /// The queue.
        queue_url: String,
        /// How many records the request carried.
        count: usize,
        /// The SDK's error.
        source: BoxError,
    },
    /// SQS refused one record (its receipt handle expired, say: it is visible again already).
    #[error("message {message_id} of {queue_url} kept its visibility: {code}: {message}")]
    Refused {
        /// The queue.
        queue_url: String,
        /// The record.
        message_id: String,
        /// SQS's error code.
        code: String,
        /// SQS's explanation.
        message: String,
    },
}

#[cfg(test)]
mod tests;
