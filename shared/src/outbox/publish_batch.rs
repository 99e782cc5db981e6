//! Publishing committed events in batches: runs of consecutive events for one destination,
//! up to ten per request (`PutEvents`, SNS `PublishBatch`, SQS `SendMessageBatch`), each
//! request's failed entries retried by the publisher, one result per event.
//!
//! For a stream shard the order is kept as far as the services allow: requests go one after
//! another, in the shard's order, and after a request with a failed entry nothing more is
//! sent, so the shard resumes at the first failed event (the events after it in the same
//! request were published, and are published again on the retry, under the same ids). No
//! service orders the entries of one request, so order holds between requests only.

use super::destination::Destination;
use super::item::OutboxEntry;
use super::relay::Relay;
use crate::batch::{Deadline, ErrorClass, RecordError};
use crate::events::{OutgoingEvent, PublishFailure, MAX_BATCH_ENTRIES};

/// Whether publishing goes on past a failed event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// A stream shard's events: nothing is sent after a request with a failed entry.
    Kept,
    /// The sweeper's overdue events: every one is tried.
    Any,
}

/// A copy of `error` for another event of the same request (a `RecordError`'s source cannot
/// be cloned): its class, its retry instant, its message.
pub(crate) fn copy_error(error: &RecordError) -> RecordError {
    match error.retry_at_ms() {
        Some(at) if error.class() == ErrorClass::Transient => {
            RecordError::dependency_unavailable(at, error.to_string())
        }
        _ => RecordError::new(error.class(), error.to_string()),
    }
}

impl Relay {
    /// Publishes `entries` under their staged ids, in requests of up to ten consecutive
    /// entries of one destination; one result per entry, in order. Nothing is sent once
    /// `deadline` is within `margin`, nor, with [`Order::Kept`], after a request with a
    /// failed entry: those entries fail transiently, unsent.
    pub(crate) async fn publish_entries(
        &self,
        entries: &[&OutboxEntry],
        order: Order,
        deadline: Deadline,
        margin: std::time::Duration,
    ) -> Vec<Result<(), RecordError>> {
        let mut results: Vec<Result<(), RecordError>> = Vec::with_capacity(entries.len());
        let mut start = 0;
        while start < entries.len() {
            if deadline.remaining() <= margin {
                break;
            }
            let destination = &entries[start].destination;
            let end = (start + 1..entries.len())
                .take_while(|&next| {
                    next - start < MAX_BATCH_ENTRIES && entries[next].destination == *destination
                })
                .last()
                .map_or(start + 1, |last| last + 1);
            let sent = self.publish_request(&entries[start..end]).await;
            let failed = sent.iter().any(Result::is_err);
            results.extend(sent);
            start = end;
            if failed && order == Order::Kept {
                break;
            }
        }
        let unsent = if results.iter().any(Result::is_err) {
            "not sent: an earlier event of the shard failed, and the shard's order is kept"
        } else {
            "not sent: the invocation's deadline was near"
        };
        while results.len() < entries.len() {
            results.push(Err(RecordError::transient(unsent)));
        }
        results
    }

    /// One request's worth of entries (one destination, at most ten), through the breaker
    /// when there is one: it counts the request as failed only when every entry failed
    /// transiently (the destination is down), not for an entry it refused.
    async fn publish_request(&self, entries: &[&OutboxEntry]) -> Vec<Result<(), RecordError>> {
        let destination = match entries[0].destination() {
            Ok(destination) => destination,
            Err(unknown) => {
                return entries
                    .iter()
                    .map(|_| Err(RecordError::permanent(unknown.to_string())))
                    .collect()
            }
        };
        let events: Vec<OutgoingEvent> = entries.iter().map(|entry| entry.outgoing()).collect();
        let request = || async {
            let failures = self.publish_many(&destination, &events).await?;
            let down = failures.len() == events.len()
                && failures
                    .iter()
                    .all(|failure| crate::batch::Classify::class(failure) == ErrorClass::Transient);
            match failures.first() {
                Some(first) if down => Err(RecordError::from(first.clone())),
                _ => Ok(failures),
            }
        };
        let outcome = match &self.breaker {
            Some(breaker) => breaker.call_record(request).await,
            None => request().await,
        };
        let failures = match outcome {
            Ok(failures) => failures,
            Err(error) => return entries.iter().map(|_| Err(copy_error(&error))).collect(),
        };
        let mut results: Vec<Result<(), RecordError>> = entries.iter().map(|_| Ok(())).collect();
        for failure in failures {
            if let Some(result) = results.get_mut(failure.index) {
                *result = Err(RecordError::from(failure));
            }
        }
        results
    }

    /// Sends `events` to `destination` with the client of its kind; the events that finally
    /// failed. `Err` when the relay has no client for the destination's kind.
    async fn publish_many(
        &self,
        destination: &Destination,
        events: &[OutgoingEvent],
    ) -> Result<Vec<PublishFailure>, RecordError> {
        let missing = |kind: &str| {
            RecordError::permanent(format!(
                "events name {destination}, but the relay has no {kind} client"
            ))
        };
        match destination {
            #[cfg(feature = "eventbridge")]
            Destination::EventBridge(bus) => {
                let client = self
                    .eventbridge
                    .clone()
                    .ok_or_else(|| missing("EventBridge"))?;
                Ok(
                    crate::events::EventBridgePublisher::new(client, bus.clone())
                        .publish(events)
                        .await,
                )
            }
            #[cfg(feature = "sns")]
            Destination::Sns(topic) => {
                let client = self.sns.clone().ok_or_else(|| missing("SNS"))?;
                Ok(crate::events::SnsPublisher::new(client, topic.clone())
                    .publish(events)
                    .await)
            }
            #[cfg(feature = "sqs")]
            Destination::Sqs(queue) => {
                let client = self.sqs.clone().ok_or_else(|| missing("SQS"))?;
                Ok(crate::events::SqsPublisher::new(client, queue.clone())
                    .publish(events)
                    .await)
            }
            #[allow(unreachable_patterns)]
            _ => Err(missing("compiled-in")),
        }
    }
}
