//! The same envelope, carried every supported way, decodes to the same event; the record's
//! id, source and metadata come from the right layer.

use super::shorthands::{
    record_from_eventbridge, records_from_sns, records_from_sqs, records_from_sqs_with, Views,
};
use super::*;
use crate::events::{DecodeOptions, EventRecord, MessageAttribute, Source};

fn only(mut records: Vec<EventRecord>) -> EventRecord {
    assert_eq!(records.len(), 1);
    records.remove(0)
}

#[test]
fn every_carrier_yields_the_same_event() {
    let event = ada();
    let body = serde_json::to_string(&event).unwrap();
    let detail = serde_json::to_value(&event).unwrap();

    let carried = [
        (Source::Sqs, only(records_from_sqs(&sqs_event_of(&[&body])))),
        (Source::Sns, only(records_from_sns(&sns_event(&body)))),
        (
            Source::EventBridge,
            record_from_eventbridge(&eventbridge_event(detail.clone())),
        ),
        (
            Source::SnsViaSqs { raw: false },
            only(records_from_sqs(&sqs_event_of(&[
                &sns_message(&body).to_string()
            ]))),
        ),
        (
            Source::SnsViaSqs { raw: true },
            only(records_from_sqs_with(
                &sqs_event_of(&[&body]),
                &DecodeOptions::default().with_raw_sns_delivery(true),
            )),
        ),
        (
            Source::EventBridgeViaSqs,
            only(records_from_sqs(&sqs_event_of(&[&eventbridge_json(
                detail,
            )
            .to_string()]))),
        ),
    ];
    for (source, record) in carried {
        assert_eq!(record.source(), source);
        assert_eq!(
            record.event::<CustomerRegistered>().unwrap(),
            event,
            "{source}"
        );
        assert_eq!(
            record.data::<CustomerRegistered>().unwrap(),
            event.data,
            "{source}"
        );
        assert_eq!(
            record.json().unwrap().clone(),
            serde_json::to_value(&event).unwrap(),
            "{source}"
        );
    }
}

#[test]
fn ids_come_from_the_outer_carrier() {
    let body = serde_json::to_string(&ada()).unwrap();
    let nested = sqs_event(vec![
        sqs_message("sqs-1", &body),
        sqs_message("sqs-2", &sns_message(&body).to_string()),
        sqs_message(
            "sqs-3",
            &eventbridge_json(serde_json::to_value(ada()).unwrap()).to_string(),
        ),
    ]);
    let ids: Vec<String> = records_from_sqs(&nested)
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    assert_eq!(ids, ["sqs-1", "sqs-2", "sqs-3"]);

    assert_eq!(
        only(records_from_sns(&sns_event(&body))).id(),
        "5a8a3c2e-0000-5000-8000-000000000001"
    );
    assert_eq!(
        record_from_eventbridge(&eventbridge_event(serde_json::json!({}))).id(),
        "7bf73129-1428-4cd3-a780-95db273d1602"
    );
}

#[test]
fn sns_attributes_come_from_the_envelope_and_binary_is_decoded() {
    let record = only(records_from_sqs(&sqs_event_of(&[
        &sns_message("hello").to_string()
    ])));
    assert_eq!(record.body().unwrap(), "hello");
    assert_eq!(record.attribute("eventType"), Some("CustomerRegistered"));
    assert_eq!(
        record.attributes()["checksum"],
        MessageAttribute {
            data_type: "Binary".into(),
            string_value: None,
            binary_value: Some(vec![0, 1, 2]),
        }
    );
    // The direct SNS form exposes the same attributes.
    let direct = only(records_from_sns(&sns_event("hello")));
    assert_eq!(direct.attributes(), record.attributes());
}

#[test]
fn fifo_metadata_and_receive_count() {
    let mut message = sqs_message("m-1", "{}");
    message["attributes"]["MessageGroupId"] = "customer-42".into();
    message["attributes"]["ApproximateReceiveCount"] = "3".into();
    message["messageAttributes"] = serde_json::json!({
        "tenant": {"stringValue": "acme", "dataType": "String", "stringListValues": [], "binaryListValues": []}
    });
    let record = only(records_from_sqs(&sqs_event(vec![message])));
    assert_eq!(record.message_group_id(), Some("customer-42"));
    assert_eq!(record.receive_count(), Some(3));
    assert_eq!(record.attribute("tenant"), Some("acme"));

    let direct_sns = only(records_from_sns(&sns_event("{}")));
    assert_eq!(
        (direct_sns.message_group_id(), direct_sns.receive_count()),
        (None, None)
    );
}

#[test]
fn bare_domain_types_decode_too() {
    // Not every producer wraps its events: `decode` takes the body as any type.
    let body = r#"{"customerId":"c-1","firstName":"Ada","lastName":"Lovelace"}"#;
    let record = only(records_from_sqs(&sqs_event_of(&[
        &sns_message(body).to_string()
    ])));
    assert_eq!(
        record.decode::<CustomerRegistered>().unwrap().first_name,
        "Ada"
    );
}
