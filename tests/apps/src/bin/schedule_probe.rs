//! A scheduled function in the style of the serverless-patterns Rust examples, with plain
//! `lambda_runtime`: it prints each payload it is invoked with on one line, so a test can
//! see what the schedule delivered (a "Scheduled Event", or the event's `Input`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handle(event: LambdaEvent<Value>) -> Result<(), Error> {
    println!("invoked with {}", event.payload);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
