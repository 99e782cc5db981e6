//! An SQS consumer: order lines arrive as bare JSON bodies (no envelope), keyed for
//! idempotency by their `lineId`; a bad body fails alone and goes back to the queue (then to
//! its DLQ), the others are deleted. Build: `cargo build -p eventkit-lambda --example sqs_consumer`.
// The composed future (runtime, batch, idempotency, SDK; spans with the `otel` feature)
// nests deeper than rustc's default layout query depth (128).
#![recursion_limit = "256"]

use eventkit::batch::{BatchConfig, RecordError};
use eventkit::handler::{Handler, Json, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig, IdempotencyLayer};
use eventkit::runtime::EventFunction;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderLine {
    line_id: String,
    sku: String,
    quantity: u32,
}

#[derive(Serialize, Deserialize)]
struct Packed {
    sku: String,
    boxes: u32,
}

async fn pack(Json(line): Json<OrderLine>) -> Result<Packed, RecordError> {
    if line.quantity == 0 {
        return Err(RecordError::permanent(format!(
            "line {} has no quantity",
            line.line_id
        )));
    }
    eventkit::tracing::info!(sku = %line.sku, "packing");
    Ok(Packed {
        sku: line.sku,
        boxes: line.quantity.div_ceil(12),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let table = std::env::var("IDEMPOTENCY_TABLE").unwrap_or_else(|_| "idempotency".into());
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    // The key path is evaluated on the SQS body itself.
    let idempotency = IdempotencyConfig::new("packing").with_key_path("lineId");
    EventFunction::new(Handler::new(pack).layer(IdempotencyLayer::new(store, idempotency)))
        .with_batch_config(BatchConfig::default().with_max_concurrency(5))
        .with_metrics("packing")
        .run()
        .await
}
