//! A DynamoDB stream consumer written as users write one with plain `lambda_runtime`: it
//! reports item failures by sequence number. Each item's `behaviour` attribute steers it:
//! `ok`; `fail-once` (reported as a failure the first time this process sees it); `poison`
//! (the whole invocation fails, every time). Every invocation is written to `LOG_TABLE`
//! (the records it got, in order, and what it did), so the test can see what the local
//! Lambda delivered.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, Error, LambdaEvent};

/// Sequence numbers already failed once by this process.
static FAILED_ONCE: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// A string attribute of the record's new image (empty when it has none).
fn text(record: &EventRecord, name: &str) -> String {
    serde_json::to_value(&record.change.new_image)
        .ok()
        .and_then(|image| image[name]["S"].as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn handle(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Error> {
    let records = &event.payload.records;
    let ids: Vec<String> = records.iter().map(|r| text(r, "id")).collect();
    let mut response = DynamoDbEventResponse::default();
    let mut processed: Vec<String> = Vec::new();
    let poison = records.iter().find(|r| text(r, "behaviour") == "poison");
    let outcome = if poison.is_some() {
        "error"
    } else {
        let mut failed = FAILED_ONCE.lock().map_err(|_| "lock poisoned")?;
        let failed = failed.get_or_insert_with(HashSet::new);
        let mut outcome = "ok";
        for record in records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            if text(record, "behaviour") == "fail-once" && failed.insert(sequence.clone()) {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence);
                response.batch_item_failures.push(failure);
                outcome = "partial";
                // Lambda resumes from this record: the ones after it come again.
                break;
            }
            processed.push(text(record, "id"));
        }
        outcome
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let list = |values: &[String]| {
        AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
    };
    client
        .put_item()
        .table_name(table)
        .item(
            "requestId",
            AttributeValue::S(event.context.request_id.clone()),
        )
        .item("at", AttributeValue::N(nanos.to_string()))
        .item("ids", list(&ids))
        .item("processed", list(&processed))
        .item("outcome", AttributeValue::S(outcome.into()))
        .send()
        .await?;
    if let Some(record) = poison {
        return Err(format!("poison record {}", text(record, "id")).into());
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("LOG_TABLE")?;
    lambda_runtime::run(service_fn(|event| handle(&client, &table, event))).await
}
