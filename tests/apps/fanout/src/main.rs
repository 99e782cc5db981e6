//! An SQS consumer of SNS notifications, as the serverless-patterns SNS-to-SQS-to-Lambda Rust
//! examples write it with plain `lambda_runtime`: each record's body is the SNS envelope
//! (the subscription has no raw delivery), whose `Message` it logs.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<(), Error> {
    for record in event.payload.records {
        let envelope: Value = serde_json::from_str(record.body.as_deref().unwrap_or_default())?;
        let message = envelope["Message"].as_str().unwrap_or_default();
        println!("notification received: {message}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
