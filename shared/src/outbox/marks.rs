//! Marking published events in batches: one PartiQL `UPDATE` per outbox item, up to 25 per
//! `BatchExecuteStatement`, the requests sent concurrently.
//!
//! A mark sets `publishedAt` and the TTL and removes `unpublished`, which takes the item out
//! of the sweeper's index and out of the relay's stream filter (the mark's own change comes
//! back through the stream without `unpublished`, and the event source mapping's
//! `FilterCriteria` drops it before any invocation). An item that is gone (removed by hand)
//! fails the `UPDATE`'s implicit existence condition: published all the same. A mark that
//! fails otherwise fails its event's record, which the stream retries: the event is
//! published again under the same id, which consumers' idempotency absorbs.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest};

use super::item::{OUTBOX_KEY, UNPUBLISHED};
use super::relay::Relay;
use crate::backoff::Backoff;
use crate::batch::RecordError;

/// The most statements `BatchExecuteStatement` takes in one request.
const MARKS_PER_REQUEST: usize = 25;
/// Attempts at a mark that failed for a passing reason (throttled, a conflict), the first
/// included.
const MARK_ATTEMPTS: u32 = 3;
const MARK_BACKOFF: Backoff = Backoff::new(Duration::from_millis(25), Duration::from_millis(200));

/// How one mark ended.
enum Mark {
    Done,
    Retryable(String),
    Failed(String),
}

impl Relay {
    /// Marks the outbox items `ids` published; one result per id, in order.
    pub(crate) async fn mark_published_many(&self, ids: &[&str]) -> Vec<Result<(), RecordError>> {
        let now = chrono::Utc::now();
        let expiration = now.timestamp().max(0).unsigned_abs() + self.retention.as_secs();
        let statement = format!(
            "UPDATE \"{}\" SET \"publishedAt\" = ? SET \"expiration\" = ? REMOVE \"{UNPUBLISHED}\" WHERE \"{OUTBOX_KEY}\" = ?",
            self.outbox_table.replace('"', "\"\"")
        );
        let mut results: Vec<Option<Result<(), RecordError>>> = ids.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..ids.len()).collect();
        for attempt in 0..MARK_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(MARK_BACKOFF.delay(attempt)).await;
            }
            let requests = pending.chunks(MARKS_PER_REQUEST).map(|chunk| {
                let statements: Vec<Option<BatchStatementRequest>> = chunk
                    .iter()
                    .map(|&index| {
                        BatchStatementRequest::builder()
                            .statement(&statement)
                            .parameters(AttributeValue::S(now.to_rfc3339()))
                            .parameters(AttributeValue::N(expiration.to_string()))
                            .parameters(AttributeValue::S(ids[index].to_string()))
                            .build()
                            .ok()
                    })
                    .collect();
                async move { (chunk, self.send_marks(statements).await) }
            });
            let mut again = Vec::new();
            for (chunk, marks) in futures::future::join_all(requests).await {
                for (&index, mark) in chunk.iter().zip(marks) {
                    results[index] = Some(match mark {
                        Mark::Done => Ok(()),
                        Mark::Retryable(reason) if attempt + 1 < MARK_ATTEMPTS => {
                            again.push(index);
                            Err(RecordError::transient(reason))
                        }
                        Mark::Retryable(reason) | Mark::Failed(reason) => {
                            Err(RecordError::transient(format!(
                                "marking the event published failed: {reason}"
                            )))
                        }
                    });
                }
            }
            if again.is_empty() {
                break;
            }
            pending = again;
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(RecordError::transient("mark not sent"))))
            .collect()
    }

    /// One `BatchExecuteStatement` of marks (`None`: a statement that could not be built).
    async fn send_marks(&self, statements: Vec<Option<BatchStatementRequest>>) -> Vec<Mark> {
        let count = statements.len();
        let Some(statements) = statements.into_iter().collect::<Option<Vec<_>>>() else {
            return (0..count)
                .map(|_| Mark::Failed("the mark's statement could not be built".into()))
                .collect();
        };
        let output = match self
            .dynamodb
            .batch_execute_statement()
            .set_statements(Some(statements))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => {
                let reason = aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string();
                return (0..count).map(|_| Mark::Failed(reason.clone())).collect();
            }
        };
        let responses = output.responses();
        if responses.len() != count {
            let reason = format!(
                "BatchExecuteStatement answered {} of {count} marks",
                responses.len()
            );
            return (0..count).map(|_| Mark::Failed(reason.clone())).collect();
        }
        responses
            .iter()
            .map(|response| match response.error() {
                None => Mark::Done,
                Some(error) => {
                    let reason = format!(
                        "{}: {}",
                        error.code().map_or("unknown", |code| code.as_str()),
                        error.message().unwrap_or_default()
                    );
                    match error.code() {
                        // Gone already (removed by hand): published all the same.
                        Some(BatchStatementErrorCodeEnum::ConditionalCheckFailed) => Mark::Done,
                        Some(
                            BatchStatementErrorCodeEnum::ThrottlingError
                            | BatchStatementErrorCodeEnum::ProvisionedThroughputExceeded
                            | BatchStatementErrorCodeEnum::RequestLimitExceeded
                            | BatchStatementErrorCodeEnum::InternalServerError
                            | BatchStatementErrorCodeEnum::TransactionConflict,
                        ) => Mark::Retryable(reason),
                        _ => Mark::Failed(reason),
                    }
                }
            })
            .collect()
    }
}
