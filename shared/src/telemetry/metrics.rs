//! Batch metrics as CloudWatch Embedded Metric Format (EMF) lines: one JSON document per
//! batch on stdout, which CloudWatch Logs turns into metrics without any API call.
//!
//! Written with serde_json rather than `metrics_cloudwatch_embedded`: that crate is a
//! global recorder for the `metrics` facade (one per process, flushed per invocation),
//! while a batch's five numbers are known together at its end and tests need each document
//! on its own.

use serde_json::{json, Value};

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
    /// The EMF document, with `service` as the one dimension. Like every log line it carries
    /// an RFC 3339 `timestamp` and a `level` (INFO), the fields Lambda's log-level filtering
    /// reads (EMF ignores members that no directive names).
    pub fn to_emf(&self, service: &str) -> Value {
        let now = chrono::Utc::now();
        let timestamp = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        json!({
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "level": "INFO",
            "_aws": {
                "Timestamp": timestamp,
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Checks the document against the EMF specification's structure: `_aws` with a
    /// millisecond timestamp and metric directives, every dimension and metric named in a
    /// directive present at the root with a value of the right type.
    pub(crate) fn assert_valid_emf(document: &Value) {
        let aws = &document["_aws"];
        assert!(aws["Timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000));
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for directive in directives {
            assert!(directive["Namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty()));
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for name in set {
                    assert!(document[name.as_str().unwrap()].is_string());
                }
            }
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(metrics.len() <= 100);
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap();
                assert!(document[name].is_number(), "{name} has no numeric value");
            }
        }
    }

    #[test]
    fn batch_metrics_become_one_valid_emf_line() {
        let metrics = BatchMetrics {
            processed: 3,
            failed: 2,
            replayed: 2,
            in_progress: 1,
            duration_ms: 42,
        };
        let line = metrics.to_emf("inventory").to_string();
        assert!(!line.contains('\n'));
        let document: Value = serde_json::from_str(&line).unwrap();
        assert_valid_emf(&document);
        let names: Vec<_> = document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "RecordsProcessed",
                "RecordsFailed",
                "RecordsReplayed",
                "RecordsInProgress",
                "BatchDuration"
            ]
        );
        assert_eq!(document["service"], "inventory");
        assert_eq!(document["level"], "INFO");
        let timestamp = document["timestamp"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).unwrap();
        assert_eq!(
            u64::try_from(parsed.timestamp_millis()).unwrap(),
            document["_aws"]["Timestamp"].as_u64().unwrap()
        );
        assert_eq!(document["RecordsProcessed"], 3);
        assert_eq!(document["RecordsFailed"], 2);
        assert_eq!(document["RecordsReplayed"], 2);
        assert_eq!(document["RecordsInProgress"], 1);
        assert_eq!(document["BatchDuration"], 42);
    }
}
