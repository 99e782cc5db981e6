//! The outbox item: how a staged event is written by the commit and read back by the relay.
//! Both sides use these names, so they cannot drift.
//!
//! | attribute | type | content |
//! | --- | --- | --- |
//! | `id` | S | the `eventId`, `|` and the destination: the partition key |
//! | `eventId`, `eventType`, `source`, `time` | S | the envelope's |
//! | `body` | S | what is published (the envelope as JSON) |
//! | `destination` | S | [`Destination`] as text |
//! | `attributes` | M of S | SNS/SQS message attributes |
//! | `traceId`, `groupId`, `deduplicationId` | S | when set |
//! | `committedBy` | S | the idempotency key whose completion committed it |
//! | `stagedAt` | S | RFC 3339 in UTC to the millisecond (`2026-12-06T15:16:01.123Z`), so that it sorts as text |
//! | `unpublished` | S | the item's shard of the [`UNPUBLISHED_INDEX`] (`0` to `f`), removed by the relay once published |
//! | `publishedAt` | S | set by the relay once published |
//! | `expiration` | N | epoch seconds, the TTL: set by the relay once published |
//!
//! The outbox table has a global secondary index, [`UNPUBLISHED_INDEX`], keyed on
//! `unpublished` and `stagedAt`: sparse (an item is in it only while unpublished), so the
//! [`Sweeper`](super::Sweeper) finds the events the stream did not get published, and the
//! backlog is counted, without reading the published ones. Sixteen shards spread its writes
//! (one partition of an index takes 1,000 writes a second).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::destination::Destination;
use super::unit_of_work::StagedEvent;
use crate::events::OutgoingEvent;

/// The outbox table's partition key.
pub const OUTBOX_KEY: &str = "id";

/// The outbox table's index of unpublished items: partition key `unpublished` (S), sort key
/// `stagedAt` (S), every attribute projected.
pub const UNPUBLISHED_INDEX: &str = "unpublished";

/// The attribute an item carries while unpublished: its shard of [`UNPUBLISHED_INDEX`].
pub(crate) const UNPUBLISHED: &str = "unpublished";

/// How many shards [`UNPUBLISHED_INDEX`] is spread over (`0` to `f`).
pub(crate) const UNPUBLISHED_SHARDS: u8 = 16;

/// The shard of the index an item of key `id` goes to: a stable hash of the key.
pub(crate) fn unpublished_shard(id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    format!("{:x}", digest[0] % UNPUBLISHED_SHARDS)
}

/// Every shard of [`UNPUBLISHED_INDEX`].
pub(crate) fn unpublished_shards() -> impl Iterator<Item = String> {
    (0..UNPUBLISHED_SHARDS).map(|shard| format!("{shard:x}"))
}

/// A time as `stagedAt` writes it: sortable as text.
pub(crate) fn staged_at(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The outbox item of `staged`, committed by the idempotency key `committed_by`.
pub(crate) fn to_item(
    staged: &StagedEvent,
    committed_by: &str,
    now: DateTime<Utc>,
) -> HashMap<String, AttributeValue> {
    let event = &staged.event;
    let s = |value: &str| AttributeValue::S(value.to_string());
    let id = outbox_id(staged);
    let mut item = HashMap::from([
        (UNPUBLISHED.to_string(), s(&unpublished_shard(&id))),
        (OUTBOX_KEY.to_string(), s(&id)),
        ("eventId".into(), s(&event.event_id)),
        ("eventType".into(), s(&event.event_type)),
        ("source".into(), s(&event.source)),
        ("time".into(), s(&event.time.to_rfc3339())),
        ("body".into(), s(&event.body)),
        ("destination".into(), s(&staged.destination.to_string())),
        ("committedBy".into(), s(committed_by)),
        ("stagedAt".into(), s(&staged_at(now))),
    ]);
    if !event.attributes.is_empty() {
        let attributes = event
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), s(value)))
            .collect();
        item.insert("attributes".into(), AttributeValue::M(attributes));
    }
    for (name, value) in [
        ("traceId", &event.trace_id),
        ("groupId", &event.group_id),
        ("deduplicationId", &event.deduplication_id),
    ] {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    item
}

/// One item per event and destination: a rerun that stages the same event (same id) writes
/// the same item.
pub(crate) fn outbox_id(staged: &StagedEvent) -> String {
    format!("{}|{}", staged.event.event_id, staged.destination)
}

/// An outbox item as the relay reads it from the stream's new image (plain JSON).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The item's key.
    pub id: String,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The event's source.
    pub source: String,
    /// The event's time.
    pub time: DateTime<Utc>,
    /// What is published.
    pub body: String,
    /// Where, as text.
    pub destination: String,
    /// Message attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The X-Ray trace header.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// FIFO message group.
    #[serde(default)]
    pub group_id: Option<String>,
    /// FIFO deduplication id.
    #[serde(default)]
    pub deduplication_id: Option<String>,
    /// When it was committed (`stagedAt`).
    #[serde(default)]
    pub staged_at: Option<String>,
    /// Set once the relay published it.
    #[serde(default)]
    pub published_at: Option<String>,
}

impl OutboxEntry {
    /// The event to publish, as it was staged.
    pub fn outgoing(&self) -> OutgoingEvent {
        OutgoingEvent {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            source: self.source.clone(),
            time: self.time,
            trace_id: self.trace_id.clone(),
            body: self.body.clone(),
            attributes: self.attributes.clone(),
            group_id: self.group_id.clone(),
            deduplication_id: self.deduplication_id.clone(),
        }
    }

    /// Where it goes.
    pub fn destination(&self) -> Result<Destination, super::UnknownDestination> {
        self.destination.parse()
    }
}
