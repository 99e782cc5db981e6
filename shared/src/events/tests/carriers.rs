//! The same envelope, carried every supported way, decodes to the same event; the record's
//! id, source and metadata come from the right layer.

use super::shorthands::{
    record_from_eventbridge, records_from_sns, records_from_sqs, records_from_sqs_with, Views,
};
use super::*;
use crate::events::{Carrier, DecodeOptions, DecodeReason, EventRecord, MessageAttribute, Source};

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

/// The example event, its last name padded so that its body is `bytes` long.
fn ada_of_size(bytes: usize) -> (EventEnvelope<CustomerRegistered>, String) {
    let mut event = ada();
    let unpadded = serde_json::to_string(&event).unwrap().len();
    event.data.last_name.push_str(&"e".repeat(bytes - unpadded));
    let body = serde_json::to_string(&event).unwrap();
    assert_eq!(body.len(), bytes);
    (event, body)
}

/// A consumer's body cap is its carrier's limit: a valid message as large as SQS or
/// EventBridge carry decodes (not poison), SNS's smaller limit applies to SNS alone, and an
/// SNS notification in a queue is measured against SQS's limit, which carries it.
#[test]
fn a_message_as_large_as_its_carrier_carries_decodes() {
    let (large, body) = ada_of_size(900 * 1024);
    let sqs = only(records_from_sqs(&sqs_event_of(&[&body])));
    assert_eq!(sqs.event::<CustomerRegistered>().unwrap(), large);
    let detail = serde_json::to_value(&large).unwrap();
    let eventbridge = record_from_eventbridge(&eventbridge_event(detail));
    assert_eq!(eventbridge.event::<CustomerRegistered>().unwrap(), large);

    let (at_limit, body) = ada_of_size(Carrier::Sns.max_bytes());
    let sns = only(records_from_sns(&sns_event(&body)));
    assert_eq!(sns.event::<CustomerRegistered>().unwrap(), at_limit);
    let wrapped = sns_message(&body).to_string();
    assert!(wrapped.len() > Carrier::Sns.max_bytes());
    let via_sqs = only(records_from_sqs(&sqs_event_of(&[&wrapped])));
    assert_eq!(via_sqs.event::<CustomerRegistered>().unwrap(), at_limit);

    let (_, body) = ada_of_size(Carrier::Sns.max_bytes() + 1);
    let too_large = only(records_from_sns(&sns_event(&body)));
    assert_eq!(
        too_large.event::<CustomerRegistered>().unwrap_err().reason,
        DecodeReason::BodyTooLarge {
            size: Carrier::Sns.max_bytes() + 1,
            limit: Carrier::Sns.max_bytes()
        }
    );
}
