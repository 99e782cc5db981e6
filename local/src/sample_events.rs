//! Sample events of the triggers the local Lambda runs, as `sam local generate-event` prints
//! them: each is built in Lambda's shape and passed through its `aws_lambda_events` type, so
//! what comes out is what that type reads and writes (a field it does not know would be
//! dropped, a missing one would fail).

use anyhow::{Context, Result};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use clap::ValueEnum;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::cloud::REGION;
use crate::template::ACCOUNT_ID;

/// A trigger the local Lambda runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Trigger {
    /// An SQS event source mapping's batch (one message).
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

/// The sample event of `trigger` carrying `body`: an SQS message body, an SNS message, an
/// EventBridge `detail` (JSON), or a stream record's new image (a JSON object of plain
/// values, turned into DynamoDB's typed attributes; its `id`, `pk` and `sk` are the keys).
pub fn sample(trigger: Trigger, body: Option<&str>) -> Result<Value> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let arn = |service: &str, name: &str| format!("arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{name}");
    let json_body = |default: Value| -> Result<Value> {
        body.map_or(Ok(default), |text| {
            serde_json::from_str(text).context("--body must be JSON for this trigger")
        })
    };
    match trigger {
        Trigger::Sqs => typed::<SqsEvent>(json!({"Records": [{
            "messageId": id,
            "receiptHandle": "AQEB-sample-receipt-handle",
            "body": body.unwrap_or(r#"{"hello": "world"}"#),
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": chrono::Utc::now().timestamp_millis().to_string(),
                "SenderId": ACCOUNT_ID,
                "ApproximateFirstReceiveTimestamp": chrono::Utc::now().timestamp_millis().to_string()
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": arn("sqs", "my-queue"),
            "awsRegion": REGION
        }]})),
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
}
