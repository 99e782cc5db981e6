//! An SQS consumer in the style of the serverless-patterns Rust examples, with plain
//! `lambda_runtime`: each message body is an order (`{"orderId": ..., "quantity": n}`); a
//! message that is not one, or orders a quantity of zero, is reported as a batch item
//! failure (so it comes back, and reaches the DLQ after the queue's maxReceiveCount).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let order: Option<Value> = record
            .body
            .as_deref()
            .and_then(|body| serde_json::from_str(body).ok());
        let quantity = order
            .as_ref()
            .and_then(|order| order["quantity"].as_u64())
            .unwrap_or(0);
        if quantity == 0 {
            println!("message {id}: rejected, not an order with a quantity");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        } else {
            println!("message {id}: order of {quantity} processed");
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
