//! `bench-eventkit`: the Rust contenders of `cargo xtask bench`, one process per run so that
//! its CPU time and peak memory are its own.
//!
//! `bench-eventkit eventkit <workload> <table>` runs eventkit's `EventFunction` with the
//! DynamoDB idempotency layer (batched claims, its default), `eventkit-per-record` the same
//! with per-record claims, `eventkit-transactional` a handler committing a write and an event
//! (on the completion) under the transactional layer, `eventkit-outbox-items` the same with
//! the event as an outbox item, `eventkit-emits` one committing an event only; `raw-batched` and `raw` run the raw-request baselines of the
//! batched and the per-record requests; `relay` runs the outbox's relay over stream events
//! (see [`relay`]). All speak the protocol in [`protocol`] on stdout and stdin; the SDK finds
//! DynamoDB (the counting proxy) through `AWS_ENDPOINT_URL_DYNAMODB`.

mod eventkit;
mod protocol;
mod raw;
mod raw_batched;
mod relay;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use protocol::{drive, Workload};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-eventkit: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, invocations, table, queue_url] = args.as_slice() {
        if mode == "relay" {
            return relay::run(&PathBuf::from(invocations), table, queue_url).await;
        }
    }
    let [mode, workload, table] = args.as_slice() else {
        bail!(
            "usage: bench-eventkit \
             eventkit|eventkit-traced|eventkit-per-record|eventkit-transactional|eventkit-outbox-items|eventkit-emits|raw|raw-batched \
             <workload.jsonl> <table>, or bench-eventkit relay <invocations.json> <outbox-table> <queue-url>"
        );
    };
    let workload = Workload::read(&PathBuf::from(workload))?;
    match mode.as_str() {
        "eventkit" => drive(&eventkit::contender(table, true).await, &workload).await,
        "eventkit-per-record" => drive(&eventkit::contender(table, false).await, &workload).await,
        // The same contender: the runner's OTEL_EXPORTER_OTLP_ENDPOINT turns export on.
        "eventkit-traced" => drive(&eventkit::contender(table, true).await, &workload).await,
        "eventkit-transactional" => {
            let staging = eventkit::Staging::WriteAndEvent;
            drive(&eventkit::transactional(table, staging).await, &workload).await
        }
        "eventkit-outbox-items" => {
            let staging = eventkit::Staging::WriteAndOutboxItem;
            drive(&eventkit::transactional(table, staging).await, &workload).await
        }
        "eventkit-emits" => {
            let staging = eventkit::Staging::EventOnly;
            drive(&eventkit::transactional(table, staging).await, &workload).await
        }
        "raw" => drive(&raw::contender(table).await, &workload).await,
        "raw-batched" => drive(&raw_batched::contender(table).await, &workload).await,
        other => bail!("unknown contender {other:?}"),
    }
}
