//! The events `sam local generate-event` produces (kept in `events/generated/`, see its
//! README): what developers feed `sam local invoke` must decode the way Lambda's real
//! events do.

use super::shorthands::{record_from_eventbridge, records_from_sns, records_from_sqs};
use super::*;
use crate::events::{DecodeReason, MessageAttribute, Source};

macro_rules! sample {
    ($name:literal) => {
        include_str!(concat!("../../../../events/generated/", $name))
    };
}

/// The envelope SAM was given with `--body` / `--message` (see the README).
fn sam_envelope() -> EventEnvelope<CustomerRegistered> {
    serde_json::from_value(json!({
        "eventId": "4f1c2d3e-0000-4000-8000-000000000001",
        "eventType": "CustomerRegistered",
        "eventVersion": 2,
        "source": "customers",
        "time": "2024-05-01T12:00:00Z",
        "correlationId": "4f1c2d3e-0000-4000-8000-000000000001",
        "causationId": "4f1c2d3e-0000-4000-8000-000000000001",
        "data": {"customerId": "c-42", "firstName": "Ada", "lastName": "Lovelace"}
    }))
    .unwrap()
}

#[test]
fn sqs_receive_message() {
    let records =
        records_from_sqs(&serde_json::from_str(sample!("sqs-receive-message.json")).unwrap());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id(), "19dd0b57-b21e-4ac1-bd88-01bbb068cb78");
    assert_eq!(records[0].source(), Source::Sqs);
    assert_eq!(records[0].body().unwrap(), "Hello from SQS!");
    assert_eq!(records[0].receive_count(), Some(1));
    assert!(records[0].attributes().is_empty());
}

#[test]
fn sqs_receive_message_with_an_envelope() {
    let records = records_from_sqs(
        &serde_json::from_str(sample!("sqs-receive-message-envelope.json")).unwrap(),
    );
    assert_eq!(records[0].id(), "19dd0b57-b21e-4ac1-bd88-01bbb068cb78");
    assert_eq!(
        records[0].event::<CustomerRegistered>().unwrap(),
        sam_envelope()
    );
}

#[test]
fn sns_notification() {
    let records =
        records_from_sns(&serde_json::from_str(sample!("sns-notification.json")).unwrap());
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.id(), "95df01b4-ee98-5cb9-9903-4c221d41eb5e");
    assert_eq!(record.source(), Source::Sns);
    assert_eq!(record.body().unwrap(), "example message");
    assert_eq!(record.attribute("Test"), Some("TestString"));
    // SAM's "TestBinary" is not base64: kept as text rather than failing the record.
    assert_eq!(
        record.attributes()["TestBinary"],
        MessageAttribute {
            data_type: "Binary".into(),
            string_value: Some("TestBinary".into()),
            binary_value: None,
        }
    );
    let error = record.event::<CustomerRegistered>().unwrap_err();
    assert_eq!(error.record_id, "95df01b4-ee98-5cb9-9903-4c221d41eb5e");
    assert!(matches!(error.reason, DecodeReason::InvalidJson { .. }));
}

#[test]
fn sns_notification_with_an_envelope() {
    let records =
        records_from_sns(&serde_json::from_str(sample!("sns-notification-envelope.json")).unwrap());
    assert_eq!(
        records[0].event::<CustomerRegistered>().unwrap(),
        sam_envelope()
    );
    assert_eq!(records[0].attribute("Test"), Some("TestString"));
}

#[test]
fn cloudwatch_scheduled_event() {
    let record = record_from_eventbridge(
        &serde_json::from_str(sample!("cloudwatch-scheduled-event.json")).unwrap(),
    );
    assert_eq!(record.id(), "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c");
    assert_eq!(record.source(), Source::EventBridge);
    assert_eq!(record.json().unwrap(), &json!({}));
    // A schedule carries no event of ours: the handler gets a typed error, not a panic.
    let error = record.event::<CustomerRegistered>().unwrap_err();
    assert!(
        matches!(error.reason, DecodeReason::WrongEnvelope { .. }),
        "{error}"
    );
}
