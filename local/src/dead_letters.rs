//! Dead-letter queues: how many messages each holds, why each message failed, whether its
//! effect happened anyway (its idempotency record is `COMPLETED`), and moving messages back
//! to the queue they failed in. Everything here speaks plain SQS (and DynamoDB for the
//! idempotency check), so it works on the local cloud and on AWS alike.
//!
//! Moving back: all of a queue's messages go with SQS's own message-move task
//! (`StartMessageMoveTask`, which returns each message to the queue it came from). When only
//! some are chosen, or the endpoint has no such task, each chosen message is received, sent
//! to its source queue and only then deleted: a crash in between leaves a duplicate in the
//! source queue (which an idempotent consumer absorbs), never a lost message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use eventkit::events::{records_from, DecodeOptions};
use eventkit::idempotency::key::{hash_value, idempotency_key, KeyPath};
use serde_json::Value;

use crate::resources::QueueInfo;

/// How long a message read by [`read_all`] stays hidden from other readers before it is
/// handed back.
const READ_VISIBILITY: i32 = 60;

/// Messages in a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Visible (or delayed): waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted nor visible again.
    pub in_flight: u64,
}

impl Depth {
    /// Every message, visible or not.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight
    }
}

/// How many messages `queue` holds.
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue: &QueueInfo) -> Result<Depth> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .with_context(|| format!("reading the depth of {}", queue.name))?;
    let count = |name: QueueAttributeName| {
        output
            .attributes()
            .and_then(|attributes| attributes.get(&name))
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Depth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    })
}

/// Every visible message of `queue` with its attributes, handed back (visible again) before
/// this returns, so reading changes nothing but the receive counts.
pub async fn read_all(sqs: &aws_sdk_sqs::Client, queue: &QueueInfo) -> Result<Vec<Message>> {
    let messages = receive_all(sqs, queue).await?;
    hand_back(sqs, queue, &messages).await;
    Ok(messages)
}

/// Receives until nothing more is visible; what was received stays hidden for
/// [`READ_VISIBILITY`] seconds.
async fn receive_all(sqs: &aws_sdk_sqs::Client, queue: &QueueInfo) -> Result<Vec<Message>> {
    let mut seen: Vec<Message> = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .visibility_timeout(READ_VISIBILITY)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .with_context(|| format!("reading {}", queue.name))?;
        let fresh: Vec<Message> = output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter(|m| !seen.iter().any(|s| s.message_id() == m.message_id()))
            .collect();
        if fresh.is_empty() {
            return Ok(seen);
        }
        seen.extend(fresh);
    }
}

/// Makes `messages` visible again at once. Best effort: one that is not handed back
/// becomes visible by itself after [`READ_VISIBILITY`] seconds.
async fn hand_back(sqs: &aws_sdk_sqs::Client, queue: &QueueInfo, messages: &[Message]) {
    for chunk in messages.chunks(10) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(message.receipt_handle()?)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        let _ = sqs
            .change_message_visibility_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await;
    }
}

/// Why a dead-lettered message failed, as the message itself says: the attributes Lambda
/// gives what its asynchronous invocation dead-letters (`ErrorMessage`, `ErrorCode`) and
/// those EventBridge gives what a rule's target dead-letters (`ERROR_MESSAGE`,
/// `ERROR_CODE`). A queue's redrive adds nothing: then the function's log says why.
pub fn reason_in_attributes(message: &Message) -> Option<String> {
    let attribute = |name: &str| {
        message
            .message_attributes()?
            .get(name)?
            .string_value()
            .map(str::to_string)
    };
    let text = attribute("ErrorMessage").or_else(|| attribute("ERROR_MESSAGE"))?;
    match attribute("ErrorCode").or_else(|| attribute("ERROR_CODE")) {
        Some(code) => Some(format!("{text} (code {code})")),
        None => Some(text),
    }
}

/// A line of a function's log about a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedReason {
    /// The function (logical id) whose log has it.
    pub function: String,
    /// The line's message (a JSON log event's `message`, plus its `error` when it has one),
    /// or the whole line.
    pub text: String,
}

/// The last line of the functions' own output (not the platform's) that names
/// `message_id`: what a function logs about a record it fails, in the logs
/// `functions` lists (logical id and log file).
pub fn reason_in_logs(functions: &[(String, PathBuf)], message_id: &str) -> Option<LoggedReason> {
    let mut last: Option<LoggedReason> = None;
    for (function, log) in functions {
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        let found = text
            .lines()
            .rev()
            .filter(|line| line.contains(message_id))
            .find_map(|line| {
                let json: Option<Value> = serde_json::from_str(line).ok();
                match json {
                    // The local platform's own lines (`{"type": "platform.…"}`).
                    Some(json) if json["type"].as_str().is_some_and(is_platform) => None,
                    Some(json) if json["message"].is_string() => {
                        let mut text = json["message"].as_str().unwrap_or_default().to_string();
                        if let Some(error) = json["error"].as_str() {
                            text.push_str(&format!(": {error}"));
                        }
                        Some(text)
                    }
                    _ => Some(line.to_string()),
                }
            });
        if let Some(text) = found {
            last = Some(LoggedReason {
                function: function.clone(),
                text,
            });
        }
    }
    last
}

fn is_platform(kind: &str) -> bool {
    kind.starts_with("platform.")
}

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

/// How messages went back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedriveMethod {
    /// SQS's own message-move task.
    MessageMoveTask,
    /// Received, sent to the source queue, then deleted, one by one.
    ReceiveSendDelete,
}

impl std::fmt::Display for RedriveMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MessageMoveTask => "SQS message-move task",
            Self::ReceiveSendDelete => "receive, send, delete",
        })
    }
}

/// Moves every message of `dead_letter` back to the queue it failed in with a message-move
/// task, and waits for it. `None` when the endpoint has no message-move task (then move
/// them one by one with [`redrive_chosen`]).
pub async fn redrive_all(
    sqs: &aws_sdk_sqs::Client,
    dead_letter: &QueueInfo,
    timeout: Duration,
) -> Result<Option<u64>> {
    let started = sqs
        .start_message_move_task()
        .source_arn(&dead_letter.arn)
        .send()
        .await;
    if let Err(error) = started {
        let code = error.code().unwrap_or_default().to_string();
        if is_unsupported(&code) {
            return Ok(None);
        }
        return Err(error)
            .with_context(|| format!("starting a message-move task from {}", dead_letter.name));
    }
    let begun = Instant::now();
    loop {
        let tasks = sqs
            .list_message_move_tasks()
            .source_arn(&dead_letter.arn)
            .max_results(1)
            .send()
            .await
            .with_context(|| format!("reading the message-move task of {}", dead_letter.name))?;
        if let Some(task) = tasks.results().first() {
            match task.status() {
                Some("COMPLETED") => {
                    return Ok(Some(task.approximate_number_of_messages_moved() as u64))
                }
                Some(status @ ("FAILED" | "CANCELLED")) => bail!(
                    "the message-move task from {} ended {status}: {}",
                    dead_letter.name,
                    task.failure_reason().unwrap_or("no reason given")
                ),
                _ => {}
            }
        }
        if begun.elapsed() > timeout {
            bail!(
                "the message-move task from {} did not finish within {}s (it goes on)",
                dead_letter.name,
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Error codes of an endpoint that does not know message-move tasks.
fn is_unsupported(code: &str) -> bool {
    [
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "InvalidAction",
        "UnknownOperationException",
        "NotImplemented",
        "InternalFailure",
    ]
    .contains(&code)
}

/// What happened to each message of a redrive.
#[derive(Clone, Debug, Default)]
pub struct Redriven {
    /// The messages sent back: the dead letter's id, and the id the source queue gave the
    /// copy (SQS gives every message sent a new id).
    pub moved: Vec<(String, String)>,
    /// Ids of the messages left in the dead-letter queue, with why.
    pub left: Vec<(String, String)>,
}

/// Moves the messages of `dead_letter` that `choose` accepts back to their source queue
/// (the `DeadLetterQueueSourceArn` SQS stamps on them, else the only one of `sources`):
/// each is sent there, then deleted here. `choose` says `Err(why)` to leave one in place.
pub async fn redrive_chosen(
    sqs: &aws_sdk_sqs::Client,
    dead_letter: &QueueInfo,
    sources: &[QueueInfo],
    choose: impl Fn(&Message) -> std::result::Result<(), String>,
) -> Result<Redriven> {
    let received = receive_all(sqs, dead_letter).await?;
    let mut outcome = Redriven::default();
    let mut kept = Vec::new();
    for message in received {
        let id = message.message_id().unwrap_or_default().to_string();
        if let Err(why) = choose(&message) {
            outcome.left.push((id, why));
            kept.push(message);
            continue;
        }
        let Some(source) = source_of(&message, sources) else {
            outcome
                .left
                .push((id, "its source queue is unknown".to_string()));
            kept.push(message);
            continue;
        };
        let copy = send_back(sqs, &message, source).await?;
        // Deleted only once the source queue holds it: a crash before this line duplicates
        // the message, never loses it.
        if let Some(receipt) = message.receipt_handle() {
            sqs.delete_message()
                .queue_url(&dead_letter.url)
                .receipt_handle(receipt)
                .send()
                .await
                .with_context(|| format!("deleting {id} from {}", dead_letter.name))?;
        }
        outcome.moved.push((id, copy));
    }
    hand_back(sqs, dead_letter, &kept).await;
    Ok(outcome)
}

/// The queue `message` failed in.
fn source_of<'a>(message: &Message, sources: &'a [QueueInfo]) -> Option<&'a QueueInfo> {
    let stamped = message.attributes().and_then(|attributes| {
        attributes.get(&MessageSystemAttributeName::DeadLetterQueueSourceArn)
    });
    match stamped {
        Some(arn) => sources.iter().find(|source| source.arn == *arn),
        None if sources.len() == 1 => sources.first(),
        None => None,
    }
}

/// Sends a copy of `message` to `source`; returns the copy's message id.
async fn send_back(
    sqs: &aws_sdk_sqs::Client,
    message: &Message,
    source: &QueueInfo,
) -> Result<String> {
    let id = message.message_id().unwrap_or_default();
    let mut request = sqs
        .send_message()
        .queue_url(&source.url)
        .message_body(message.body().unwrap_or_default())
        .set_message_attributes(message.message_attributes().cloned());
    let system = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|attributes| attributes.get(&name))
            .cloned()
    };
    if let Some(group) = system(MessageSystemAttributeName::MessageGroupId) {
        // A FIFO queue: same group; a fresh deduplication id, so it is not taken for the
        // original send.
        request = request
            .message_group_id(group)
            .message_deduplication_id(format!("redrive-{}", uuid::Uuid::new_v4().simple()));
    }
    let sent = request
        .send()
        .await
        .with_context(|| format!("sending {id} back to {}", source.name))?;
    Ok(sent.message_id().unwrap_or_default().to_string())
}

/// Messages per dead-letter queue, counted.
pub async fn depths(
    sqs: &aws_sdk_sqs::Client,
    queues: &BTreeMap<String, QueueInfo>,
) -> Result<BTreeMap<String, Depth>> {
    let mut found = BTreeMap::new();
    for (logical, queue) in queues {
        found.insert(logical.clone(), depth(sqs, queue).await?);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_sdk_sqs::types::MessageAttributeValue;
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

    #[test]
    fn a_reason_comes_from_the_attributes_or_from_the_functions_own_log_lines() {
        let attributed = Message::builder()
            .message_id("m")
            .message_attributes(
                "ErrorMessage",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("boom")
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(reason_in_attributes(&attributed).as_deref(), Some("boom"));
        assert_eq!(reason_in_attributes(&message("m", "x")), None);

        let log = std::env::temp_dir().join(format!("reason-{}.log", uuid::Uuid::new_v4()));
        std::fs::write(
            &log,
            "message m-1: first try failed\n\
             {\"type\":\"platform.start\",\"record\":{\"id\":\"m-1\"}}\n\
             {\"message\":\"record m-1 failed\",\"error\":\"quantity 0\"}\n\
             message m-2: fine\n",
        )
        .unwrap();
        let functions = vec![("Consumer".to_string(), log.clone())];
        assert_eq!(
            reason_in_logs(&functions, "m-1"),
            Some(LoggedReason {
                function: "Consumer".into(),
                text: "record m-1 failed: quantity 0".into()
            })
        );
        assert_eq!(reason_in_logs(&functions, "m-3"), None);
        std::fs::remove_file(log).unwrap();
    }
}
