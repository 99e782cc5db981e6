//! What Lambda does with a stream batch after an invocation, as a rule on the batch's
//! sequence numbers and the invocation's outcome: done; retry from the lowest sequence number
//! the partial batch response names (the records before it are done); or, after a failed
//! invocation, split the batch in two (`BisectBatchOnFunctionError`) or retry it whole.
//! Splitting does not count as a retry; everything else does, and a batch whose retries
//! run out is given up (sent to the OnFailure destination). Kept free of I/O so the rule
//! is tested on its own.

use serde_json::Value;

use crate::invocation::Outcome;

/// What follows an invocation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Every record is done.
    Done,
    /// The records from this index on are retried; those before it are done.
    RetryFrom(usize),
    /// The batch is split at this index and each half retried on its own, first half first.
    Bisect(usize),
}

/// How the source treats failures.
#[derive(Clone, Copy, Debug)]
pub struct FailureHandling {
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
}

/// The step after `outcome` of a batch whose records have `sequence_numbers` (stream order);
/// the `String` is why the batch counts as failed, for the log.
pub fn after_invocation(
    handling: FailureHandling,
    sequence_numbers: &[&str],
    outcome: &Outcome,
) -> (Next, Option<String>) {
    let failed_whole = |reason: String| {
        let next = if handling.bisect_on_error && sequence_numbers.len() > 1 {
            Next::Bisect(sequence_numbers.len() / 2)
        } else {
            Next::RetryFrom(0)
        };
        (next, Some(reason))
    };
    let Outcome::Response(response) = outcome else {
        return failed_whole(outcome.to_string());
    };
    if !handling.report_batch_item_failures {
        return (Next::Done, None);
    }
    match checkpoint(response, sequence_numbers) {
        Ok(None) => (Next::Done, None),
        Ok(Some(index)) => (
            Next::RetryFrom(index),
            Some(format!(
                "the function reported item failures; retrying from sequence number {}",
                sequence_numbers[index]
            )),
        ),
        // Lambda treats an unreadable partial batch response as a failure of the whole batch.
        Err(reason) => failed_whole(reason),
    }
}

/// The index of the lowest sequence number a partial batch response names; `None` when it
/// names none.
fn checkpoint(response: &Value, sequence_numbers: &[&str]) -> Result<Option<usize>, String> {
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(failures)) => failures,
        Some(other) => return Err(format!("invalid batchItemFailures {other}")),
    };
    let mut lowest: Option<usize> = None;
    for failure in failures {
        let identifier = failure["itemIdentifier"].as_str().unwrap_or_default();
        let index = sequence_numbers
            .iter()
            .position(|number| !identifier.is_empty() && *number == identifier)
            .ok_or_else(|| {
                format!("the batch response names {failure}, no sequence number of the batch")
            })?;
        // Records are in stream order, so the lowest sequence number has the lowest index.
        lowest = Some(lowest.map_or(index, |current| current.min(index)));
    }
    Ok(lowest)
}

/// Whether a batch retried `retries` times has no retry left (`None`: retried until it
/// expires from the stream).
pub fn exhausted(retries: u32, max_retries: Option<u32>) -> bool {
    max_retries.is_some_and(|max| retries > max)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BATCH: [&str; 4] = ["100", "200", "300", "1000"];

    fn handling(report: bool, bisect: bool) -> FailureHandling {
        FailureHandling {
            report_batch_item_failures: report,
            bisect_on_error: bisect,
        }
    }

    fn response(identifiers: &[&str]) -> Outcome {
        let failures: Vec<Value> = identifiers
            .iter()
            .map(|id| json!({ "itemIdentifier": id }))
            .collect();
        Outcome::Response(json!({ "batchItemFailures": failures }))
    }

    #[test]
    fn a_partial_response_resumes_from_the_lowest_failed_sequence_number() {
        let (next, _) = after_invocation(handling(true, true), &BATCH, &response(&["1000", "200"]));
        assert_eq!(next, Next::RetryFrom(1));
        let (next, why) = after_invocation(handling(true, true), &BATCH, &response(&[]));
        assert_eq!((next, why), (Next::Done, None));
        // Without ReportBatchItemFailures the response is not read.
        let (next, _) = after_invocation(handling(false, true), &BATCH, &response(&["200"]));
        assert_eq!(next, Next::Done);
    }

    #[test]
    fn a_failed_invocation_splits_the_batch_or_retries_it_whole() {
        let error = Outcome::FunctionError {
            error_type: "Poison".into(),
            message: "no".into(),
        };
        assert_eq!(
            after_invocation(handling(true, true), &BATCH, &error).0,
            Next::Bisect(2)
        );
        assert_eq!(
            after_invocation(handling(true, true), &BATCH[..1], &error).0,
            Next::RetryFrom(0)
        );
        assert_eq!(
            after_invocation(handling(true, false), &BATCH, &error).0,
            Next::RetryFrom(0)
        );
    }

    #[test]
    fn an_unknown_or_empty_identifier_fails_the_whole_batch() {
        for bad in [response(&["999"]), response(&[""])] {
            let (next, why) = after_invocation(handling(true, false), &BATCH, &bad);
            assert_eq!(next, Next::RetryFrom(0));
            assert!(why.is_some());
        }
    }

    #[test]
    fn retries_run_out_only_when_limited() {
        assert!(!exhausted(2, Some(2)));
        assert!(exhausted(3, Some(2)));
        assert!(!exhausted(10_000, None));
    }
}
