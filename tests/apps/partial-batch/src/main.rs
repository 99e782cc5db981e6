//! An SQS consumer with partial batch responses, as the serverless-patterns Rust examples
//! write one with plain `lambda_runtime`. A record's body is an order
//! (`{"orderId": .., "quantity": n}`), or the SNS notification around one when the topic
//! delivers it; an order of no quantity is reported in `batchItemFailures`, so it comes back
//! and, after the queue's maxReceiveCount, lands in the DLQ.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

/// The order a body carries: the body itself, or the `Message` of an SNS notification.
fn order(body: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(body).ok()?;
    if value["Type"] == "Notification" {
        return serde_json::from_str(value["Message"].as_str()?).ok();
    }
    Some(value)
}

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let id = record.message_id.unwrap_or_default();
        let order = record.body.as_deref().and_then(order);
        let order_id = order
            .as_ref()
            .and_then(|order| order["orderId"].as_str())
            .unwrap_or("?")
            .to_string();
        match order.as_ref().and_then(|order| order["quantity"].as_u64()) {
            Some(quantity) if quantity > 0 => {
                println!("order {order_id} processed ({quantity} items)");
            }
            _ => {
                println!("order {order_id} rejected: no quantity (message {id})");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
