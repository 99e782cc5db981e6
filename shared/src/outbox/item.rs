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
//!
//! **Present means staged.** An item is written only where none is: one already under the
//! same id was staged by an earlier commit of the same event (a rerun derives the same
//! `eventId`), published or not, and is left exactly as it is. Overwriting it would drop the
//! relay's `publishedAt` and TTL, and the stream would hand the relay the event once more.
//! Every store follows the rule: DynamoDB with [`STAGE_CONDITION`] on each outbox put, the
//! in-memory store with [`is_same_item`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{AttributeValue, Put};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::destination::Destination;
use super::size::item_bytes;
use super::unit_of_work::StagedEvent;
use crate::events::{Carrier, EventTooLarge, OutgoingEvent};

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

/// The most bytes `committedBy` takes: an idempotency key, which a DynamoDB partition key
/// (the idempotency table's) holds up to 2,048 of, or a record id, which is shorter.
const COMMITTED_BY_MAX_BYTES: usize = 2048;

/// Whether `staged` can be committed and then published: its destination's carrier holds
/// the event, and a DynamoDB item its outbox item with all it gains after staging. The
/// smaller of the two limits is the event's; past it the event is refused when staged,
/// since once committed nothing could publish it. Returns the outbox item's size.
pub(crate) fn admit(staged: &StagedEvent) -> Result<usize, EventTooLarge> {
    staged.destination.carrier().admit(&staged.event)?;
    let bytes = item_bytes_at_most(staged);
    EventTooLarge::check(&staged.event, bytes, Carrier::DynamoDbItem)?;
    Ok(bytes)
}

/// The outbox item's size at its largest: `stagedAt` as long as chrono writes it, the
/// longest `committedBy`, and the relay's mark (`publishedAt`, `expiration`).
fn item_bytes_at_most(staged: &StagedEvent) -> usize {
    let latest = DateTime::<Utc>::MAX_UTC;
    let mut item = to_item(staged, "", latest);
    item.insert("publishedAt".into(), AttributeValue::S(latest.to_rfc3339()));
    item.insert("expiration".into(), AttributeValue::N(u64::MAX.to_string()));
    item_bytes(Some(&item)) + COMMITTED_BY_MAX_BYTES
}

/// The condition of every outbox put: no item under its key yet (present means staged).
pub(crate) const STAGE_CONDITION: &str = "attribute_not_exists(#key)";

/// The put of `staged` into the outbox table `table`, conditional on [`STAGE_CONDITION`].
pub(crate) fn put(
    table: &str,
    staged: &StagedEvent,
    committed_by: &str,
    now: DateTime<Utc>,
) -> Result<Put, BuildError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(to_item(staged, committed_by, now)))
        .condition_expression(STAGE_CONDITION)
        .expression_attribute_names("#key", OUTBOX_KEY)
        .build()
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

/// One item per event and destination: a rerun that stages the same event (same id) names
/// the same item, which is then already present and left alone.
/// The attribute of an idempotency record that holds the events riding on its completion
/// (a list of maps, each an outbox item's attributes but `unpublished`), when the store
/// commits events on completions.
pub(crate) const OUTBOX_LIST: &str = "outbox";

/// The attribute of such a record that holds its primary key, so that the relay and the
/// sweeper mark it without knowing the table's key names.
pub(crate) const OUTBOX_RECORD_KEY: &str = "outboxKey";

/// The attribute of such a record that names its TTL attribute, which the sweeper pushes
/// back while the record's events are unpublished (see [`Sweeper`](super::Sweeper)).
pub(crate) const OUTBOX_RECORD_TTL: &str = "outboxTtl";

/// The attributes a completion sets to carry `events` on the record of `record_key`
/// (committed by the idempotency key `committed_by`): the events, the record's shard of the
/// [`UNPUBLISHED_INDEX`], `stagedAt`, the key and the name of its TTL attribute. Refused when the events would make the
/// record larger than a DynamoDB item (with `result_bytes` of stored result beside them).
pub(crate) fn on_completion(
    events: &[StagedEvent],
    committed_by: &str,
    (record_key, ttl_attribute): (HashMap<String, AttributeValue>, &str),
    result_bytes: usize,
    now: DateTime<Utc>,
) -> Result<Vec<(String, AttributeValue)>, String> {
    let list: Vec<AttributeValue> = events
        .iter()
        .map(|event| {
            let mut item = to_item(event, committed_by, now);
            // Left out what the record holds once (its key, its `stagedAt`, its shard) or
            // what follows from the event (its item id, `eventId|destination`): a write is
            // billed per started kilobyte of the record, and a small event then fits one with
            // its record (the relay and the sweeper put them back: `Carried::from_json`).
            for name in [UNPUBLISHED, OUTBOX_KEY, "committedBy", "stagedAt"] {
                item.remove(name);
            }
            AttributeValue::M(item)
        })
        .collect();
    let extra = vec![
        (OUTBOX_LIST.to_string(), AttributeValue::L(list)),
        (
            UNPUBLISHED.to_string(),
            AttributeValue::S(unpublished_shard(committed_by)),
        ),
        ("stagedAt".to_string(), AttributeValue::S(staged_at(now))),
        (OUTBOX_RECORD_KEY.to_string(), AttributeValue::M(record_key)),
        (
            OUTBOX_RECORD_TTL.to_string(),
            AttributeValue::S(ttl_attribute.to_string()),
        ),
    ];
    let bytes =
        item_bytes(Some(&extra.iter().cloned().collect())) + result_bytes + COMMITTED_BY_MAX_BYTES;
    if bytes > Carrier::DynamoDbItem.max_bytes() {
        return Err(format!(
            "{} events of about {bytes} bytes with the result do not fit one idempotency record (DynamoDB items hold {} bytes)",
            events.len(),
            Carrier::DynamoDbItem.max_bytes()
        ));
    }
    Ok(extra)
}

pub(crate) fn outbox_id(staged: &StagedEvent) -> String {
    format!("{}|{}", staged.event.event_id, staged.destination)
}

/// Whether `a` and `b` are written to the same outbox item: the later commit finds the
/// earlier one's item present and leaves it alone.
pub(crate) fn is_same_item(a: &StagedEvent, b: &StagedEvent) -> bool {
    outbox_id(a) == outbox_id(b)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Classify, ErrorClass};
    use crate::events::EventEnvelope;
    use crate::outbox::{UnitOfWork, UnitOfWorkError};

    fn event_with_body(bytes: usize) -> OutgoingEvent {
        let envelope = EventEnvelope::from_parts("Noted", 1, "tests", ());
        let mut event = OutgoingEvent::from_envelope(&envelope).unwrap();
        event.body = "x".repeat(bytes);
        event
    }

    /// The largest body `destination` takes, and what refuses one byte more.
    fn boundary(destination: &Destination) -> (usize, Carrier) {
        let carrier = destination.carrier();
        let overhead = event_with_body(0).size_bytes();
        let staged = |bytes| StagedEvent {
            destination: destination.clone(),
            event: event_with_body(bytes),
        };
        let item_overhead = item_bytes_at_most(&staged(0));
        let by_carrier = carrier.max_bytes() - overhead;
        let by_item = Carrier::DynamoDbItem.max_bytes() - item_overhead;
        if by_carrier < by_item {
            (by_carrier, carrier)
        } else {
            (by_item, Carrier::DynamoDbItem)
        }
    }

    #[test]
    fn an_event_is_staged_up_to_the_smaller_of_its_carriers_and_the_outbox_items_limit() {
        for (destination, binding) in [
            (Destination::sns("arn:aws:sns:us-east-1:1:t"), Carrier::Sns),
            (Destination::sqs("https://sqs/1/q"), Carrier::DynamoDbItem),
            (Destination::event_bridge("bus"), Carrier::DynamoDbItem),
        ] {
            let (largest, carrier) = boundary(&destination);
            assert_eq!(carrier, binding, "{destination}");
            let mut work = UnitOfWork::new();
            work.emit(destination.clone(), event_with_body(largest))
                .unwrap_or_else(|error| panic!("{destination}: {error}"));

            let over = event_with_body(largest + 1);
            let refused = work.emit(destination.clone(), over.clone()).unwrap_err();

            let UnitOfWorkError::EventTooLarge(too_large) = &refused else {
                panic!("{destination}: {refused:?}");
            };
            assert_eq!(too_large.carrier, binding, "{destination}");
            assert_eq!(too_large.limit, binding.max_bytes());
            assert_eq!(too_large.size, binding.max_bytes() + 1);
            assert_eq!(
                (too_large.event_id.as_str(), too_large.event_type.as_str()),
                (over.event_id.as_str(), "Noted")
            );
            assert_eq!(refused.class(), ErrorClass::Permanent);
            assert_eq!(work.events().len(), 1, "the refused event is not staged");
        }
    }

    /// The outbox item's other attributes, and all it gains after staging, leave an event
    /// for SQS or EventBridge a few KB under the item's 400 KB, and fit the item measured as
    /// DynamoDB would measure it once committed and published.
    #[test]
    fn an_outbox_item_keeps_room_for_what_it_gains_after_staging() {
        let destination = Destination::sqs("https://sqs.us-east-1.amazonaws.com/1/orders");
        let (largest, _) = boundary(&destination);
        assert!(
            (400 * 1024 - 4096..400 * 1024 - 2048).contains(&largest),
            "{largest}"
        );
        let staged = StagedEvent {
            destination,
            event: event_with_body(largest),
        };
        let mut item = to_item(&staged, &format!("bank#{}", "f".repeat(64)), Utc::now());
        item.insert(
            "publishedAt".into(),
            AttributeValue::S(Utc::now().to_rfc3339()),
        );
        item.insert("expiration".into(), AttributeValue::N("1767225600".into()));
        assert!(item_bytes(Some(&item)) <= Carrier::DynamoDbItem.max_bytes());
    }
}
