//! Properties of the envelope and of upcasting, over arbitrary metadata and data: nothing a
//! producer can put in an envelope is lost or changed by any carrier, old versions always
//! become the current struct with the same metadata, and no input makes decoding panic.

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::shorthands::{
    decode_event, record_from_eventbridge, records_from_sns, records_from_sqs,
    records_from_sqs_with, Views,
};
use super::*;
use crate::events::versioned::tests::CustomerRegisteredV1;
use crate::events::{DecodeOptions, DecodeReason, EventRecord};

/// Any instant from 1970 to 9999 with nanosecond precision: RFC 3339 has four-digit years.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..253_402_300_800, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
}

fn envelope_of<T: std::fmt::Debug>(
    data: impl Strategy<Value = T>,
) -> impl Strategy<Value = EventEnvelope<T>> {
    (
        // Any id but a blank one, which decoding refuses (a blank id would be everyone's key).
        (
            any::<String>().prop_filter("a blank eventId is refused", |id| !id.trim().is_empty()),
            any::<String>(),
            any::<String>(),
        ),
        (
            any::<String>(),
            instant(),
            proptest::option::of(any::<String>()),
        ),
        (
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
        ),
        data,
    )
        .prop_map(
            |(
                (event_id, source, correlation_id),
                (causation_id, time, trace_id),
                (traceparent, tracestate),
                data,
            )| {
                EventEnvelope {
                    event_id,
                    event_type: "CustomerRegistered".into(),
                    event_version: 2,
                    source,
                    time,
                    correlation_id,
                    causation_id,
                    trace_id,
                    traceparent,
                    tracestate,
                    data,
                }
            },
        )
}

fn customer() -> impl Strategy<Value = CustomerRegistered> {
    (any::<String>(), any::<String>(), any::<String>()).prop_map(
        |(customer_id, first_name, last_name)| CustomerRegistered {
            customer_id,
            first_name,
            last_name,
        },
    )
}

/// Untyped data as producers write it, numbers of every kind included.
fn any_data() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
            .prop_map(|x| json!(x)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map(any::<String>(), inner, 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// The envelope carried every supported way, as the records a handler receives.
fn every_carrier(envelope: &impl serde::Serialize) -> Vec<EventRecord> {
    let body = serde_json::to_string(envelope).unwrap();
    let detail = serde_json::to_value(envelope).unwrap();
    let mut records = records_from_sqs(&sqs_event_of(&[
        &body,
        &sns_message(&body).to_string(),
        &eventbridge_json(detail.clone()).to_string(),
    ]));
    records.extend(records_from_sqs_with(
        &sqs_event_of(&[&body]),
        &DecodeOptions::default().with_raw_sns_delivery(true),
    ));
    records.extend(records_from_sns(&sns_event(&body)));
    records.push(record_from_eventbridge(&eventbridge_event(detail)));
    records
}

fn v1_envelope(current: &EventEnvelope<CustomerRegistered>, name: &str) -> String {
    let v1 = current.clone().map_data(|data| CustomerRegisteredV1 {
        customer_id: data.customer_id,
        name: name.to_string(),
    });
    let mut json = serde_json::to_value(v1).unwrap();
    json["eventVersion"] = 1.into();
    json.to_string()
}

proptest! {
    #[test]
    fn a_blank_event_id_is_refused_through_every_carrier(
        envelope in envelope_of(customer()),
        blank in "[ \t\n]{0,3}",
    ) {
        let envelope = EventEnvelope { event_id: blank, ..envelope };
        for record in every_carrier(&envelope) {
            let error = record.event::<CustomerRegistered>().unwrap_err();
            prop_assert!(matches!(error.reason, DecodeReason::InvalidData { .. }), "{}", error);
            prop_assert!(error.to_string().contains("eventId"), "{}", error);
        }
    }

    #[test]
    fn every_carrier_round_trips_any_typed_envelope(envelope in envelope_of(customer())) {
        for record in every_carrier(&envelope) {
            prop_assert_eq!(&record.event::<CustomerRegistered>().unwrap(), &envelope, "{}", record.source());
        }
    }

    #[test]
    fn every_carrier_round_trips_any_untyped_data(envelope in envelope_of(any_data())) {
        for record in every_carrier(&envelope) {
            prop_assert_eq!(&record.envelope::<Value>().unwrap(), &envelope, "{}", record.source());
        }
    }

    #[test]
    fn upcasting_keeps_the_metadata_and_the_name(
        current in envelope_of(customer()),
        name in any::<String>(),
    ) {
        let upcast = decode_event::<CustomerRegistered>(&v1_envelope(&current, &name)).unwrap();
        prop_assert_eq!(upcast.event_version, 2);
        prop_assert_eq!(&upcast.data.customer_id, &current.data.customer_id);
        // v1's single name is split at its first space, and nothing of it is lost.
        let rejoined = if name.contains(' ') {
            format!("{} {}", upcast.data.first_name, upcast.data.last_name)
        } else {
            prop_assert_eq!(&upcast.data.last_name, "");
            upcast.data.first_name.clone()
        };
        prop_assert_eq!(rejoined, name);
        prop_assert!(!upcast.data.first_name.contains(' '));
        let metadata_only = |e: &EventEnvelope<CustomerRegistered>| e.clone().map_data(|_| ());
        prop_assert_eq!(metadata_only(&upcast), metadata_only(&current));
    }

    #[test]
    fn upcasting_is_the_same_through_every_carrier(
        current in envelope_of(customer()),
        name in "[A-Za-z]{1,8}( [A-Za-z]{1,8}){0,2}",
    ) {
        let v1: Value = serde_json::from_str(&v1_envelope(&current, &name)).unwrap();
        let expected = decode_event::<CustomerRegistered>(&v1.to_string()).unwrap();
        for record in every_carrier(&v1) {
            prop_assert_eq!(&record.event::<CustomerRegistered>().unwrap(), &expected, "{}", record.source());
        }
    }

    #[test]
    fn versions_neither_current_nor_known_are_typed_errors(
        envelope in envelope_of(customer()),
        version in any::<u32>().prop_filter("a known version", |v| *v != 1 && *v != 2),
    ) {
        let mut json = serde_json::to_value(&envelope).unwrap();
        json["eventVersion"] = version.into();
        prop_assert_eq!(
            decode_event::<CustomerRegistered>(&json.to_string()),
            Err(DecodeReason::UnknownVersion {
                event_type: "CustomerRegistered".into(),
                version,
                current: 2,
            })
        );
    }

    #[test]
    fn other_event_types_are_typed_errors(
        envelope in envelope_of(customer()),
        event_type in any::<String>().prop_filter("the handled type", |t| t != "CustomerRegistered"),
    ) {
        let mut json = serde_json::to_value(&envelope).unwrap();
        json["eventType"] = event_type.clone().into();
        prop_assert_eq!(
            decode_event::<CustomerRegistered>(&json.to_string()),
            Err(DecodeReason::UnknownEventType {
                expected: "CustomerRegistered".into(),
                found: event_type,
            })
        );
    }

    #[test]
    fn every_truncation_is_invalid_json(envelope in envelope_of(customer()), cut in any::<prop::sample::Index>()) {
        let body = serde_json::to_string(&envelope).unwrap();
        // Any strict prefix that ends on a character boundary.
        let (end, _) = body.char_indices().nth(cut.index(body.chars().count())).unwrap();
        let records = records_from_sqs(&sqs_event_of(&[&body[..end], &body]));
        let error = records[0].event::<CustomerRegistered>().unwrap_err();
        prop_assert_eq!(error.record_id, "m-0");
        prop_assert!(matches!(error.reason, DecodeReason::InvalidJson { .. }), "{:?}", error.reason);
        prop_assert_eq!(&records[1].event::<CustomerRegistered>().unwrap(), &envelope);
    }

    #[test]
    fn decoding_any_body_never_panics(bodies in prop::collection::vec(any::<String>(), 1..5)) {
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let records = records_from_sqs(&sqs_event_of(&bodies));
        prop_assert_eq!(records.len(), bodies.len());
        for (i, record) in records.iter().enumerate() {
            prop_assert_eq!(record.id(), format!("m-{i}"));
            if let Err(error) = record.event::<CustomerRegistered>() {
                prop_assert_eq!(error.record_id, format!("m-{i}"));
            }
            let _ = record.json();
        }
    }
}

/// The case that found the bug: without serde_json's `float_roundtrip` this number came
/// back one unit in the last place off after a single hop.
#[test]
fn a_float_survives_every_carrier_exactly() {
    let envelope = EventEnvelope::from_parts(
        "CustomerRegistered",
        2,
        "customers",
        json!({"amount": -2.2260183657230735e-85, "rate": 0.1}),
    );
    for record in every_carrier(&envelope) {
        assert_eq!(
            record.envelope::<Value>().unwrap(),
            envelope,
            "{}",
            record.source()
        );
    }
}
