//! Batch metrics as CloudWatch Embedded Metric Format (EMF) lines: one JSON document per
//! batch on stdout, which CloudWatch Logs turns into metrics without any API call.
//!
//! Written with serde_json rather than `metrics_cloudwatch_embedded`: that crate is a
//! global recorder for the `metrics` facade (one per process, flushed per invocation),
//! while a batch's five numbers are known together at its end and tests need each document
//! on its own.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::batch::{BatchOutcome, FailureKind};

/// The CloudWatch namespace of eventkit's metrics.
pub const EMF_NAMESPACE: &str = "eventkit";

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchMetrics {
    /// Records that succeeded (including replayed duplicates).
    pub processed: usize,
    /// Records reported failed.
    pub failed: usize,
    /// Duplicates answered from the idempotency store without running the handler.
    pub replayed: usize,
    /// Records failed because another delivery of their key was in progress.
    pub in_progress: usize,
    /// The batch's duration in milliseconds.
    pub duration_ms: u64,
}

impl BatchMetrics {
    /// Counts an outcome; `replayed` says which successes were duplicates.
    pub fn from_outcome<O>(outcome: &BatchOutcome<O>, replayed: impl Fn(&O) -> bool) -> Self {
        Self {
            processed: outcome.succeeded(),
            failed: outcome.failed(),
            replayed: outcome
                .records
                .iter()
                .filter(|record| record.result.as_ref().is_ok_and(&replayed))
                .count(),
            in_progress: outcome
                .failures()
                .filter(|(_, failure)| failure.kind == FailureKind::InProgress)
                .count(),
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The EMF document, with `service` as the one dimension.
    pub fn to_emf(&self, service: &str) -> Value {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        json!({
            "_aws": {
                "Timestamp": u64::try_from(timestamp).unwrap_or(u64::MAX),
                "CloudWatchMetrics": [{
                    "Namespace": EMF_NAMESPACE,
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "RecordsProcessed", "Unit": "Count"},
                        {"Name": "RecordsFailed", "Unit": "Count"},
                        {"Name": "RecordsReplayed", "Unit": "Count"},
                        {"Name": "RecordsInProgress", "Unit": "Count"},
                        {"Name": "BatchDuration", "Unit": "Milliseconds"},
                    ],
                }],
            },
            "service": service,
            "RecordsProcessed": self.processed,
            "RecordsFailed": self.failed,
            "RecordsReplayed": self.replayed,
            "RecordsInProgress": self.in_progress,
            "BatchDuration": self.duration_ms,
        })
    }

    /// Writes the EMF document as one line to stdout, where Lambda's log capture finds it.
    pub fn emit(&self, service: &str) {
        println!("{}", self.to_emf(service));
    }
}
