//! The relay, run over the outbox (the pipeline's idempotency table) as its stream would
//! deliver it: each record whose events are not yet published becomes a DynamoDB stream record (`INSERT`, its new image in DynamoDB JSON) of
//! one batch, handled by eventkit's `Relay` through `EventFunction`, as Lambda would call it,
//! after each event was checked against its JSON Schema.
//! (The real stream, polled from DynamoDB Local, is what the local Lambda and the end-to-end
//! tests use.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::Deadline;
use eventkit::outbox::Relay;
use eventkit::runtime::EventFunction;
use serde_json::{json, Value};

use crate::pipeline::{Item, Pipeline};

/// Sequence numbers of the synthetic stream, increasing across a test run.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// An attribute in DynamoDB JSON (`{"S": ..}`), as a stream record's image carries it.
pub fn dynamodb_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => json!({"S": text}),
        AttributeValue::N(number) => json!({"N": number}),
        AttributeValue::Bool(flag) => json!({"BOOL": flag}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::Ss(texts) => json!({"SS": texts}),
        AttributeValue::L(values) => {
            json!({"L": values.iter().map(dynamodb_json).collect::<Vec<_>>()})
        }
        AttributeValue::M(map) => json!({"M": image(map)}),
        other => panic!("not in the pipeline's items: {other:?}"),
    }
}

/// An item in DynamoDB JSON.
pub fn image(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), dynamodb_json(value)))
            .collect(),
    )
}

/// A DynamoDB stream event of `INSERT`s of `items`, keyed by `key`.
pub fn stream_event(items: &[Item], key: &str) -> Value {
    let records: Vec<Value> = items
        .iter()
        .map(|item| {
            let sequence = SEQUENCE.fetch_add(1, Ordering::SeqCst).to_string();
            json!({
                "eventID": sequence, "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": crate::REGION,
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/outbox/stream/1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_764_460_800,
                    "Keys": {key: dynamodb_json(&item[key])},
                    "NewImage": image(item),
                    "SequenceNumber": sequence, "SizeBytes": 100, "StreamViewType": "NEW_IMAGE"
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

impl Pipeline {
    /// Publishes every record's events not yet published through the relay, as one stream
    /// batch; returns how many records it handed over.
    pub async fn relay_outbox(&self) -> usize {
        let mut pending: Vec<Item> = self
            .scan(&self.idempotency_table)
            .await
            .into_iter()
            .filter(|record| record.contains_key("unpublished"))
            .collect();
        // In commit order, as a stream delivers the records' changes (a scan has none).
        let staged_at = |item: &Item| {
            item.get("stagedAt")
                .and_then(|value| value.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        pending.sort_by_key(staged_at);
        // The producer's edge: a function that stages an event breaking its contract fails
        // its own tests here, as the validating bus publisher made it fail before the outbox.
        let contracts = orders::schema_validator();
        for event in pending.iter().flat_map(crate::pipeline::CommittedEvent::on) {
            let body: Value = serde_json::from_str(&event.body).expect("the body is JSON");
            if let Err(violation) = contracts.validate(&body) {
                panic!("a staged event breaks its contract: {violation}");
            }
        }
        if pending.is_empty() {
            return 0;
        }
        let relay = EventFunction::new(
            Relay::new(self.cloud.dynamodb.clone(), &self.idempotency_table)
                .with_eventbridge(self.cloud.eventbridge.clone()),
        );
        let response = relay
            .handle(
                stream_event(&pending, eventkit::outbox::OUTBOX_KEY),
                Deadline::after(Duration::from_secs(30)),
            )
            .await
            .expect("the relay's invocation");
        assert_eq!(
            response,
            json!({"batchItemFailures": []}),
            "the relay failed records"
        );
        pending.len()
    }
}
