//! An SQS consumer in the style of the serverless-patterns Rust examples, with plain
//! `lambda_runtime`: each message body is an order (`{"orderId": ..., "quantity": n}`); a
//! message that is not one, or orders fewer than `MINIMUM_QUANTITY` (default 1), is
//! reported as a batch item failure (so it comes back, and reaches the DLQ after the
//! queue's maxReceiveCount). Deploying it with `MINIMUM_QUANTITY=0` is the "fix" that lets
//! redriven orders of zero through.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handle(event: LambdaEvent<SqsEvent>, minimum: u64) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let order: Option<Value> = record
            .body
            .as_deref()
            .and_then(|body| serde_json::from_str(body).ok());
        let quantity = order.as_ref().and_then(|order| order["quantity"].as_u64());
        let rejected = match quantity {
            None => Some("not an order with a quantity".to_string()),
            Some(quantity) if quantity < minimum => Some(format!(
                "quantity {quantity} is below the minimum of {minimum}"
            )),
            Some(_) => None,
        };
        match (rejected, quantity) {
            (Some(why), _) => {
                println!("message {id}: rejected, {why}");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
            (None, quantity) => {
                println!("message {id}: order of {} processed", quantity.unwrap_or(0));
            }
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let minimum = std::env::var("MINIMUM_QUANTITY")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(1);
    lambda_runtime::run(service_fn(move |event| handle(event, minimum))).await
}
