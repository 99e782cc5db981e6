//! The workload every contender runs: SQS events of 10 records each, one JSON document per
//! line, the first line a warm-up batch. Each body is an eventkit envelope of an
//! `OrderPlaced` event with its own `eventId`, the idempotency key of every contender.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};
use uuid::Uuid;

/// Records per SQS batch: Lambda's default batch size for SQS.
pub const BATCH_SIZE: usize = 10;

/// Writes a warm-up batch and `batches` measured batches to `path`.
pub fn write(path: &Path, batches: usize) -> Result<()> {
    let mut text = String::new();
    for _ in 0..=batches {
        writeln!(text, "{}", sqs_event())?;
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, text)?;
    Ok(())
}

fn sqs_event() -> Value {
    let records: Vec<Value> = (0..BATCH_SIZE).map(|_| sqs_record()).collect();
    json!({ "Records": records })
}

/// A record as Lambda's SQS event source mapping delivers it.
fn sqs_record() -> Value {
    let event_id = Uuid::new_v4().to_string();
    let now = chrono::Utc::now();
    let body = json!({
        "eventId": event_id,
        "eventType": "OrderPlaced",
        "eventVersion": 1,
        "source": "orders",
        "time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "correlationId": event_id,
        "causationId": event_id,
        "data": {
            "orderId": format!("o-{}", &event_id[..8]),
            "customerId": format!("c-{}", &event_id[9..13]),
            "items": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-7", "quantity": 1}],
            "totalCents": 4200
        }
    });
    let sent = now.timestamp_millis().to_string();
    json!({
        "messageId": Uuid::new_v4().to_string(),
        "receiptHandle": format!("AQEB{}", Uuid::new_v4().simple()),
        "body": body.to_string(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": sent,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": sent
        },
        "messageAttributes": {},
        "md5OfBody": Uuid::new_v4().simple().to_string(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
        "awsRegion": "us-east-1"
    })
}
