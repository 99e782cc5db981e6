//! `bench-eventkit relay <invocations.json> <outbox-table> <queue-url>`: eventkit's outbox
//! relay handed stream events as Lambda hands them (each a shard's batch), publishing to an
//! SQS queue and marking in the outbox table. The SDK finds both through the counting
//! proxies (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`). Prints one line: the
//! seconds and CPU seconds the invocations took and how many records failed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use eventkit::batch::Deadline;
use eventkit::outbox::Relay;
use eventkit::runtime::EventFunction;
use serde_json::{json, Value};

use crate::protocol::{cpu_seconds, failures_in};

/// Runs the relay over every invocation of the file at `invocations`.
pub async fn run(invocations: &Path, table: &str, queue_url: &str) -> Result<()> {
    let text = std::fs::read_to_string(invocations)
        .with_context(|| format!("reading {}", invocations.display()))?;
    let invocations: Vec<Value> = serde_json::from_str(&text).context("parsing the invocations")?;
    let config = aws_config::load_from_env().await;
    let relay = Relay::new(aws_sdk_dynamodb::Client::new(&config), table)
        .with_sqs(aws_sdk_sqs::Client::new(&config));
    let function = EventFunction::new(relay);
    let _ = queue_url; // Named by each outbox item's destination; given for the usage line.
    let (started, cpu_before) = (Instant::now(), cpu_seconds()?);
    let mut failures = 0;
    for invocation in invocations {
        let response = function
            .handle(invocation, Deadline::after(Duration::from_secs(300)))
            .await
            .context("the relay's invocation failed")?;
        failures += failures_in(&response);
    }
    let line = json!({
        "seconds": started.elapsed().as_secs_f64(),
        "cpu_seconds": cpu_seconds()? - cpu_before,
        "failures": failures,
    });
    println!("@relay {line}");
    Ok(())
}
