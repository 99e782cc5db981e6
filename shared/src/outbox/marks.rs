//! Marking published events in batches: one PartiQL `UPDATE` per outbox item, up to 25 per
//! `BatchExecuteStatement`, the requests sent concurrently.
//!
//! A mark sets `publishedAt` (and an outbox item's TTL; a record carrying events keeps its
//! idempotency retention) and removes `unpublished`, which takes the item out
//! of the sweeper's index and out of the relay's stream filter (the mark's own change comes
//! back through the stream without `unpublished`, and the event source mapping's
//! `FilterCriteria` drops it before any invocation). An item that is gone (removed by hand)
//! fails the `UPDATE`'s implicit existence condition: published all the same. A mark that
//! fails otherwise fails its event's record, which the stream retries: the event is
//! published again under the same id, which consumers' idempotency absorbs.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest};

use super::carried::Mark;
use super::item::UNPUBLISHED;
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
enum Marked {
    Done,
    Retryable(String),
    Failed(String),
}

impl Relay {
    /// Marks the items of `marks` published; one result per mark, in order.
    pub(crate) async fn mark_published_many(
        &self,
        marks: &[&Mark],
    ) -> Vec<Result<(), RecordError>> {
        let now = chrono::Utc::now();
        let expiration = now.timestamp().max(0).unsigned_abs() + self.retention.as_secs();
        let ident = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let statement = |mark: &Mark| -> Option<BatchStatementRequest> {
            let mut keys: Vec<(&String, &AttributeValue)> = mark.key.iter().collect();
            keys.sort_by_key(|(name, _)| name.as_str());
            let conditions: Vec<String> = keys
                .iter()
                .map(|(name, _)| format!("{} = ?", ident(name)))
                .collect();
            let ttl = if mark.expires {
                " SET \"expiration\" = ?"
            } else {
                ""
            };
            let text = format!(
                "UPDATE {} SET \"publishedAt\" = ?{ttl} REMOVE {} WHERE {}",
                ident(&self.outbox_table),
                ident(UNPUBLISHED),
                conditions.join(" AND ")
            );
            let mut request = BatchStatementRequest::builder()
                .statement(text)
                .parameters(AttributeValue::S(now.to_rfc3339()));
            if mark.expires {
                request = request.parameters(AttributeValue::N(expiration.to_string()));
            }
            for (_, value) in keys {
                request = request.parameters(value.clone());
            }
            request.build().ok()
        };
        let mut results: Vec<Option<Result<(), RecordError>>> =
            marks.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..marks.len()).collect();
        for attempt in 0..MARK_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(MARK_BACKOFF.delay(attempt)).await;
            }
            let requests = pending.chunks(MARKS_PER_REQUEST).map(|chunk| {
                let statements: Vec<Option<BatchStatementRequest>> =
                    chunk.iter().map(|&index| statement(marks[index])).collect();
                async move { (chunk, self.send_marks(statements).await) }
            });
            let mut again = Vec::new();
            for (chunk, marks) in futures::future::join_all(requests).await {
                for (&index, mark) in chunk.iter().zip(marks) {
                    results[index] = Some(match mark {
                        Marked::Done => Ok(()),
                        Marked::Retryable(reason) if attempt + 1 < MARK_ATTEMPTS => {
                            again.push(index);
                            Err(RecordError::transient(reason))
                        }
                        Marked::Retryable(reason) | Marked::Failed(reason) => {
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
    async fn send_marks(&self, statements: Vec<Option<BatchStatementRequest>>) -> Vec<Marked> {
        let count = statements.len();
        let Some(statements) = statements.into_iter().collect::<Option<Vec<_>>>() else {
            return (0..count)
                .map(|_| Marked::Failed("the mark's statement could not be built".into()))
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
                return (0..count).map(|_| Marked::Failed(reason.clone())).collect();
            }
        };
        let responses = output.responses();
        if responses.len() != count {
            let reason = format!(
                "BatchExecuteStatement answered {} of {count} marks",
                responses.len()
            );
            return (0..count).map(|_| Marked::Failed(reason.clone())).collect();
        }
        responses
            .iter()
            .map(|response| match response.error() {
                None => Marked::Done,
                Some(error) => {
                    let reason = format!(
                        "{}: {}",
                        error.code().map_or("unknown", |code| code.as_str()),
                        error.message().unwrap_or_default()
                    );
                    match error.code() {
                        // Gone already (removed by hand): published all the same.
                        Some(BatchStatementErrorCodeEnum::ConditionalCheckFailed) => Marked::Done,
                        Some(code) if crate::idempotency::statement_passes(code) => {
                            Marked::Retryable(reason)
                        }
                        _ => Marked::Failed(reason),
                    }
                }
            })
            .collect()
    }
}
