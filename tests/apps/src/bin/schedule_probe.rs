//! A function in the style of the serverless-patterns Rust examples, with plain
//! `lambda_runtime`, invoked asynchronously (schedules, SNS): it prints each payload it is
//! invoked with on one line, so a test can see what arrived. With `REJECT=true` it fails
//! every payload that mentions "reject" (the bug a redrive's fix removes); one that says
//! "hold on" keeps it busy for a minute.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handle(event: LambdaEvent<Value>, reject: bool) -> Result<(), Error> {
    let payload = event.payload.to_string();
    if payload.contains("hold on") {
        // Busy past any test's stop (the function's timeout ends it otherwise).
        println!("holding {payload}");
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    if reject && payload.contains("reject") {
        println!("rejected {payload}");
        return Err("this payload is rejected".into());
    }
    println!("invoked with {payload}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let reject = std::env::var("REJECT").is_ok_and(|value| value == "true");
    lambda_runtime::run(service_fn(move |event| handle(event, reject))).await
}
