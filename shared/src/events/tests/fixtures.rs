//! Every SQS, SNS and EventBridge fixture of the `aws_lambda_events` crate (copied into
//! `fixtures/aws_lambda_events/`): what AWS documents these events to look like must turn
//! into records with the right id, source, body and metadata, directly and nested in SQS.

use aws_lambda_events::sqs::{SqsApiMessage, SqsBatchResponse, SqsMessage};
use serde::Deserialize;

use super::shorthands::{
    record_from_eventbridge, record_from_sqs_message, records_from_sns, records_from_sqs, Views,
};
use super::*;
use crate::events::{DecodeOptions, DecodeReason, EventRecord, MessageAttribute, Source};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/aws_lambda_events/", $name))
    };
}

fn sqs_fixture(json: &str) -> Vec<EventRecord> {
    records_from_sqs(&serde_json::from_str(json).unwrap())
}

fn sns_fixture(json: &str) -> Vec<EventRecord> {
    records_from_sns(&serde_json::from_str(json).unwrap())
}

/// The `Sns` object of a direct SNS event's first record: what SNS writes into an SQS body
/// when the subscription does not use raw delivery.
fn sns_notification_of(json: &str) -> String {
    let event: Value = serde_json::from_str(json).unwrap();
    event["Records"][0]["Sns"].to_string()
}

fn assert_wrong_envelope(record: &EventRecord) {
    let error = record.envelope::<Value>().unwrap_err();
    assert_eq!(error.record_id, record.id());
    assert!(
        matches!(error.reason, DecodeReason::WrongEnvelope { .. }),
        "{error}"
    );
}

#[test]
fn sqs_event_with_every_attribute_kind() {
    let records = sqs_fixture(fixture!("example-sqs-event.json"));
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.id(), "MessageID_1");
    assert_eq!(record.source(), Source::Sqs);
    assert_eq!(record.body().unwrap(), "Message Body");
    assert_eq!(record.receive_count(), Some(2));
    assert_eq!(record.message_group_id(), None);
    assert_eq!(record.attribute("Attribute1"), Some("AttributeValue1"));
    assert_eq!(
        record.attributes()["Attribute2"],
        MessageAttribute {
            data_type: "Number".into(),
            string_value: Some("123".into()),
            binary_value: None,
        }
    );
    assert_eq!(
        record.attributes()["Attribute3"],
        MessageAttribute {
            data_type: "Binary".into(),
            string_value: None,
            binary_value: Some(b"1100".to_vec()),
        }
    );
    // A plain-text body is a record like any other until a handler asks for JSON.
    let error = record.json().unwrap_err();
    assert_eq!(error.record_id, "MessageID_1");
    assert!(matches!(error.reason, DecodeReason::InvalidJson { .. }));
}

#[test]
fn sqs_event_with_a_json_body() {
    #[derive(Deserialize)]
    struct Body {
        a: String,
        b: u32,
    }
    let records = sqs_fixture(fixture!("example-sqs-event-obj.json"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id(), "MessageID_1");
    assert_eq!(records[0].body().unwrap(), r#"{"a":"Test","b":123}"#);
    let body: Body = records[0].decode().unwrap();
    assert_eq!((body.a.as_str(), body.b), ("Test", 123));
    assert_wrong_envelope(&records[0]);
}

#[test]
fn sqs_api_messages_as_a_poller_hands_them_over() {
    // ReceiveMessage output, not a Lambda event: a poller outside Lambda builds the
    // message from it.
    // `SqsApiEvent` expects a camelCase `messages` key, unlike the API and this fixture;
    // the messages themselves are PascalCase.
    let api: Value = serde_json::from_str(fixture!("example-sqs-api-event-obj.json")).unwrap();
    let messages: Vec<SqsApiMessage> = serde_json::from_value(api["Messages"].clone()).unwrap();
    assert_eq!(messages.len(), 1);
    let mut message = SqsMessage::default();
    message.message_id = messages[0].message_id.clone();
    message.body = messages[0].body.clone();
    let record = record_from_sqs_message(&message, &DecodeOptions::default());
    assert_eq!(record.id(), "f663a189-97e2-41f5-9c0e-cfb595d8322c");
    assert_eq!(record.json().unwrap()["city"], "provincetown");
    assert_eq!(record.json().unwrap()["country"], "usa");
}

#[test]
fn decode_errors_name_the_ids_of_the_documented_batch_response() {
    let expected: SqsBatchResponse =
        serde_json::from_str(fixture!("example-sqs-batch-response.json")).unwrap();
    let body = serde_json::to_string(&ada()).unwrap();
    let event = sqs_event(
        ["id1", "id2", "id3", "id4", "id5"]
            .iter()
            .map(|id| match *id {
                "id2" => sqs_message(id, "{\"eventId\": "),
                "id4" => sqs_message(id, "not an event"),
                _ => sqs_message(id, &body),
            })
            .collect(),
    );
    let mut response = SqsBatchResponse::default();
    for record in records_from_sqs(&event) {
        if let Err(error) = record.event::<CustomerRegistered>() {
            response.add_failure(error.record_id);
        }
    }
    assert_eq!(response, expected);
}

#[test]
fn sns_events_direct_and_enveloped_in_sqs() {
    for json in [
        fixture!("example-sns-event.json"),
        fixture!("example-sns-event-pascal-case.json"),
    ] {
        let direct = sns_fixture(json);
        assert_eq!(direct.len(), 1);
        assert_eq!(direct[0].id(), "82833b5c-8d5d-56d0-b0e1-7511f8253eb8");
        assert_eq!(direct[0].source(), Source::Sns);
        assert_eq!(direct[0].body().unwrap(), "Hello\r\nworld!");
        assert!(direct[0].attributes().is_empty());

        let nested = records_from_sqs(&sqs_event_of(&[&sns_notification_of(json)]));
        assert_eq!(nested[0].id(), "m-0");
        assert_eq!(nested[0].source(), Source::SnsViaSqs { raw: false });
        assert_eq!(nested[0].body().unwrap(), "Hello\r\nworld!");
    }
}

#[test]
fn sns_event_with_a_json_message() {
    let json = fixture!("example-sns-event-obj.json");
    let direct = sns_fixture(json);
    let nested = records_from_sqs(&sqs_event_of(&[&sns_notification_of(json)]));
    for record in [&direct[0], &nested[0]] {
        assert_eq!(
            record.body().unwrap(),
            r#"{"foo":"Hello world!","bar":123}"#
        );
        assert_eq!(record.json().unwrap()["bar"], 123);
        assert_wrong_envelope(record);
    }
    assert_eq!(direct[0].id(), "82833b5c-8d5d-56d0-b0e1-7511f8253eb8");
}

#[test]
fn cloudwatch_alarms_through_sns_are_foreign_payloads() {
    let single = sns_fixture(fixture!(
        "example-cloudwatch-alarm-sns-payload-single-metric.json"
    ));
    let multiple = sns_fixture(fixture!(
        "example-cloudwatch-alarm-sns-payload-multiple-metrics.json"
    ));
    assert_eq!((single.len(), multiple.len()), (1, 2));
    for record in single.iter().chain(&multiple) {
        assert_eq!(record.id(), "95df01b4-ee98-5cb9-9903-4c221d41eb5e");
        let alarm = record.json().unwrap();
        assert_eq!(alarm["AlarmName"], "EXAMPLE");
        assert_eq!(alarm["NewStateValue"], "ALARM");
        assert_wrong_envelope(record);
    }
    assert_eq!(
        single[0].json().unwrap()["Trigger"]["MetricName"],
        "NetworkOut"
    );
}

#[test]
fn subscription_messages_in_a_queue_carry_no_event() {
    for (json, kind) in [
        (
            fixture!("example-sns-subscription-confirmation.json"),
            "SubscriptionConfirmation",
        ),
        (
            fixture!("example-sns-unsubscribe-confirmation.json"),
            "UnsubscribeConfirmation",
        ),
    ] {
        let good = serde_json::to_string(&ada()).unwrap();
        let records = records_from_sqs(&sqs_event_of(&[json, &good]));
        let error = records[0].body().unwrap_err();
        assert_eq!(error.record_id, "m-0");
        assert!(
            matches!(&error.reason, DecodeReason::WrongEnvelope { detail } if detail.contains(kind)),
            "{error}"
        );
        assert_eq!(records[0].source(), Source::SnsViaSqs { raw: false });
        assert_eq!(
            records[1].event::<CustomerRegistered>().unwrap(),
            ada_from(&good)
        );
    }
}

fn ada_from(body: &str) -> EventEnvelope<CustomerRegistered> {
    serde_json::from_str(body).unwrap()
}

#[test]
fn eventbridge_events_direct_and_as_a_rule_target_queue() {
    for (json, id, detail) in [
        (
            fixture!("example-eventbridge-event-obj.json"),
            "7bf73129-1428-4cd3-a780-95db273d1602",
            json!({"instance-id": "i-abcd1111", "state": "pending"}),
        ),
        (
            fixture!("example-eventbridge-schedule.json"),
            "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            json!({}),
        ),
    ] {
        let direct = record_from_eventbridge(&serde_json::from_str(json).unwrap());
        assert_eq!(direct.id(), id);
        assert_eq!(direct.source(), Source::EventBridge);
        assert_eq!(direct.json().unwrap(), &detail);
        assert_wrong_envelope(&direct);

        let nested = records_from_sqs(&sqs_event_of(&[json]));
        assert_eq!(nested[0].id(), "m-0");
        assert_eq!(nested[0].source(), Source::EventBridgeViaSqs);
        assert_eq!(nested[0].json().unwrap(), &detail);
        assert!(nested[0].attributes().is_empty());
    }
}
