//! `cargo xtask send FILE`: publishes an event into the pipeline that `cargo xtask dev` (or a
//! demo still running) runs, where its producer would: OrderPlaced on the topic, anything
//! else on the bus. FILE is an eventkit envelope, or one of the Lambda event samples of
//! `events/<function>/` (an SQS, SNS or EventBridge event), whose envelopes are sent.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use crate::cloud::process::runs_program;
use crate::cloud::Ports;
use crate::demo::publish::publish;
use crate::demo::{runtime, RunningPipeline};
use crate::local_lambda::clients::{Clients, Endpoints};

/// Options of `send`.
#[derive(Args, Clone)]
pub struct SendArgs {
    /// The event file: an envelope, or a Lambda event sample holding envelopes.
    file: PathBuf,
    /// The local cloud the pipeline must run on (refused when it runs on another).
    #[command(flatten)]
    ports: Ports,
}

/// Publishes the file's events.
pub fn run(args: &SendArgs) -> Result<()> {
    // This checkout's pipeline only: its state file names the process that runs it, which
    // must be alive and be this very program (another checkout's xtask is another file).
    let Some(running) = RunningPipeline::read()
        .filter(RunningPipeline::alive)
        .filter(|running| same_program(running.pid))
    else {
        bail!("no pipeline is running: start one with `cargo xtask dev` (in another terminal)");
    };
    check_ports(&args.ports, &running.localstack, &running.dynamodb)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let envelopes = envelopes(&text)
        .with_context(|| format!("{} holds no eventkit envelope", args.file.display()))?;
    runtime()?.block_on(async {
        let clients = Clients::new(&Endpoints {
            localstack: running.localstack.clone(),
            dynamodb: running.dynamodb.clone(),
        })
        .await;
        for envelope in &envelopes {
            let sent = publish(&clients, &running.entrances, envelope).await?;
            println!("{sent} (stack {})", running.stack);
        }
        Ok(())
    })
}

/// Whether process `pid` runs the same program file as this process.
fn same_program(pid: u32) -> bool {
    std::env::current_exe().is_ok_and(|ours| runs_program(pid, &ours))
}

/// Refuses a pipeline whose endpoints are not on the ports asked for.
fn check_ports(ports: &Ports, localstack: &str, dynamodb: &str) -> Result<()> {
    let asked = [
        ("LocalStack", ports.localstack_port, localstack),
        ("DynamoDB Local", ports.dynamodb_port, dynamodb),
    ];
    for (service, port, endpoint) in asked {
        if let Some(port) = port {
            if !endpoint
                .trim_end_matches('/')
                .ends_with(&format!(":{port}"))
            {
                bail!(
                    "the running pipeline uses {service} at {endpoint}, not on port {port}: \
                     nothing sent"
                );
            }
        }
    }
    Ok(())
}

/// The envelopes of a file: itself, or those carried by a Lambda event (SQS bodies, SNS
/// messages, an EventBridge detail).
fn envelopes(text: &str) -> Result<Vec<String>> {
    let value: Value = serde_json::from_str(text).context("not JSON")?;
    if value.get("eventType").is_some() {
        return Ok(vec![text.to_string()]);
    }
    if let Some(detail) = value.get("detail").filter(|d| d.get("eventType").is_some()) {
        return Ok(vec![detail.to_string()]);
    }
    let carried: Vec<String> = value["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|record| {
            let inner = record["body"]
                .as_str()
                .or_else(|| record["Sns"]["Message"].as_str())?;
            let inner: Value = serde_json::from_str(inner).ok()?;
            // An SQS body may itself be an EventBridge event (a rule's queue target).
            let envelope = if inner.get("detail").is_some() {
                inner["detail"].clone()
            } else {
                inner
            };
            envelope
                .get("eventType")
                .is_some()
                .then(|| envelope.to_string())
        })
        .collect();
    if carried.is_empty() {
        bail!("no record carries an envelope");
    }
    Ok(carried)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn only_this_program_on_the_asked_ports_receives() {
        assert!(same_program(std::process::id()));
        // pid 1 is init (or the container's entry point), never this test binary.
        assert!(!same_program(1));
        let ports = Ports {
            localstack_port: Some(4576),
            dynamodb_port: None,
        };
        assert!(check_ports(&ports, "http://127.0.0.1:4576", "http://127.0.0.1:8000").is_ok());
        assert!(check_ports(&ports, "http://127.0.0.1:4566", "http://127.0.0.1:8000").is_err());
    }

    #[test]
    fn envelopes_come_from_the_file_or_the_lambda_event_that_carries_them() {
        let envelope = json!({"eventType": "OrderPlaced", "eventId": "e-1"});
        assert_eq!(envelopes(&envelope.to_string()).unwrap().len(), 1);
        let sqs = json!({"Records": [
            {"body": envelope.to_string()},
            {"body": json!({"detail-type": "PaymentFailed", "detail": envelope}).to_string()},
            {"body": "{\"truncated"}
        ]});
        let found = envelopes(&sqs.to_string()).unwrap();
        assert_eq!(found.len(), 2);
        assert!(envelopes("{\"Records\": []}").is_err());
    }
}
