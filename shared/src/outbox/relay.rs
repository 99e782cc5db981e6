//! The relay: publishes each event committed to the outbox, under the id it was staged with,
//! to the destination it names, and marks it published (its TTL then removes it).
//!
//! It is a record handler for the outbox table's DynamoDB stream, and takes a shard's batch
//! whole: its events go out ten per publish request and are marked 25 per `UPDATE` batch
//! (about 0.14 requests per event instead of two). Every failure is an error of its record,
//! so the stream's partial batch response retries it from there (and the event source
//! mapping's on-failure destination receives what never succeeds); a publish repeated after
//! a crash carries the same `eventId`, which consumers' idempotency absorbs.
//!
//! The relay's own marks come back through the stream; deploy its event source mapping with
//! [`STREAM_FILTER`] so that only unpublished events invoke it (the relay skips the others
//! anyway, at the price of an invocation).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::carried::{Carried, Mark};
use super::item::OutboxEntry;
use super::publish_batch::Order;
use crate::batch::{BatchOutcome, BatchProcessor, Deadline, RecordError};
use crate::breaker::Breaker;
use crate::events::{EventRecord, EVENT_NAME_ATTRIBUTE};
use crate::faults::CrashPoint;
use crate::handler::{Handled, Invocation, RecordHandler};

/// The event source mapping's filter (`FilterCriteria.Filters[].Pattern`) that hands the
/// relay only the changes it publishes: an item whose new image is still unpublished. The
/// relay's marks (which remove `unpublished`) and the TTL's removals never invoke it.
pub const STREAM_FILTER: &str =
    r#"{"dynamodb": {"NewImage": {"unpublished": {"S": [{"exists": true}]}}}}"#;

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

/// Publishes outbox events in batches, each marked once published (see the
/// [outbox docs](super)). A [`RecordHandler`]: `EventFunction::new(relay)`.
#[derive(Clone, Debug)]
pub struct Relay {
    pub(super) dynamodb: aws_sdk_dynamodb::Client,
    pub(super) outbox_table: String,
    pub(super) retention: Duration,
    #[cfg(feature = "eventbridge")]
    pub(super) eventbridge: Option<aws_sdk_eventbridge::Client>,
    #[cfg(feature = "sns")]
    pub(super) sns: Option<aws_sdk_sns::Client>,
    #[cfg(feature = "sqs")]
    pub(super) sqs: Option<aws_sdk_sqs::Client>,
    /// Guards every publish request, when given.
    pub(super) breaker: Option<Breaker>,
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
}

/// A stream record's plan: what the relay does with it.
enum Planned {
    /// A change that is not a new unpublished event: the relay's own mark, a TTL removal.
    Skip,
    /// An unpublished item's events.
    Publish(Box<Carried>),
}

fn plan(record: &EventRecord) -> Result<Planned, RecordError> {
    if record.attribute(EVENT_NAME_ATTRIBUTE) == Some("REMOVE") {
        return Ok(Planned::Skip);
    }
    let image = record.json().map_err(RecordError::permanent)?;
    match Carried::from_json(image) {
        Ok(Some(carried)) => Ok(Planned::Publish(Box::new(carried))),
        Ok(None) => Ok(Planned::Skip),
        Err(reason) => Err(RecordError::permanent(format!(
            "record {}: an unreadable outbox item: {reason}",
            record.id()
        ))),
    }
}

impl Relay {
    /// Relays `records`, one stream shard's changes in order: the events of the unpublished
    /// items up to the first record that cannot be read are published in batches
    /// ([`publish_entries`](Self::publish_entries)), then the items marked in batches; one
    /// result per record. The records after a failed one are not relayed (the processor
    /// reports them skipped, so the shard resumes at the failed one).
    async fn relay_records(
        &self,
        records: &[EventRecord],
        deadline: Deadline,
        margin: Duration,
    ) -> Vec<Result<Relayed, RecordError>> {
        let planned: Vec<Result<Planned, RecordError>> = records.iter().map(plan).collect();
        let readable = planned
            .iter()
            .position(Result::is_err)
            .unwrap_or(planned.len());
        let carried: Vec<(usize, &Carried)> = planned[..readable]
            .iter()
            .enumerate()
            .filter_map(|(index, planned)| match planned {
                Ok(Planned::Publish(carried)) => Some((index, carried.as_ref())),
                _ => None,
            })
            .collect();
        let items: Vec<&Carried> = carried.iter().map(|(_, carried)| *carried).collect();
        let mut results = self
            .publish_and_mark_items(&items, Order::Kept, deadline, margin)
            .await
            .into_iter();
        let mut outcomes: Vec<Option<Result<Relayed, RecordError>>> =
            planned.iter().map(|_| None).collect();
        for (index, item) in &carried {
            let result = results
                .next()
                .unwrap_or_else(|| Err(RecordError::transient("item left without a result")));
            outcomes[*index] = Some(result.map(|()| {
                Relayed::Published {
                    event_id: item
                        .entries
                        .iter()
                        .map(|entry| entry.event_id.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    destination: item
                        .entries
                        .first()
                        .map(|entry| entry.destination.clone())
                        .unwrap_or_default(),
                }
            }));
        }
        planned
            .into_iter()
            .zip(outcomes)
            .map(|(planned, outcome)| match (planned, outcome) {
                (_, Some(outcome)) => outcome,
                (Err(error), None) => Err(error),
                (Ok(_), None) => Ok(Relayed::Skipped),
            })
            .collect()
    }

    /// Publishes the events of `items` in batches and marks each item whose events were all
    /// published (its mark's result is then the item's); one result per item.
    async fn publish_and_mark_items(
        &self,
        items: &[&Carried],
        order: Order,
        deadline: Deadline,
        margin: Duration,
    ) -> Vec<Result<(), RecordError>> {
        let entries: Vec<&OutboxEntry> = items.iter().flat_map(|item| &item.entries).collect();
        let mut published = self
            .publish_entries(&entries, order, deadline, margin)
            .await
            .into_iter();
        let mut results: Vec<Result<(), RecordError>> = items
            .iter()
            .map(|item| {
                let mine: Vec<Result<(), RecordError>> =
                    published.by_ref().take(item.entries.len()).collect();
                match mine.into_iter().find(Result::is_err) {
                    Some(failed) => failed,
                    None => Ok(()),
                }
            })
            .collect();
        for (item, result) in items.iter().zip(&results) {
            if result.is_ok() {
                crate::faults::crash_point(CrashPoint::AfterPublish, &item.name());
            }
        }
        let marks: Vec<&Mark> = items
            .iter()
            .zip(&results)
            .filter(|(_, result)| result.is_ok())
            .map(|(item, _)| &item.mark)
            .collect();
        let mut marked = self.mark_published_many(&marks).await.into_iter();
        for (item, result) in items.iter().zip(results.iter_mut()) {
            if result.is_ok() {
                *result = marked
                    .next()
                    .unwrap_or_else(|| Err(RecordError::transient("mark left without an answer")));
                if result.is_ok() {
                    for entry in &item.entries {
                        tracing::info!(event_id = %entry.event_id, destination = %entry.destination, "outbox event published");
                    }
                }
            }
        }
        results
    }

    /// Publishes the events of `items` (in batches, every one tried) and marks the items
    /// whose events were published: what the [`Sweeper`](super::Sweeper) does with overdue
    /// items. One result per item.
    pub(crate) async fn publish_and_mark(&self, items: &[Carried]) -> Vec<Result<(), RecordError>> {
        let items: Vec<&Carried> = items.iter().collect();
        let no_deadline = Deadline::after(Duration::from_secs(24 * 3600));
        self.publish_and_mark_items(&items, Order::Any, no_deadline, Duration::ZERO)
            .await
    }

    /// The outbox table and the client that reads it.
    pub(crate) fn outbox(&self) -> (&aws_sdk_dynamodb::Client, &str) {
        (&self.dynamodb, &self.outbox_table)
    }
}

/// One stream record alone: relayed as a batch of one.
impl RecordHandler for Relay {
    type Output = Relayed;

    async fn handle(
        &self,
        record: &EventRecord,
        invocation: &Invocation,
    ) -> Result<Handled<Relayed>, RecordError> {
        let margin = Duration::ZERO;
        self.relay_records(std::slice::from_ref(record), invocation.deadline(), margin)
            .await
            .pop()
            .unwrap_or_else(|| Err(RecordError::transient("record left without a result")))
            .map(Handled::computed)
    }

    /// The whole shard batch at once: its events published ten per request and marked 25 per
    /// request, instead of a publish and a mark per record. Each record's result is then
    /// reported by `processor` in shard order, so the first failure stops the batch there.
    async fn handle_batch(
        &self,
        records: Vec<EventRecord>,
        invocation: &Invocation,
        processor: &BatchProcessor,
    ) -> BatchOutcome<Handled<Relayed>> {
        let margin = processor.config().deadline_margin;
        let results = self
            .relay_records(&records, invocation.deadline(), margin)
            .await;
        let results: Mutex<HashMap<String, Result<Relayed, RecordError>>> = Mutex::new(
            records
                .iter()
                .map(|record| record.id().to_string())
                .zip(results)
                .collect(),
        );
        processor
            .process(records, invocation.deadline(), |record| {
                let result = results
                    .lock()
                    .ok()
                    .and_then(|mut results| results.remove(record.id()))
                    .unwrap_or_else(|| Err(RecordError::transient("record left without a result")));
                std::future::ready(result.map(Handled::computed))
            })
            .await
    }
}
