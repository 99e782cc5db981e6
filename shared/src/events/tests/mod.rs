//! Cross-cutting tests of the events module: the AWS fixtures, the SAM samples, every
//! nesting, malformed input, and properties of the envelope and upcasting.
//!
//! Lambda payloads are built as JSON and parsed with `aws_lambda_events`, exactly as the
//! runtime does, rather than constructed field by field.

mod carriers;
mod fixtures;
mod malformed;
mod properties;
mod sam_samples;

/// The per-carrier shorthands these tests were written with, as thin calls of the one
/// public way ([`records_from`](crate::events::records_from)).
pub(super) mod shorthands {
    use aws_lambda_events::eventbridge::EventBridgeEvent;
    use aws_lambda_events::sns::SnsEvent;
    use aws_lambda_events::sqs::SqsEvent;
    use serde::de::DeserializeOwned;

    use crate::events::{
        records_from, DecodeError, DecodeOptions, EventEnvelope, EventRecord, VersionedEvent,
    };

    pub(crate) use crate::events::decode::decode_event;
    pub(crate) use crate::events::sources::record_from_sqs_message;

    pub fn records_from_sqs(event: &SqsEvent) -> Vec<EventRecord> {
        records_from(event, &DecodeOptions::default())
    }
    pub fn records_from_sqs_with(event: &SqsEvent, options: &DecodeOptions) -> Vec<EventRecord> {
        records_from(event, options)
    }
    pub fn records_from_sns(event: &SnsEvent) -> Vec<EventRecord> {
        records_from(event, &DecodeOptions::default())
    }
    pub fn records_from_sns_with(event: &SnsEvent, options: &DecodeOptions) -> Vec<EventRecord> {
        records_from(event, options)
    }
    pub fn record_from_eventbridge(event: &EventBridgeEvent) -> EventRecord {
        record_from_eventbridge_with(event, &DecodeOptions::default())
    }
    pub fn record_from_eventbridge_with(
        event: &EventBridgeEvent,
        options: &DecodeOptions,
    ) -> EventRecord {
        records_from(event, options).remove(0)
    }

    /// The views the tests compare.
    pub trait Views {
        /// The envelope, shape checked, type and version not.
        fn envelope<T: DeserializeOwned>(&self) -> Result<EventEnvelope<T>, DecodeError>;
        /// The current version's data.
        fn data<T: VersionedEvent>(&self) -> Result<T, DecodeError>;
    }

    impl Views for EventRecord {
        fn envelope<T: DeserializeOwned>(&self) -> Result<EventEnvelope<T>, DecodeError> {
            EventEnvelope::from_value(self.json()?).map_err(|reason| self.decode_error(reason))
        }
        fn data<T: VersionedEvent>(&self) -> Result<T, DecodeError> {
            self.event().map(EventEnvelope::into_data)
        }
    }
}

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::{json, Value};

use super::EventEnvelope;
use crate::events::versioned::tests::CustomerRegistered;

/// The current version of the example event.
fn ada() -> EventEnvelope<CustomerRegistered> {
    EventEnvelope::new(
        "customers",
        CustomerRegistered {
            customer_id: "c-42".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        },
    )
}

/// An SQS message as Lambda delivers it.
fn sqs_message(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1714564800000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1714564800001"
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
        "awsRegion": "us-east-1"
    })
}

fn sqs_event(messages: Vec<Value>) -> SqsEvent {
    serde_json::from_value(json!({ "Records": messages })).unwrap()
}

/// An SQS event of one message per body, ids `m-0`, `m-1`, …
fn sqs_event_of(bodies: &[&str]) -> SqsEvent {
    sqs_event(
        bodies
            .iter()
            .enumerate()
            .map(|(i, body)| sqs_message(&format!("m-{i}"), body))
            .collect(),
    )
}

/// An SNS message as SNS writes it into an SQS body (no raw delivery), and as Lambda gets
/// it under `Sns` in a direct SNS event.
fn sns_message(message: &str) -> Value {
    // The attribute a publisher sets from the envelope (an SNS filter routes by it).
    let event_type = serde_json::from_str::<Value>(message)
        .ok()
        .and_then(|body| body["eventType"].as_str().map(str::to_string))
        .unwrap_or_else(|| "CustomerRegistered".into());
    json!({
        "Type": "Notification",
        "MessageId": "5a8a3c2e-0000-5000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:customers",
        "Message": message,
        "Timestamp": "2024-05-01T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {
            "eventType": {"Type": "String", "Value": event_type},
            "checksum": {"Type": "Binary", "Value": "AAEC"}
        }
    })
}

fn sns_event(message: &str) -> SnsEvent {
    serde_json::from_value(json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:customers:sub",
            "Sns": sns_message(message)
        }]
    }))
    .unwrap()
}

/// An EventBridge event whose detail is `detail`, as a rule target receives it.
fn eventbridge_json(detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "CustomerRegistered",
        "source": "customers",
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail
    })
}

fn eventbridge_event(detail: Value) -> EventBridgeEvent {
    serde_json::from_value(eventbridge_json(detail)).unwrap()
}
