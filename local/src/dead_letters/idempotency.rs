//! Whether a dead-lettered message's effect happened anyway: its idempotency record, found
//! as eventkit finds it.

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::Message;
use eventkit::events::{records_from, DecodeOptions};
use eventkit::idempotency::key::{hash_value, idempotency_key, KeyPath};
use serde_json::Value;

/// How to find a dead-lettered message's idempotency record, eventkit's way: the key is the
/// value at `key_path` (default `eventId`) of the message's innermost body (an SQS body,
/// or the SNS message or EventBridge `detail` inside it), hashed under the name the
/// function gave `IdempotencyConfig::new` (`<name>#<sha256 of the canonical JSON>`), in
/// the table's `id` attribute, with its state in `status`.
#[derive(Clone, Debug)]
pub struct IdempotencyLookup {
    /// The idempotency table's name.
    pub table: String,
    /// Where the key is in the innermost body (a dotted path or a JSON Pointer).
    pub key_path: String,
    /// The name the keys are prefixed with; when unknown, any record whose key ends in the
    /// value's hash matches (a scan: fine locally, costly on a big table).
    pub prefix: Option<String>,
}

/// What the idempotency table says about a dead-lettered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Its body has no value at the key path.
    NoKey,
    /// No record: its effect never happened (or expired).
    Absent,
    /// A record in this state (`INPROGRESS`, or `COMPLETED`: its effect happened).
    Recorded(String),
}

impl KeyState {
    /// Whether its effect already happened.
    pub fn is_completed(&self) -> bool {
        matches!(self, Self::Recorded(status) if status == "COMPLETED")
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoKey => f.write_str("no key in the body"),
            Self::Absent => f.write_str("no record"),
            Self::Recorded(status) => f.write_str(status),
        }
    }
}

/// The value identifying `message` for idempotency, found as eventkit finds it (the same
/// unwrapping of SNS and EventBridge carriers).
pub fn key_value(message: &Message, key_path: &str) -> Option<Value> {
    let mut sqs = aws_lambda_events::event::sqs::SqsMessage::default();
    sqs.message_id = message.message_id().map(str::to_string);
    sqs.body = message.body().map(str::to_string);
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records.push(sqs);
    let records = records_from(&event, &DecodeOptions::default());
    let body = records.first()?.json().ok()?;
    KeyPath::parse(key_path).select(body).cloned()
}

/// The state of `message`'s idempotency record.
pub async fn key_state(
    dynamodb: &aws_sdk_dynamodb::Client,
    lookup: &IdempotencyLookup,
    message: &Message,
) -> Result<KeyState> {
    let Some(value) = key_value(message, &lookup.key_path) else {
        return Ok(KeyState::NoKey);
    };
    let status_of = |item: &std::collections::HashMap<String, AttributeValue>| {
        item.get("status")
            .and_then(|status| status.as_s().ok())
            .cloned()
            .unwrap_or_else(|| "?".into())
    };
    if let Some(prefix) = &lookup.prefix {
        let item = dynamodb
            .get_item()
            .table_name(&lookup.table)
            .key("id", AttributeValue::S(idempotency_key(prefix, &value)))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("reading table {}", lookup.table))?;
        return Ok(item
            .item()
            .map_or(KeyState::Absent, |item| KeyState::Recorded(status_of(item))));
    }
    let suffix = format!("#{}", hash_value(&value));
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(&lookup.table)
            .filter_expression("contains(#id, :hash)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":hash", AttributeValue::S(suffix.clone()))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("scanning table {}", lookup.table))?;
        let found = page.items().iter().find(|item| {
            item.get("id")
                .and_then(|id| id.as_s().ok())
                .is_some_and(|id| id.ends_with(&suffix))
        });
        if let Some(item) = found {
            return Ok(KeyState::Recorded(status_of(item)));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(KeyState::Absent);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn message(id: &str, body: &str) -> Message {
        Message::builder().message_id(id).body(body).build()
    }

    #[test]
    fn the_key_is_found_as_eventkit_finds_it_through_the_carriers() {
        let envelope = json!({"eventId": "e-1", "eventType": "OrderPlaced"});
        assert_eq!(
            key_value(&message("m", &envelope.to_string()), "eventId"),
            Some(json!("e-1"))
        );
        // A notification as SNS delivers it to a queue.
        let sns = json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:0:t",
            "MessageId": "n", "Message": envelope.to_string(),
            "Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "1",
            "Signature": "x", "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"});
        assert_eq!(
            key_value(&message("m", &sns.to_string()), "eventId"),
            Some(json!("e-1"))
        );
        let order = json!({"orderId": "o-7"});
        assert_eq!(
            key_value(&message("m", &order.to_string()), "orderId"),
            Some(json!("o-7"))
        );
        assert_eq!(key_value(&message("m", "not json"), "eventId"), None);
    }
}
