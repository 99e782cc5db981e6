//! Sample events of the triggers the local Lambda runs, as `sam local generate-event` prints
//! them: each is built in Lambda's shape and passed through its `aws_lambda_events` type, so
//! what comes out is what that type reads and writes (a field it does not know would be
//! dropped, a missing one would fail).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sns::{SnsEvent, SnsMessage};
use aws_lambda_events::event::sqs::SqsEvent;
use clap::ValueEnum;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::batch_entries::{AttributeValue, BatchEntry};
use crate::cloud::REGION;
use crate::template::ACCOUNT_ID;

/// A trigger the local Lambda runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Trigger {
    /// An SQS event source mapping's batch (a record per message).
    Sqs,
    /// An SNS subscription's notification.
    Sns,
    /// An EventBridge rule's event.
    Eventbridge,
    /// A DynamoDB stream batch (one INSERT).
    DynamodbStream,
    /// A scheduled rule's event (`Schedule`, `ScheduleV2` with the default input).
    Schedule,
}

impl Trigger {
    /// Its name on the command line (`dynamodb-stream`).
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |value| value.get_name().to_string())
    }
}

/// What an SQS record of a sample carries: its body and message attributes.
#[derive(Clone, Debug, Default)]
pub struct SampleMessage {
    /// The message body (with `from_sns`, the message published to the topic).
    pub body: String,
    /// Its message attributes, by name.
    pub attributes: BTreeMap<String, AttributeValue>,
}

impl From<&BatchEntry> for SampleMessage {
    fn from(entry: &BatchEntry) -> Self {
        Self {
            body: entry.message_body.clone(),
            attributes: entry.message_attributes.clone(),
        }
    }
}

/// An SQS event source mapping's batch with a record per message. With `from_sns`, each
/// record's body is the notification a topic delivers to a subscribed queue (without raw
/// message delivery): the message and its attributes wrapped in SNS's JSON envelope.
pub fn sqs_sample(messages: &[SampleMessage], from_sns: bool) -> Result<Value> {
    let now = chrono::Utc::now();
    let millis = now.timestamp_millis().to_string();
    let records = messages
        .iter()
        .map(|message| {
            let id = uuid::Uuid::new_v4().to_string();
            let (body, attributes) = if from_sns {
                (sns_envelope(message, now)?, json!({}))
            } else {
                (message.body.clone(), sqs_attributes(&message.attributes))
            };
            Ok(json!({
                "messageId": id,
                "receiptHandle": "AQEB-sample-receipt-handle",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": millis,
                    "SenderId": ACCOUNT_ID,
                    "ApproximateFirstReceiveTimestamp": millis
                },
                "messageAttributes": attributes,
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn("sqs", "my-queue"),
                "awsRegion": REGION
            }))
        })
        .collect::<Result<Vec<Value>>>()?;
    typed::<SqsEvent>(json!({ "Records": records }))
}

/// The notification SNS puts in a subscribed queue's message body, as SNS writes it
/// (`SigningCertURL`, `UnsubscribeURL`), checked against `SnsMessage`, which reads it.
fn sns_envelope(message: &SampleMessage, at: chrono::DateTime<chrono::Utc>) -> Result<String> {
    let topic = arn("sns", "my-topic");
    let attributes: Map<String, Value> = message
        .attributes
        .iter()
        .map(|(name, value)| {
            let text = value
                .string_value
                .clone()
                .or_else(|| value.binary_value.clone())
                .unwrap_or_default();
            (
                name.clone(),
                json!({"Type": value.data_type, "Value": text}),
            )
        })
        .collect();
    let envelope = json!({
        "Type": "Notification",
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "TopicArn": topic,
        "Message": message.body,
        "Timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem",
        "UnsubscribeURL": format!(
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:sample"
        ),
        "MessageAttributes": attributes
    });
    serde_json::from_value::<SnsMessage>(envelope.clone())
        .context("the SNS envelope does not fit SnsMessage")?;
    Ok(envelope.to_string())
}

/// Message attributes as an SQS record carries them (`stringValue`, `dataType`, ...).
fn sqs_attributes(attributes: &BTreeMap<String, AttributeValue>) -> Value {
    attributes
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                json!({
                    "dataType": value.data_type,
                    "stringValue": value.string_value,
                    "binaryValue": value.binary_value,
                    "stringListValues": [],
                    "binaryListValues": []
                }),
            )
        })
        .collect::<Map<String, Value>>()
        .into()
}

fn arn(service: &str, name: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{name}")
}

/// The sample event of `trigger` carrying `body`: an SQS message body, an SNS message, an
/// EventBridge `detail` (JSON), or a stream record's new image (a JSON object of plain
/// values, turned into DynamoDB's typed attributes; its `id`, `pk` and `sk` are the keys).
pub fn sample(trigger: Trigger, body: Option<&str>) -> Result<Value> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let json_body = |default: Value| -> Result<Value> {
        body.map_or(Ok(default), |text| {
            serde_json::from_str(text).context("--body must be JSON for this trigger")
        })
    };
    match trigger {
        Trigger::Sqs => sqs_sample(
            &[SampleMessage {
                body: body.unwrap_or(r#"{"hello": "world"}"#).to_string(),
                attributes: BTreeMap::new(),
            }],
            false,
        ),
        Trigger::Sns => typed::<SnsEvent>(json!({"Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{}:{}", arn("sns", "my-topic"), uuid::Uuid::new_v4()),
            "Sns": {
                "Type": "Notification",
                "MessageId": id,
                "TopicArn": arn("sns", "my-topic"),
                "Subject": null,
                "Message": body.unwrap_or(r#"{"hello": "world"}"#),
                "Timestamp": now,
                "SignatureVersion": "1",
                "Signature": "EXAMPLE",
                "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem",
                "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": {}
            }
        }]})),
        Trigger::Eventbridge => typed::<EventBridgeEvent>(json!({
            "version": "0",
            "id": id,
            "detail-type": "SampleEvent",
            "source": "my.application",
            "account": ACCOUNT_ID,
            "time": now,
            "region": REGION,
            "resources": [],
            "detail": json_body(json!({"hello": "world"}))?
        })),
        Trigger::Schedule => typed::<EventBridgeEvent>(json!({
            "version": "0",
            "id": id,
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": now,
            "region": REGION,
            "resources": [arn("events", "rule/my-schedule")],
            "detail": json_body(json!({}))?
        })),
        Trigger::DynamodbStream => {
            let image = json_body(json!({"id": "item-1", "count": 1}))?;
            let image = image
                .as_object()
                .context("--body must be a JSON object (the item) for dynamodb-stream")?;
            let mut keys: Map<String, Value> = image
                .iter()
                .filter(|(name, _)| KEY_NAMES.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), attribute(value)))
                .collect();
            if keys.is_empty() {
                keys.extend(
                    image
                        .iter()
                        .take(1)
                        .map(|(name, value)| (name.clone(), attribute(value))),
                );
            }
            let new_image: Map<String, Value> = image
                .iter()
                .map(|(name, value)| (name.clone(), attribute(value)))
                .collect();
            typed::<StreamEvent>(json!({"Records": [{
                "eventID": id.replace('-', ""),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": chrono::Utc::now().timestamp(),
                    "Keys": keys,
                    "NewImage": new_image,
                    "SequenceNumber": "100000000000000000001",
                    "SizeBytes": 64,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                },
                "eventSourceARN": arn("dynamodb", "table/my-table/stream/2026-01-01T00:00:00.000")
            }]}))
        }
    }
}

/// Attribute names taken for the stream record's `Keys` (else the item's first attribute).
const KEY_NAMES: &[&str] = &["id", "pk", "sk", "PK", "SK"];

/// `value` through `T`: read as the type, written back.
fn typed<T: DeserializeOwned + Serialize>(value: Value) -> Result<Value> {
    let event: T = serde_json::from_value(value).context("the sample does not fit its type")?;
    Ok(serde_json::to_value(event)?)
}

/// A plain JSON value as a DynamoDB attribute value.
fn attribute(value: &Value) -> Value {
    match value {
        Value::Null => json!({"NULL": true}),
        Value::Bool(flag) => json!({"BOOL": flag}),
        Value::Number(number) => json!({"N": number.to_string()}),
        Value::String(text) => json!({"S": text}),
        Value::Array(items) => json!({"L": items.iter().map(attribute).collect::<Vec<_>>()}),
        Value::Object(fields) => json!({"M": fields
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect::<Map<String, Value>>()}),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_sample_carries_the_body_in_its_triggers_place() {
        let sqs = sample(Trigger::Sqs, Some("hi")).unwrap();
        assert_eq!(sqs["Records"][0]["body"], "hi");
        assert_eq!(sqs["Records"][0]["eventSource"], "aws:sqs");
        let sns = sample(Trigger::Sns, Some("hi")).unwrap();
        assert_eq!(sns["Records"][0]["Sns"]["Message"], "hi");
        let bus = sample(Trigger::Eventbridge, Some(r#"{"a": 1}"#)).unwrap();
        assert_eq!(bus["detail"]["a"], 1);
        assert_eq!(
            sample(Trigger::Schedule, None).unwrap()["detail-type"],
            "Scheduled Event"
        );
        let stream = sample(Trigger::DynamodbStream, Some(r#"{"n": 2, "pk": "x"}"#)).unwrap();
        let change = &stream["Records"][0]["dynamodb"];
        assert_eq!(change["NewImage"]["n"], json!({"N": "2"}));
        assert_eq!(change["Keys"], json!({"pk": {"S": "x"}}));
        assert!(sample(Trigger::Eventbridge, Some("not json")).is_err());
    }

    #[test]
    fn an_sqs_sample_has_a_record_per_message_and_wraps_each_in_sns_when_asked() {
        let entries = crate::batch_entries::parse(
            r#"[{"Id": "1", "MessageBody": "{\"n\": 1}",
                 "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "order"}}},
                {"Id": "2", "MessageBody": "two"}]"#,
        )
        .unwrap();
        let messages: Vec<SampleMessage> = entries.iter().map(SampleMessage::from).collect();
        let plain = sqs_sample(&messages, false).unwrap();
        let records = plain["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["body"], r#"{"n": 1}"#);
        assert_eq!(
            records[0]["messageAttributes"]["kind"]["stringValue"],
            "order"
        );
        assert_ne!(records[0]["messageId"], records[1]["messageId"]);

        let wrapped = sqs_sample(&messages, true).unwrap();
        let body: Value =
            serde_json::from_str(wrapped["Records"][0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["Type"], "Notification");
        assert_eq!(body["Message"], r#"{"n": 1}"#);
        assert_eq!(
            body["MessageAttributes"]["kind"],
            json!({"Type": "String", "Value": "order"})
        );
        assert!(body.get("SigningCertURL").is_some(), "{body}");
        let notification: SnsMessage = serde_json::from_value(body).unwrap();
        assert_eq!(notification.message, r#"{"n": 1}"#);
    }
}
