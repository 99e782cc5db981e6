//! The events Lambda's services hand a function, built in Lambda's wire format from what
//! the local cloud delivered: an `SqsEvent` from received messages, an `SnsEvent` from an
//! SNS notification, an EventBridge event as the rule delivered it. Each is checked against
//! `aws_lambda_events`' type before it is sent, so the shape is the one lambda_runtime reads.

use anyhow::{bail, Context, Result};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use serde_json::{json, Map, Value};

use crate::cloud::REGION;
use crate::resources::QueueInfo;

/// The `SqsEvent` for `messages` received from `queue`.
pub fn sqs_event(queue: &QueueInfo, messages: &[Message]) -> Result<Value> {
    let records: Vec<Value> = messages.iter().map(|m| sqs_record(queue, m)).collect();
    let event = json!({ "Records": records });
    serde_json::from_value::<SqsEvent>(event.clone()).context("building the SQS event")?;
    Ok(event)
}

/// One message as an `SqsEvent` record.
pub fn sqs_record(queue: &QueueInfo, message: &Message) -> Value {
    let attributes: Map<String, Value> = message
        .attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.as_str().to_string(), Value::from(value.as_str())))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: Map<String, Value> = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.clone(), message_attribute(value)))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": REGION,
    })
}

fn message_attribute(value: &MessageAttributeValue) -> Value {
    json!({
        "dataType": value.data_type(),
        "stringValue": value.string_value(),
        "stringListValues": [],
        "binaryListValues": [],
    })
}

/// The message attribute that marks a delivery whose body is the payload to invoke with as
/// it is (a schedule's `Input`, a dead letter sent back), not an SNS notification or
/// EventBridge event to unwrap.
pub const PAYLOAD_AS_IS: &str = "eventkit-local.payload-as-is";

/// The payload of a delivery marked [`PAYLOAD_AS_IS`]: its JSON, or the text as a string.
pub fn payload_as_is(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

/// What a function's delivery queue held: the invocation payload it stands for.
#[derive(Clone, Debug, PartialEq)]
pub enum AsyncEvent {
    /// An SNS notification (the subscription's envelope delivery).
    Sns(Value),
    /// An EventBridge event, as the rule's target received it.
    EventBridge(Value),
    /// A payload to invoke with as it is (a schedule's `Input`).
    AsIs(Value),
}

impl AsyncEvent {
    /// Recognises a delivery queue message's body.
    pub fn parse(body: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(body).context("delivery is not JSON")?;
        if value["Type"] == "Notification" && value.get("TopicArn").is_some() {
            Ok(Self::Sns(value))
        } else if value.get("detail-type").is_some() {
            Ok(Self::EventBridge(value))
        } else {
            let mut shown = body.to_string();
            shown.truncate(200);
            bail!("delivery is neither an SNS notification nor an EventBridge event: {shown}")
        }
    }

    /// The payload Lambda invokes the function with; `subscription` is the SNS
    /// subscription's ARN.
    pub fn payload(&self, subscription: &str) -> Result<Value> {
        match self {
            Self::Sns(notification) => sns_event(notification, subscription),
            Self::EventBridge(event) => {
                serde_json::from_value::<EventBridgeEvent>(event.clone())
                    .context("building the EventBridge event")?;
                Ok(event.clone())
            }
            Self::AsIs(payload) => Ok(payload.clone()),
        }
    }

    /// The SNS topic, for an SNS notification.
    pub fn topic(&self) -> Option<&str> {
        match self {
            Self::Sns(notification) => notification["TopicArn"].as_str(),
            Self::EventBridge(_) | Self::AsIs(_) => None,
        }
    }
}

/// The `SnsEvent` of one notification (Lambda's field names differ from the HTTP/SQS
/// envelope's in a few places: `SigningCertUrl`, `UnsubscribeUrl`).
fn sns_event(notification: &Value, subscription: &str) -> Result<Value> {
    let field = |name: &str| notification.get(name).cloned().unwrap_or(Value::Null);
    let attributes = match field("MessageAttributes") {
        Value::Null => json!({}),
        attributes => attributes,
    };
    let event = json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription,
            "Sns": {
                "Type": "Notification",
                "MessageId": field("MessageId"),
                "TopicArn": field("TopicArn"),
                "Subject": field("Subject"),
                "Message": field("Message"),
                "Timestamp": field("Timestamp"),
                "SignatureVersion": field("SignatureVersion"),
                "Signature": field("Signature"),
                "SigningCertUrl": notification.get("SigningCertURL").cloned().unwrap_or_else(|| field("SigningCertUrl")),
                "UnsubscribeUrl": notification.get("UnsubscribeURL").cloned().unwrap_or_else(|| field("UnsubscribeUrl")),
                "MessageAttributes": attributes,
            }
        }]
    });
    serde_json::from_value::<SnsEvent>(event.clone()).context("building the SNS event")?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_sns_notification_becomes_the_sns_event_lambda_sends() {
        let body = json!({
            "Type": "Notification", "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:000000000000:orders",
            "Message": "{\"eventId\":\"e-1\"}", "Timestamp": "2026-11-22T10:00:00.000Z",
            "SignatureVersion": "1", "Signature": "s", "SigningCertURL": "https://c",
            "UnsubscribeURL": "https://u",
            "MessageAttributes": {"eventType": {"Type": "String", "Value": "OrderPlaced"}}
        })
        .to_string();
        let event = AsyncEvent::parse(&body).unwrap();
        assert_eq!(
            event.topic(),
            Some("arn:aws:sns:us-east-1:000000000000:orders")
        );
        let payload = event.payload("arn:sub").unwrap();
        let parsed: SnsEvent = serde_json::from_value(payload.clone()).unwrap();
        assert_eq!(parsed.records[0].sns.message, "{\"eventId\":\"e-1\"}");
        assert_eq!(payload["Records"][0]["EventSource"], "aws:sns");
        assert_eq!(payload["Records"][0]["Sns"]["SigningCertUrl"], "https://c");
        assert_eq!(
            payload["Records"][0]["Sns"]["MessageAttributes"]["eventType"]["Value"],
            "OrderPlaced"
        );
    }

    #[test]
    fn an_eventbridge_delivery_is_invoked_as_is() {
        let body = json!({
            "version": "0", "id": "e-1", "detail-type": "StockReserved",
            "source": "eventkit.orders", "account": "000000000000",
            "time": "2026-11-22T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"eventId": "x"}
        });
        let event = AsyncEvent::parse(&body.to_string()).unwrap();
        assert_eq!(event.payload("").unwrap(), body);
        assert!(AsyncEvent::parse("{\"hello\": 1}").is_err());
    }
}
