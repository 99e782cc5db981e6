//! The relay: publishes each event committed to the outbox, under the id it was staged with,
//! to the destination it names, and marks it published (its TTL then removes it).
//!
//! It is a record handler for the outbox table's DynamoDB stream. Every failure is an error
//! of its record, so the stream's partial batch response retries it (and the event source
//! mapping's on-failure destination receives what never succeeds); a publish repeated after
//! a crash carries the same `eventId`, which consumers' idempotency absorbs.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::destination::Destination;
use super::item::{OutboxEntry, OUTBOX_KEY, UNPUBLISHED};
use crate::batch::RecordError;
use crate::breaker::Breaker;
use crate::events::{EventRecord, OutgoingEvent, EVENT_NAME_ATTRIBUTE};
use crate::faults::CrashPoint;
use crate::handler::{EventHandler, Invocation};

/// How long a published item stays in the outbox by default (then its TTL removes it).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// What the relay did with one stream record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Relayed {
    /// The event was published and marked.
    Published {
        /// The event's id.
        event_id: String,
        /// Where it went.
        destination: String,
    },
    /// A change that is not a new unpublished event: the relay's own mark, a TTL removal.
    Skipped,
}

/// Publishes outbox events: one stream record at a time, marked once published (see the
/// [outbox docs](super)).
#[derive(Clone, Debug)]
pub struct Relay {
    dynamodb: aws_sdk_dynamodb::Client,
    outbox_table: String,
    retention: Duration,
    #[cfg(feature = "eventbridge")]
    eventbridge: Option<aws_sdk_eventbridge::Client>,
    #[cfg(feature = "sns")]
    sns: Option<aws_sdk_sns::Client>,
    #[cfg(feature = "sqs")]
    sqs: Option<aws_sdk_sqs::Client>,
    /// Guards every publish, when given.
    breaker: Option<Breaker>,
}

impl Relay {
    /// A relay for the outbox `outbox_table`, which it marks through `dynamodb`. It publishes
    /// to the kinds of destination it is given a client for.
    pub fn new(dynamodb: aws_sdk_dynamodb::Client, outbox_table: impl Into<String>) -> Self {
        Self {
            dynamodb,
            outbox_table: outbox_table.into(),
            retention: DEFAULT_RETENTION,
            #[cfg(feature = "eventbridge")]
            eventbridge: None,
            #[cfg(feature = "sns")]
            sns: None,
            #[cfg(feature = "sqs")]
            sqs: None,
            breaker: None,
        }
    }

    /// Publishes through `breaker`: while the destination is down, one probe per interval
    /// publishes, and every other event fails at once without a request (transient, retried
    /// by the stream, and by the [`Sweeper`](super::Sweeper), which shares the relay's
    /// breaker when built from it).
    pub fn with_breaker(mut self, breaker: Breaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// The breaker that guards the publishes, if any: what a function's
    /// [`BreakerLayer`](crate::breaker::BreakerLayer) checks before each record.
    pub fn breaker(&self) -> Option<&Breaker> {
        self.breaker.as_ref()
    }

    /// Publishes to EventBridge buses with `client`.
    #[cfg(feature = "eventbridge")]
    pub fn with_eventbridge(mut self, client: aws_sdk_eventbridge::Client) -> Self {
        self.eventbridge = Some(client);
        self
    }

    /// Publishes to SNS topics with `client`.
    #[cfg(feature = "sns")]
    pub fn with_sns(mut self, client: aws_sdk_sns::Client) -> Self {
        self.sns = Some(client);
        self
    }

    /// Publishes to SQS queues with `client`.
    #[cfg(feature = "sqs")]
    pub fn with_sqs(mut self, client: aws_sdk_sqs::Client) -> Self {
        self.sqs = Some(client);
        self
    }

    /// How long a published item is kept (its TTL); [`DEFAULT_RETENTION`] by default.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    async fn publish(
        &self,
        destination: &Destination,
        event: &OutgoingEvent,
    ) -> Result<(), RecordError> {
        let missing = |kind: &str| {
            RecordError::permanent(format!(
                "event {} names {destination}, but the relay has no {kind} client",
                event.event_id
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
                        .publish_one(event)
                        .await?,
                )
            }
            #[cfg(feature = "sns")]
            Destination::Sns(topic) => {
                let client = self.sns.clone().ok_or_else(|| missing("SNS"))?;
                Ok(crate::events::SnsPublisher::new(client, topic.clone())
                    .publish_one(event)
                    .await?)
            }
            #[cfg(feature = "sqs")]
            Destination::Sqs(queue) => {
                let client = self.sqs.clone().ok_or_else(|| missing("SQS"))?;
                Ok(crate::events::SqsPublisher::new(client, queue.clone())
                    .publish_one(event)
                    .await?)
            }
            #[allow(unreachable_patterns)]
            _ => Err(missing("compiled-in")),
        }
    }

    /// Sets `publishedAt` and the TTL, if the item is still there.
    async fn mark_published(&self, id: &str) -> Result<(), RecordError> {
        let now = chrono::Utc::now();
        let expiration = now.timestamp().max(0).unsigned_abs() + self.retention.as_secs();
        let outcome = self
            .dynamodb
            .update_item()
            .table_name(&self.outbox_table)
            .key(OUTBOX_KEY, AttributeValue::S(id.to_string()))
            .update_expression(
                "SET publishedAt = :now, expiration = :expiration REMOVE #unpublished",
            )
            .expression_attribute_names("#unpublished", UNPUBLISHED)
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#key", OUTBOX_KEY)
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
            .expression_attribute_values(":expiration", AttributeValue::N(expiration.to_string()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            // Gone already (removed by hand): published all the same.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// One stream record: a new (or re-touched) unpublished event is published, then marked.
impl EventHandler for Relay {
    type Event = EventRecord;
    type Output = Relayed;
    type Error = RecordError;

    async fn handle(&self, record: EventRecord, _: &Invocation) -> Result<Relayed, RecordError> {
        if record.attribute(EVENT_NAME_ATTRIBUTE) == Some("REMOVE") {
            return Ok(Relayed::Skipped);
        }
        let entry: OutboxEntry = record.decode().map_err(RecordError::permanent)?;
        if entry.published_at.is_some() {
            return Ok(Relayed::Skipped);
        }
        self.publish_entry(&entry).await?;
        Ok(Relayed::Published {
            event_id: entry.event_id,
            destination: entry.destination,
        })
    }
}

impl Relay {
    /// Publishes `entry` under its staged id and marks it published: what the stream's
    /// records and the [`Sweeper`](super::Sweeper) both do with an unpublished item.
    pub(crate) async fn publish_entry(&self, entry: &OutboxEntry) -> Result<(), RecordError> {
        let destination = entry.destination().map_err(RecordError::permanent)?;
        let event = entry.outgoing();
        match &self.breaker {
            Some(breaker) => {
                breaker
                    .call_record(|| self.publish(&destination, &event))
                    .await?
            }
            None => self.publish(&destination, &event).await?,
        }
        crate::faults::crash_point(CrashPoint::AfterPublish, &entry.id);
        self.mark_published(&entry.id).await?;
        tracing::info!(event_id = %entry.event_id, %destination, "outbox event published");
        Ok(())
    }

    /// The outbox table and the client that reads it.
    pub(crate) fn outbox(&self) -> (&aws_sdk_dynamodb::Client, &str) {
        (&self.dynamodb, &self.outbox_table)
    }
}
