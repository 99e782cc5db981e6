//! Bad input fails one record with a reason a handler can act on, names that record, and
//! leaves the rest of its batch decodable.

use super::shorthands::{
    record_from_eventbridge, record_from_eventbridge_with, records_from_sns, records_from_sns_with,
    records_from_sqs, records_from_sqs_with,
};
use super::*;
use crate::events::{Carrier, DecodeError, DecodeOptions, DecodeReason};

/// What a bad record must fail with: the exact reason, or the variant when the reason
/// carries a parser message.
enum Expected {
    Exactly(DecodeReason),
    /// A body of this size, larger than what the carrier carries.
    TooLarge(usize),
    InvalidJson,
    InvalidData,
    WrongEnvelope,
}

impl Expected {
    fn matches(&self, reason: &DecodeReason, carrier: Carrier) -> bool {
        match self {
            Self::Exactly(expected) => reason == expected,
            Self::TooLarge(size) => {
                reason
                    == &DecodeReason::BodyTooLarge {
                        size: *size,
                        limit: carrier.max_bytes(),
                    }
            }
            Self::InvalidJson => matches!(reason, DecodeReason::InvalidJson { .. }),
            Self::InvalidData => matches!(reason, DecodeReason::InvalidData { .. }),
            Self::WrongEnvelope => matches!(reason, DecodeReason::WrongEnvelope { .. }),
        }
    }
}

fn missing(field: &str) -> Expected {
    Expected::Exactly(DecodeReason::MissingField {
        field: field.into(),
    })
}

/// The example envelope as JSON, changed by `edit`.
fn ada_json(edit: impl FnOnce(&mut Value)) -> String {
    let mut value = serde_json::to_value(ada()).unwrap();
    edit(&mut value);
    value.to_string()
}

fn without(field: &'static str) -> impl FnOnce(&mut Value) {
    move |value| {
        value.as_object_mut().unwrap().remove(field);
    }
}

/// `depth` objects nested in each other: deeper than any parser should recurse.
fn deeply_nested(depth: usize) -> String {
    format!("{}1{}", r#"{"data":"#.repeat(depth), "}".repeat(depth))
}

/// Every kind of bad body, with the reason it must fail with when decoded as the current
/// version of `CustomerRegistered`.
fn bad_bodies() -> Vec<(&'static str, String, Expected)> {
    let good = ada_json(|_| {});
    let sns_in_sns = sns_message(&sns_message(&good).to_string()).to_string();
    let eventbridge_in_sns = sns_message(&eventbridge_json(ada_value()).to_string()).to_string();
    let sns_in_eventbridge = eventbridge_json(sns_message(&good)).to_string();
    // Larger than any carrier carries.
    let huge = ada_json(|v| v["data"]["lastName"] = "x".repeat(Carrier::Sqs.max_bytes()).into());
    let huge_size = huge.len();
    let mut sns_message_not_a_string = sns_message(&good);
    sns_message_not_a_string["Message"] = json!(42);
    let mut eventbridge_without_source = eventbridge_json(ada_value());
    eventbridge_without_source
        .as_object_mut()
        .unwrap()
        .remove("source");
    vec![
        (
            "truncated",
            good[..good.len() / 2].to_string(),
            Expected::InvalidJson,
        ),
        ("empty", String::new(), Expected::InvalidJson),
        (
            "not JSON",
            "CustomerRegistered c-42".into(),
            Expected::InvalidJson,
        ),
        (
            "truncated SNS wrapper",
            sns_message(&good).to_string()[..120].to_string(),
            Expected::InvalidJson,
        ),
        // Deeper than serde_json's recursion limit: refused, never a stack overflow.
        (
            "deeply nested objects",
            deeply_nested(10_000),
            Expected::InvalidJson,
        ),
        // Valid JSON (skipped without recursion), but not an object.
        (
            "deeply nested arrays",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            Expected::WrongEnvelope,
        ),
        (
            "version as string",
            ada_json(|v| v["eventVersion"] = "2".into()),
            Expected::InvalidData,
        ),
        (
            "negative version",
            ada_json(|v| v["eventVersion"] = (-1).into()),
            Expected::InvalidData,
        ),
        (
            "id as number",
            ada_json(|v| v["eventId"] = 7.into()),
            Expected::InvalidData,
        ),
        (
            "bad time",
            ada_json(|v| v["time"] = "yesterday".into()),
            Expected::InvalidData,
        ),
        (
            "data as string",
            ada_json(|v| v["data"] = "Ada".into()),
            Expected::InvalidData,
        ),
        (
            "name as number",
            ada_json(|v| v["data"]["firstName"] = 42.into()),
            Expected::InvalidData,
        ),
        (
            "no correlation id",
            ada_json(without("correlationId")),
            missing("correlationId"),
        ),
        (
            "no event type",
            ada_json(without("eventType")),
            missing("eventType"),
        ),
        ("no data", ada_json(without("data")), missing("data")),
        (
            "no last name",
            ada_json(|v| {
                v["data"].as_object_mut().unwrap().remove("lastName");
            }),
            missing("/data/lastName"),
        ),
        ("huge", huge, Expected::TooLarge(huge_size)),
        (
            "bare domain object",
            serde_json::to_string(&ada().data).unwrap(),
            Expected::WrongEnvelope,
        ),
        ("array", format!("[{good}]"), Expected::WrongEnvelope),
        ("string", json!(good).to_string(), Expected::WrongEnvelope),
        ("SNS in SNS", sns_in_sns, Expected::WrongEnvelope),
        (
            "EventBridge in SNS",
            eventbridge_in_sns,
            Expected::WrongEnvelope,
        ),
        (
            "SNS in EventBridge",
            sns_in_eventbridge,
            Expected::WrongEnvelope,
        ),
        (
            "SNS message not a string",
            sns_message_not_a_string.to_string(),
            Expected::WrongEnvelope,
        ),
        (
            "EventBridge without source",
            eventbridge_without_source.to_string(),
            Expected::WrongEnvelope,
        ),
        (
            "unknown type",
            ada_json(|v| v["eventType"] = "CustomerDeleted".into()),
            Expected::Exactly(DecodeReason::UnknownEventType {
                expected: "CustomerRegistered".into(),
                found: "CustomerDeleted".into(),
            }),
        ),
        (
            "unknown version",
            ada_json(|v| v["eventVersion"] = 3.into()),
            Expected::Exactly(DecodeReason::UnknownVersion {
                event_type: "CustomerRegistered".into(),
                version: 3,
                current: 2,
            }),
        ),
        (
            "bad old version",
            ada_json(|v| {
                v["eventVersion"] = 1.into();
                v["data"] = json!({"customerId": "c-42", "name": ["Ada"]});
            }),
            Expected::InvalidData,
        ),
    ]
}

fn ada_value() -> Value {
    serde_json::to_value(ada()).unwrap()
}

#[test]
fn each_bad_sqs_record_fails_alone_with_its_reason() {
    let good = ada();
    let good_body = serde_json::to_string(&good).unwrap();
    let cases = bad_bodies();
    // Good and bad records alternate: a bad one must not affect its neighbours.
    let mut messages = Vec::new();
    for (i, (_, body, _)) in cases.iter().enumerate() {
        messages.push(sqs_message(&format!("bad-{i}"), body));
        messages.push(sqs_message(&format!("good-{i}"), &good_body));
    }
    let records = records_from_sqs(&sqs_event(messages));
    assert_eq!(records.len(), cases.len() * 2);

    for (i, (name, _, expected)) in cases.iter().enumerate() {
        let error = records[2 * i].event::<CustomerRegistered>().unwrap_err();
        assert_eq!(error.record_id, format!("bad-{i}"), "{name}");
        assert!(
            expected.matches(&error.reason, Carrier::Sqs),
            "{name}: {error}"
        );
        assert!(error.to_string().starts_with(&format!("record bad-{i}: ")));

        assert_eq!(records[2 * i + 1].id(), format!("good-{i}"));
        assert_eq!(
            records[2 * i + 1].event::<CustomerRegistered>().unwrap(),
            good,
            "{name}"
        );
    }
}

#[test]
fn bad_direct_sns_messages_fail_with_their_reason() {
    for (name, body, expected) in bad_bodies() {
        let records = records_from_sns(&sns_event(&body));
        let error = records[0].event::<CustomerRegistered>().unwrap_err();
        assert_eq!(
            error.record_id, "5a8a3c2e-0000-5000-8000-000000000001",
            "{name}"
        );
        assert!(
            expected.matches(&error.reason, Carrier::Sns),
            "{name}: {error}"
        );
    }
}

#[test]
fn bad_eventbridge_details_fail_with_their_reason() {
    // A detail is always a JSON object, so only the cases that are one apply.
    for (name, body, expected) in bad_bodies() {
        let Ok(detail @ Value::Object(_)) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        let record = record_from_eventbridge(&eventbridge_event(detail));
        let error = record.event::<CustomerRegistered>().unwrap_err();
        assert_eq!(
            error.record_id, "7bf73129-1428-4cd3-a780-95db273d1602",
            "{name}"
        );
        assert!(
            expected.matches(&error.reason, Carrier::EventBridge),
            "{name}: {error}"
        );
    }
}

#[test]
fn bad_envelopes_inside_sns_and_eventbridge_in_sqs_fail_alone() {
    let unknown_version = ada_json(|v| v["eventVersion"] = 3.into());
    let truncated = ada_json(|_| {});
    let truncated = &truncated[..truncated.len() - 1];
    let mut other_type = ada_value();
    other_type["eventType"] = "OrderPlaced".into();
    let records = records_from_sqs(&sqs_event(vec![
        sqs_message("sns-version", &sns_message(&unknown_version).to_string()),
        sqs_message("sns-truncated", &sns_message(truncated).to_string()),
        sqs_message("good", &ada_json(|_| {})),
        sqs_message(
            "eventbridge-type",
            &eventbridge_json(other_type).to_string(),
        ),
    ]));
    let reasons: Vec<(String, DecodeReason)> = records
        .iter()
        .filter_map(|r| r.event::<CustomerRegistered>().err())
        .map(|e| (e.record_id, e.reason))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, "sns-version");
    assert!(matches!(
        reasons[0].1,
        DecodeReason::UnknownVersion { version: 3, .. }
    ));
    assert_eq!(reasons[1].0, "sns-truncated");
    assert!(matches!(reasons[1].1, DecodeReason::InvalidJson { .. }));
    assert_eq!(reasons[2].0, "eventbridge-type");
    assert!(
        matches!(&reasons[2].1, DecodeReason::UnknownEventType { found, .. } if found == "OrderPlaced")
    );
    assert!(records[2].event::<CustomerRegistered>().is_ok());
}

#[test]
fn sqs_records_without_id_or_body_fail_alone() {
    let mut no_body = sqs_message("no-body", "");
    no_body.as_object_mut().unwrap().remove("body");
    let mut no_id = sqs_message("ignored", "{}");
    no_id.as_object_mut().unwrap().remove("messageId");
    let records = records_from_sqs(&sqs_event(vec![
        no_body,
        no_id,
        sqs_message("good", &ada_json(|_| {})),
    ]));
    assert_eq!(
        records[0].body().unwrap_err(),
        DecodeError::new(
            "no-body",
            DecodeReason::MissingField {
                field: "body".into()
            }
        )
    );
    assert_eq!(
        records[1].body().unwrap_err().reason,
        DecodeReason::MissingField {
            field: "messageId".into()
        }
    );
    assert!(records[2].event::<CustomerRegistered>().is_ok());
}

#[test]
fn the_body_limit_applies_to_what_each_carrier_delivered() {
    let options = DecodeOptions::default().with_max_body_bytes(64);
    let body = ada_json(|_| {});
    let too_large = DecodeReason::BodyTooLarge {
        size: body.len(),
        limit: 64,
    };
    let sqs = records_from_sqs_with(&sqs_event_of(&[&body, "{}"]), &options);
    assert_eq!(sqs[0].body().unwrap_err().reason, too_large);
    assert_eq!(sqs[1].body().unwrap(), "{}");

    let sns = records_from_sns_with(&sns_event(&body), &options);
    assert_eq!(sns[0].body().unwrap_err().reason, too_large);

    let detail = ada_value();
    let eventbridge = record_from_eventbridge_with(&eventbridge_event(detail.clone()), &options);
    assert_eq!(
        eventbridge.body().unwrap_err().reason,
        DecodeReason::BodyTooLarge {
            size: detail.to_string().len(),
            limit: 64
        }
    );
    // An SNS envelope is measured whole, as SQS delivered it.
    let wrapped = sns_message(&body).to_string();
    let nested = records_from_sqs_with(&sqs_event_of(&[&wrapped]), &options);
    assert_eq!(
        nested[0].body().unwrap_err().reason,
        DecodeReason::BodyTooLarge {
            size: wrapped.len(),
            limit: 64
        }
    );
}
