//! What the relay and the sweeper publish from one unpublished item: an outbox item (one
//! event) or an idempotency record whose completion carries events (see
//! [`DynamoDbStore::with_outbox_on_completions`](crate::idempotency::DynamoDbStore::with_outbox_on_completions)),
//! and how to mark it published. Both read the same two shapes, so they cannot drift.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::item::{
    OutboxEntry, OUTBOX_KEY, OUTBOX_LIST, OUTBOX_RECORD_KEY, OUTBOX_RECORD_TTL, UNPUBLISHED,
};

/// How an item is marked published.
#[derive(Clone, Debug)]
pub(crate) struct Mark {
    /// Its primary key.
    pub key: HashMap<String, AttributeValue>,
    /// Whether the mark sets its TTL too: an outbox item expires once published; a record
    /// keeps the idempotency retention it was completed with.
    pub expires: bool,
    /// A record's TTL attribute and its value (epoch seconds), which the sweeper pushes
    /// back while the record is unpublished; `None` for an outbox item (no TTL until
    /// published).
    pub ttl: Option<(String, u64)>,
}

/// The events of one unpublished item.
#[derive(Clone, Debug)]
pub(crate) struct Carried {
    pub entries: Vec<OutboxEntry>,
    pub mark: Mark,
}

/// An event of a record's `outbox` list as an outbox item reads: with what the completion
/// left out of it put back (its item id, `eventId|destination`, and the record's `stagedAt`).
fn on_record(event: &Value, record: &Value) -> Value {
    let mut event = event.clone();
    if let Some(fields) = event.as_object_mut() {
        if !fields.contains_key(OUTBOX_KEY) {
            let id = format!(
                "{}|{}",
                fields
                    .get("eventId")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                fields
                    .get("destination")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            fields.insert(OUTBOX_KEY.to_string(), Value::String(id));
        }
        if !fields.contains_key("stagedAt") {
            if let Some(staged_at) = record.get("stagedAt") {
                fields.insert("stagedAt".to_string(), staged_at.clone());
            }
        }
    }
    event
}

impl Carried {
    /// The events of the item `item` (plain JSON, as a stream image or a queried item
    /// decodes), or `None` when it is published already or carries none (an idempotency
    /// record without events: a claim, a plain completion).
    pub(crate) fn from_json(item: &Value) -> Result<Option<Self>, String> {
        if !item["publishedAt"].is_null() {
            return Ok(None);
        }
        if item[OUTBOX_LIST].is_null() && item[UNPUBLISHED].is_null() && item["body"].is_null() {
            return Ok(None);
        }
        if let Some(list) = item[OUTBOX_LIST].as_array() {
            let entries = list
                .iter()
                .map(|event| serde_json::from_value::<OutboxEntry>(on_record(event, item)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| format!("an event on the record: {error}"))?;
            let key = item[OUTBOX_RECORD_KEY]
                .as_object()
                .ok_or_else(|| format!("the record has no {OUTBOX_RECORD_KEY}"))?
                .iter()
                .map(|(name, value)| match value {
                    Value::String(text) => Ok((name.clone(), AttributeValue::S(text.clone()))),
                    other => Err(format!(
                        "{OUTBOX_RECORD_KEY}.{name} is {other}, not a string"
                    )),
                })
                .collect::<Result<HashMap<_, _>, _>>()?;
            let ttl = item[OUTBOX_RECORD_TTL].as_str().and_then(|name| {
                let at = item[name]
                    .as_u64()
                    .or_else(|| item[name].as_str()?.parse().ok())?;
                Some((name.to_string(), at))
            });
            return Ok(Some(Self {
                entries,
                mark: Mark {
                    key,
                    expires: false,
                    ttl,
                },
            }));
        }
        let entry: OutboxEntry =
            serde_json::from_value(item.clone()).map_err(|error| error.to_string())?;
        let key = HashMap::from([(OUTBOX_KEY.to_string(), AttributeValue::S(entry.id.clone()))]);
        Ok(Some(Self {
            entries: vec![entry],
            mark: Mark {
                key,
                expires: true,
                ttl: None,
            },
        }))
    }

    /// A name for logs and crash points: the item's key values.
    pub(crate) fn name(&self) -> String {
        let mut values: Vec<&str> = self
            .mark
            .key
            .values()
            .filter_map(|value| value.as_s().ok().map(String::as_str))
            .collect();
        values.sort_unstable();
        values.join("|")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn event(id: &str) -> Value {
        json!({"id": format!("{id}|sqs:q"), "eventId": id, "eventType": "T", "source": "s",
               "time": "2026-12-07T00:00:00Z", "body": "{}", "destination": "sqs:q"})
    }

    #[test]
    fn an_outbox_item_is_one_event_marked_by_its_id_with_a_ttl() {
        let carried = Carried::from_json(&event("e-1")).unwrap().unwrap();
        assert_eq!(carried.entries.len(), 1);
        assert_eq!(
            carried.mark.key["id"],
            AttributeValue::S("e-1|sqs:q".into())
        );
        assert!(carried.mark.expires);
        assert_eq!(carried.name(), "e-1|sqs:q");
    }

    #[test]
    fn an_event_on_a_record_gets_back_what_the_completion_left_out() {
        let mut slim = event("e-1");
        slim.as_object_mut().unwrap().remove("id");
        let record = json!({"id": "bank#abc", "status": "COMPLETED", "unpublished": "3",
                            "stagedAt": "2026-12-07T00:00:01.000Z",
                            "outbox": [slim], "outboxKey": {"id": "bank#abc"}});
        let carried = Carried::from_json(&record).unwrap().unwrap();
        let entry = &carried.entries[0];
        assert_eq!(entry.id, "e-1|sqs:q");
        assert_eq!(entry.staged_at.as_deref(), Some("2026-12-07T00:00:01.000Z"));
    }

    #[test]
    fn a_record_carries_its_events_and_is_marked_by_its_own_key_without_a_ttl() {
        let record = json!({"id": "bank#abc", "status": "COMPLETED", "unpublished": "3",
                            "expiration": 1_799_000_000u64, "outboxTtl": "expiration",
                            "outbox": [event("e-1"), event("e-2")], "outboxKey": {"id": "bank#abc"}});
        let carried = Carried::from_json(&record).unwrap().unwrap();
        let ids: Vec<&str> = carried
            .entries
            .iter()
            .map(|e| e.event_id.as_str())
            .collect();
        assert_eq!(ids, ["e-1", "e-2"]);
        assert_eq!(carried.mark.key["id"], AttributeValue::S("bank#abc".into()));
        assert!(
            !carried.mark.expires,
            "a record keeps its idempotency retention"
        );
    }

    #[test]
    fn published_items_carry_nothing_and_unreadable_ones_say_why() {
        let mut published = event("e-1");
        published["publishedAt"] = json!("2026-12-07T00:00:01Z");
        assert!(Carried::from_json(&published).unwrap().is_none());
        let keyless = json!({"outbox": [event("e-1")]});
        assert!(Carried::from_json(&keyless)
            .unwrap_err()
            .contains("outboxKey"));
        assert!(Carried::from_json(&json!({"id": 1, "body": "{}"})).is_err());
        let claim = json!({"id": "bank#abc", "status": "INPROGRESS"});
        assert!(
            Carried::from_json(&claim).unwrap().is_none(),
            "a record without events"
        );
    }
}
