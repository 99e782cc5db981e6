//! The in-process hot paths of one SQS batch, without any network: decoding the batch into
//! typed envelopes, computing idempotency keys (canonical JSON and SHA-256), and the batch
//! bookkeeping around a handler under the idempotency layer on the in-memory store.
//! `cargo bench -p eventkit-lambda --bench hot_paths`; `cargo xtask bench` compares the whole
//! toolkit with its peers.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use eventkit::batch::{AllFailedPolicy, BatchProcessor, Deadline};
use eventkit::events::{records_from, DecodeOptions, EventEnvelope, EventRecord, VersionedEvent};
use eventkit::handler::{Handler, Invocation, RecordHandler, RecordHandlerExt};
use eventkit::idempotency::{
    key, Idempotency, IdempotencyConfig, IdempotencyLayer, Idempotent, InMemoryStore,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderPlaced {
    order_id: String,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    quantity: u64,
}

impl VersionedEvent for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const CURRENT_VERSION: u32 = 1;
}

#[derive(Serialize, Deserialize)]
struct Reserved {
    order_id: String,
    units: u64,
}

async fn reserve(order: EventEnvelope<OrderPlaced>) -> Result<Reserved, std::io::Error> {
    Ok(Reserved {
        units: order.data.items.iter().map(|item| item.quantity).sum(),
        order_id: order.data.order_id,
    })
}

fn envelope(n: usize) -> Value {
    let event_id = format!("8d3f6c1e-0000-4000-8000-{n:012}");
    json!({
        "eventId": event_id, "eventType": "OrderPlaced", "eventVersion": 1,
        "source": "orders", "time": "2026-11-22T10:00:00.000Z",
        "correlationId": event_id, "causationId": event_id,
        "data": {
            "orderId": format!("o-{n}"), "customerId": "c-42", "totalCents": 4200,
            "items": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-7", "quantity": 1}]
        }
    })
}

/// An SQS event of 10 records as Lambda delivers it, as JSON text.
fn sqs_batch_json() -> String {
    let records: Vec<Value> = (0..10)
        .map(|n| {
            json!({
                "messageId": format!("m-{n}"), "receiptHandle": "AQEB", "md5OfBody": "x",
                "body": envelope(n).to_string(), "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
                "awsRegion": "us-east-1",
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1",
                               "SenderId": "s", "ApproximateFirstReceiveTimestamp": "1"},
                "messageAttributes": {}
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

fn records() -> Vec<EventRecord> {
    let event: SqsEvent = serde_json::from_str(&sqs_batch_json()).unwrap();
    records_from(&event, &DecodeOptions::default())
}

fn decode(c: &mut Criterion) {
    let text = sqs_batch_json();
    let mut group = c.benchmark_group("decode");
    group.bench_function("sqs_batch_of_10_to_typed_envelopes", |b| {
        b.iter(|| {
            let event: SqsEvent = serde_json::from_str(black_box(&text)).unwrap();
            for record in records_from(&event, &DecodeOptions::default()) {
                black_box(record.event::<OrderPlaced>().unwrap());
            }
        });
    });
    group.finish();
}

fn idempotency_key(c: &mut Criterion) {
    let payload = envelope(1);
    let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("bench"));
    let mut group = c.benchmark_group("idempotency_key");
    group.bench_function("event_id", |b| {
        b.iter(|| black_box(idempotency.key_for(black_box(&payload))));
    });
    group.bench_function("whole_envelope_canonical_json", |b| {
        b.iter(|| black_box(key::idempotency_key("bench", black_box(&payload))));
    });
    group.finish();
}

fn batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let processor = BatchProcessor::default();
    let deadline = Deadline::after(Duration::from_secs(60));
    let invocation = Invocation::new(deadline);
    let handler_on = |store| {
        Handler::new(reserve).layer(IdempotencyLayer::new(
            store,
            IdempotencyConfig::new("bench"),
        ))
    };
    let run = |handler: &Idempotent<_, InMemoryStore>, records: Vec<EventRecord>| {
        let invocation = &invocation;
        let outcome = runtime.block_on(processor.process(records, deadline, |record| async move {
            handler.handle(&record, invocation).await
        }));
        black_box(outcome.sqs_response(AllFailedPolicy::ReportAll).unwrap());
    };
    let mut group = c.benchmark_group("batch");
    group.bench_function("10_new_records_in_memory_store", |b| {
        b.iter_batched(
            || (handler_on(InMemoryStore::new()), records()),
            |(handler, records)| run(&handler, records),
            BatchSize::SmallInput,
        );
    });
    let seen = handler_on(InMemoryStore::new());
    run(&seen, records());
    group.bench_function("10_duplicate_records_in_memory_store", |b| {
        b.iter_batched(
            records,
            |records| run(&seen, records),
            BatchSize::SmallInput,
        );
    });
    // The whole in-process path of an invocation: the SQS event's text to records (the one
    // parse of each body included), then the batch under the idempotency layer.
    let text = sqs_batch_json();
    group.bench_function("10_new_records_from_the_event_text", |b| {
        b.iter_batched(
            || handler_on(InMemoryStore::new()),
            |handler| {
                let event: SqsEvent = serde_json::from_str(black_box(&text)).unwrap();
                run(&handler, records_from(&event, &DecodeOptions::default()));
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(hot_paths, decode, idempotency_key, batch);
criterion_main!(hot_paths);
