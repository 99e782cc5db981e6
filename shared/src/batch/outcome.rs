//! What happened to each record of a batch, and the responses Lambda expects from it.

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};

use super::config::AllFailedPolicy;
use super::error::{BatchError, ErrorClass, FailureKind, RecordError};
use crate::telemetry::BatchMetrics;

/// A failed record: the class, what kind of failure, and the reason for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFailure {
    /// Permanent (poison) or transient.
    pub class: ErrorClass,
    /// What kind of failure.
    pub kind: FailureKind,
    /// A human-readable reason.
    pub reason: String,
    /// The earliest instant (epoch ms) a retry can succeed, when the failure knows it (the
    /// in-progress window of the claim that holds the record's key).
    pub retry_at_ms: Option<u64>,
}

impl From<&RecordError> for RecordFailure {
    fn from(error: &RecordError) -> Self {
        Self {
            class: error.class(),
            kind: error.kind(),
            reason: error.to_string(),
            retry_at_ms: error.retry_at_ms(),
        }
    }
}

/// One record's result, under the id used to report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOutcome<O> {
    /// The record id (the SQS messageId for SQS batches).
    pub id: String,
    /// The handler's output, or why the record failed.
    pub result: Result<O, RecordFailure>,
}

/// The outcome of a batch, in the order the records arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOutcome<O> {
    /// One outcome per record, in arrival order.
    pub records: Vec<RecordOutcome<O>>,
    /// How long the batch took.
    pub duration: Duration,
}

impl<O> BatchOutcome<O> {
    /// The ids of the failed records, in arrival order.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.failures().map(|(id, _)| id).collect()
    }

    /// The failed records with their failures.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &RecordFailure)> {
        self.records.iter().filter_map(|record| {
            record
                .result
                .as_ref()
                .err()
                .map(|failure| (record.id.as_str(), failure))
        })
    }

    /// How many records succeeded.
    pub fn succeeded(&self) -> usize {
        self.records
            .iter()
            .filter(|record| record.result.is_ok())
            .count()
    }

    /// How many records failed.
    pub fn failed(&self) -> usize {
        self.records.len() - self.succeeded()
    }

    /// The SQS partial batch response (ReportBatchItemFailures): exactly the failed ids.
    /// When every record failed and the policy is [`AllFailedPolicy::Error`], an error.
    pub fn sqs_response(
        &self,
        all_failed: AllFailedPolicy,
    ) -> Result<SqsBatchResponse, BatchError> {
        if all_failed == AllFailedPolicy::Error && !self.records.is_empty() && self.succeeded() == 0
        {
            let (first_id, first) = self.first_failure();
            return Err(BatchError::AllFailed {
                count: self.records.len(),
                first_id,
                first_reason: first,
            });
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .failed_ids()
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.to_string();
                failure
            })
            .collect();
        Ok(response)
    }

    /// For direct (SNS, EventBridge) invocations: an error if any record failed, so that
    /// Lambda's asynchronous retries and the function's DLQ apply.
    pub fn require_all_succeeded(&self) -> Result<(), BatchError> {
        if self.failed() == 0 {
            return Ok(());
        }
        let (first_id, first_reason) = self.first_failure();
        Err(BatchError::RecordsFailed {
            failed: self.failed(),
            total: self.records.len(),
            first_id,
            first_reason,
        })
    }

    /// The batch's metrics; `replayed` says which successes were duplicates.
    pub fn metrics(&self, replayed: impl Fn(&O) -> bool) -> BatchMetrics {
        BatchMetrics {
            processed: self.succeeded(),
            failed: self.failed(),
            replayed: self
                .records
                .iter()
                .filter(|record| record.result.as_ref().is_ok_and(&replayed))
                .count(),
            in_progress: self
                .failures()
                .filter(|(_, failure)| failure.kind == FailureKind::InProgress)
                .count(),
            duration_ms: u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn first_failure(&self) -> (String, String) {
        self.failures()
            .next()
            .map(|(id, failure)| (id.to_string(), failure.reason.clone()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind) -> RecordFailure {
        RecordFailure {
            class: ErrorClass::Transient,
            kind,
            reason: "x".into(),
            retry_at_ms: None,
        }
    }

    #[test]
    fn a_batch_counts_its_outcomes() {
        let record = |id: &str, result| RecordOutcome {
            id: id.into(),
            result,
        };
        let outcome = BatchOutcome {
            records: vec![
                record("a", Ok(false)),
                record("b", Ok(true)),
                record("c", Ok(true)),
                record("d", Err(failure(FailureKind::InProgress))),
                record("e", Err(failure(FailureKind::Error))),
            ],
            duration: Duration::from_millis(42),
        };
        assert_eq!(
            outcome.metrics(|replayed| *replayed),
            BatchMetrics {
                processed: 3,
                failed: 2,
                replayed: 2,
                in_progress: 1,
                duration_ms: 42,
            }
        );
    }
}
