//! OrderPlaced moved to version 2; every version-1 OrderPlaced in `events/` (the demo's
//! orders, and the ones inside the SQS, SNS and EventBridge samples) still decodes, upcast to
//! version 2 with the same values, and a bad one fails naming the JSON path that broke.

use std::path::{Path, PathBuf};

use eventkit::events::{DecodeReason, EventRecord, Source};
use orders::{Money, Order, OrderPlaced};
use serde_json::Value;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// Every `.json` file under `dir`, but the generated schemas.
fn sample_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name() != Some("schemas".as_ref()) {
            sample_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
}

/// The OrderPlaced envelopes in `value`: itself, or nested in objects, arrays and JSON text
/// (an SQS body, an SNS message).
fn order_placed_envelopes(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Object(object) if object.get("eventType") == Some(&"OrderPlaced".into()) => {
            found.push(value.clone());
        }
        Value::Object(object) => object
            .values()
            .for_each(|value| order_placed_envelopes(value, found)),
        Value::Array(values) => values
            .iter()
            .for_each(|value| order_placed_envelopes(value, found)),
        Value::String(text) if text.trim_start().starts_with('{') => {
            if let Ok(inner) = serde_json::from_str(text) {
                order_placed_envelopes(&inner, found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_version_1_sample_decodes_as_version_2() {
    let mut files = Vec::new();
    sample_files(&events_dir(), &mut files);
    let (mut upcast, mut refused) = (0, 0);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let Ok(json) = serde_json::from_str::<Value>(&text) else {
            continue; // a deliberately truncated body: not an envelope
        };
        let mut envelopes = Vec::new();
        order_placed_envelopes(&json, &mut envelopes);
        for envelope in envelopes {
            assert_eq!(envelope["eventVersion"], 1, "{}", file.display());
            let record = EventRecord::new("sample", Source::Sqs, envelope.to_string());
            let decoded = record.event::<OrderPlaced>();
            match serde_json::from_value::<Order>(envelope["data"].clone()) {
                Ok(v1) => {
                    let event =
                        decoded.unwrap_or_else(|error| panic!("{}: {error}", file.display()));
                    assert_eq!(event.event_version, 2);
                    assert_eq!(
                        event.data.total,
                        Money {
                            amount_cents: v1.amount_cents,
                            currency: v1.currency.clone()
                        }
                    );
                    assert_eq!(event.data.order(), v1, "{}", file.display());
                    upcast += 1;
                }
                // The poison order: refused, naming the field of version 1 that is wrong.
                Err(_) => {
                    let error = decoded.expect_err("bad v1 data must not decode");
                    match &error.reason {
                        DecodeReason::InvalidData { detail } => {
                            assert!(detail.starts_with("/data/"), "{}: {detail}", file.display())
                        }
                        DecodeReason::MissingField { field } => {
                            assert!(field.starts_with("/data/"), "{}: {field}", file.display())
                        }
                        other => panic!("{}: {other:?}", file.display()),
                    }
                    refused += 1;
                }
            }
        }
    }
    // events/orders has five good orders and a poison one; the carriers' samples more.
    assert!(
        upcast >= 5,
        "only {upcast} version-1 OrderPlaced samples found"
    );
    assert!(refused >= 1, "the poison order was not found");
}

#[test]
fn a_bad_version_2_event_names_the_json_path() {
    let mut event = serde_json::json!({
        "eventId": "e-1", "eventType": "OrderPlaced", "eventVersion": 2,
        "source": "eventkit.orders", "time": "2026-11-22T10:15:30Z",
        "correlationId": "e-1", "causationId": "e-1",
        "data": {"orderId": "o-1", "customerId": "c-1", "customerEmail": "a@example.com",
                 "items": [{"sku": "KB-1", "quantity": 1}, {"sku": "MS-2", "quantity": "two"}],
                 "total": {"amountCents": 100, "currency": "EUR"}}
    });
    let decode = |event: &Value| {
        EventRecord::new("m-1", Source::Sqs, event.to_string())
            .event::<OrderPlaced>()
            .unwrap_err()
            .reason
    };
    assert_eq!(
        decode(&event),
        DecodeReason::InvalidData {
            detail: "/data/items/1/quantity: invalid type: string \"two\", expected u32".into()
        }
    );
    event["data"]["items"][1]["quantity"] = 2.into();
    event["data"]["total"]
        .as_object_mut()
        .unwrap()
        .remove("currency");
    assert_eq!(
        decode(&event),
        DecodeReason::MissingField {
            field: "/data/total/currency".into()
        }
    );
    // Version 1's flat total is not version 2's.
    event["data"]["amountCents"] = 100.into();
    event["data"].as_object_mut().unwrap().remove("total");
    assert_eq!(
        decode(&event),
        DecodeReason::MissingField {
            field: "/data/total".into()
        }
    );
}
