//! The sample events of `events/` (all but `events/generated/`, which has its own tests, and
//! `events/schemas/`, the contracts, checked by `cargo xtask schemas`' tests):
//! each parses as the Lambda event its suffix names, carries envelopes whose `data` decodes
//! as the pipeline's contracts, and together they cover every function's every trigger and
//! the demo's cases.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;
use eventkit::events::{EventEnvelope, EventRecord, Source, VersionedEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::support::{resources, workspace_root};

/// `events/**/*.json` but `events/generated/` and `events/schemas/`, relative to `events/`.
fn samples() -> BTreeMap<String, String> {
    fn walk(dir: &Path, events: &Path, found: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("events/ is readable") {
            let path = entry.expect("a directory entry").path();
            let relative = path.strip_prefix(events).expect("under events/");
            if path.is_dir() && relative == Path::new("schemas") {
                continue;
            }
            if path.is_dir() && relative != Path::new("generated") {
                walk(&path, events, found);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                let text = std::fs::read_to_string(&path).expect("a readable sample");
                found.insert(relative.to_string_lossy().into_owned(), text);
            }
        }
    }
    let events = workspace_root().join("events");
    let mut found = BTreeMap::new();
    walk(&events, &events, &mut found);
    found
}

fn parse<T: DeserializeOwned>(name: &str, json: &str) -> T {
    serde_json::from_str(json)
        .unwrap_or_else(|error| panic!("{name} is not a {}: {error}", std::any::type_name::<T>()))
}

/// Checks an envelope (as JSON text) and that its `data` is the contract its `eventType`
/// names; returns its eventType.
fn check_envelope(name: &str, json: &str) -> String {
    let envelope = EventEnvelope::<Value>::from_json(json)
        .unwrap_or_else(|reason| panic!("{name}: not an envelope ({reason:?}): {json}"));
    for id in [
        &envelope.event_id,
        &envelope.correlation_id,
        &envelope.causation_id,
    ] {
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "{name}: {id} is not a UUID"
        );
    }
    assert_eq!(envelope.source, orders::SOURCE, "{name}");
    // Decoded as a consumer decodes it: older versions (OrderPlaced v1) upcast.
    let decoded = match envelope.event_type.as_str() {
        "OrderPlaced" => decode::<orders::OrderPlaced>(name, json),
        "StockReserved" => decode::<orders::StockReserved>(name, json),
        "StockReservationFailed" => decode::<orders::StockReservationFailed>(name, json),
        "PaymentCompleted" => decode::<orders::PaymentCompleted>(name, json),
        "PaymentFailed" => decode::<orders::PaymentFailed>(name, json),
        "StockReleased" => decode::<orders::StockReleased>(name, json),
        other => Err(format!("unknown eventType {other}")),
    };
    if let Err(error) = decoded {
        panic!("{name}: data of {}: {error}", envelope.event_type);
    }
    envelope.event_type
}

fn decode<T: VersionedEvent>(name: &str, json: &str) -> Result<(), String> {
    EventRecord::new(name, Source::Sqs, json)
        .event::<T>()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// An SQS body: an envelope (raw SNS delivery) or an EventBridge event around one.
fn check_sqs_body(name: &str, body: &str) -> String {
    let value: Value = parse(name, body);
    if value.get("detail-type").is_some() {
        check_eventbridge(name, parse(name, body))
    } else {
        check_envelope(name, body)
    }
}

fn check_eventbridge(name: &str, event: EventBridgeEvent) -> String {
    assert_eq!(event.source, orders::SOURCE, "{name}");
    let event_type = check_envelope(name, &event.detail.to_string());
    assert_eq!(event.detail_type, event_type, "{name}: detail-type");
    event_type
}

#[test]
fn every_trigger_sample_parses_as_the_lambda_event_its_suffix_names() {
    let mut checked = Vec::new();
    for (name, json) in samples() {
        if name.ends_with(".sqs.json") {
            let event: SqsEvent = parse(&name, &json);
            assert!(!event.records.is_empty(), "{name} has no records");
            for record in event.records {
                assert_eq!(record.event_source.as_deref(), Some("aws:sqs"), "{name}");
                let body = record.body.unwrap_or_default();
                if name.contains("poison") {
                    assert!(EventEnvelope::<Value>::from_json(&body).is_err(), "{name}");
                } else {
                    check_sqs_body(&name, &body);
                }
            }
        } else if name.ends_with(".sns.json") {
            let event: SnsEvent = parse(&name, &json);
            for record in event.records {
                let event_type = check_envelope(&name, &record.sns.message);
                let attribute = &record.sns.message_attributes["eventType"];
                assert_eq!(attribute.value, event_type, "{name}: eventType attribute");
            }
        } else if name.ends_with(".eventbridge.json") {
            check_eventbridge(&name, parse(&name, &json));
        } else if name.ends_with(".dynamodb.json") {
            // The outbox's stream (the idempotency table's): every new image is a record
            // whose `outbox` list carries the envelopes its completion committed.
            let event: aws_lambda_events::dynamodb::Event = parse(&name, &json);
            let records = eventkit::events::records_from(&event, &Default::default());
            assert!(!records.is_empty(), "{name} has no records");
            for record in records {
                let image: Value = record
                    .decode()
                    .unwrap_or_else(|error| panic!("{name}: not an image: {error}"));
                assert!(image["unpublished"].is_string(), "{name}: not unpublished");
                let entries: Vec<eventkit::outbox::OutboxEntry> =
                    serde_json::from_value(image["outbox"].clone())
                        .unwrap_or_else(|error| panic!("{name}: no outbox list: {error}"));
                assert!(!entries.is_empty(), "{name}: a record without events");
                for entry in entries {
                    assert!(entry.destination().is_ok(), "{name}: {}", entry.destination);
                    assert_eq!(
                        check_envelope(&name, &entry.body),
                        entry.event_type,
                        "{name}"
                    );
                }
            }
        } else if name.ends_with(".schedule.json") {
            let event: EventBridgeEvent = parse(&name, &json);
            assert_eq!(event.detail_type, "Scheduled Event", "{name}");
            assert_eq!(event.source, "aws.events", "{name}");
        } else {
            assert!(
                name.starts_with("orders/") || name == "inventory/seed.json",
                "{name}: a sample's name ends in .sqs.json, .sns.json, .eventbridge.json or .dynamodb.json"
            );
            continue;
        }
        checked.push(name);
    }
    // Every function's trigger samples were read and checked: the list is the fixture set.
    assert_eq!(
        checked,
        [
            "analytics/order-events.sqs.json",
            "inventory/order-placed-duplicate.sqs.json",
            "inventory/order-placed.sqs.json",
            "inventory/out-of-stock.sqs.json",
            "inventory/payment-failed.sqs.json",
            "inventory/poison.sqs.json",
            "notifications/order-placed.sqs.json",
            "notifications/payment-completed.sqs.json",
            "outbox-sweeper/sweep.schedule.json",
            "payments/stock-reserved-declined.sqs.json",
            "payments/stock-reserved.sqs.json",
            "relay/stock-reserved.dynamodb.json",
        ]
    );
}

#[test]
fn every_function_has_a_sample_for_each_of_its_triggers() {
    let names: Vec<String> = samples().into_keys().collect();
    for (id, function) in resources("AWS::Serverless::Function") {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("a binary name");
        let events = function["Properties"]["Events"]
            .as_object()
            .expect("events");
        for event in events.values() {
            let suffix = match event["Type"].as_str() {
                Some("SQS") => ".sqs.json",
                Some("SNS") => ".sns.json",
                Some("EventBridgeRule") => ".eventbridge.json",
                Some("DynamoDB") => ".dynamodb.json",
                Some("Schedule") => ".schedule.json",
                other => panic!("{id}: no sample kind for {other:?}"),
            };
            assert!(
                names
                    .iter()
                    .any(|name| name.starts_with(&format!("{binary}/")) && name.ends_with(suffix)),
                "{id}: no events/{binary}/*{suffix}"
            );
        }
    }
}

#[test]
fn sample_orders_cover_the_demo_cases() {
    let samples = samples();
    let seed: Vec<Value> = parse("inventory/seed.json", &samples["inventory/seed.json"]);
    let stock: BTreeMap<&str, u64> = seed
        .iter()
        .map(|item| {
            let sku = item["sku"].as_str().expect("seed items have a sku");
            (sku, item["available"].as_u64().expect("and a count"))
        })
        .collect();
    let orders: BTreeMap<&String, &String> = samples
        .iter()
        .filter(|(name, _)| name.starts_with("orders/"))
        .collect();
    let (mut declined, mut out_of_stock, mut poison) = (0, 0, 0);
    for (name, json) in &orders {
        let Ok(order) =
            EventRecord::new(*name, Source::Sqs, json.as_str()).event::<orders::OrderPlaced>()
        else {
            poison += 1;
            continue;
        };
        check_envelope(name, json);
        let order = order.data.order();
        declined += usize::from(order.amount_cents % 100 == 13);
        for item in &order.items {
            let available = stock.get(item.sku.as_str());
            assert!(
                available.is_some(),
                "{name}: {} is not in seed.json",
                item.sku
            );
            out_of_stock += usize::from(available < Some(&u64::from(item.quantity)));
        }
    }
    let duplicates = orders.len() - orders.values().collect::<BTreeSet<_>>().len();
    assert_eq!(
        (declined, out_of_stock, poison, duplicates),
        (1, 1, 1, 1),
        "orders declined by amount, out of stock, poison, duplicated"
    );
}
