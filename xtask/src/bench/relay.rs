//! The relay's cost (issue #35): events per second and requests per event through the
//! outbox's relay as deployed (a shard's batch of up to 100 records per invocation) against
//! one event per invocation (what the relay did before it took batches whole: a publish and
//! a mark per event). It publishes to an SQS queue in LocalStack and marks in DynamoDB
//! Local; a proxy in front of each counts every request. The outbox items are written
//! beforehand, directly (not counted), and the stream events built from them as Lambda
//! hands them over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::{json, Map, Value};
use tokio::process::Command;
use xtask::cloud::REGION;
use xtask::progress::Step;
use xtask::proxy::{Counts, Proxy};

use super::tables::Tables;

/// Records per invocation as deployed (the template's `BatchSize`).
const DEPLOYED_BATCH: usize = 100;

/// One way of relaying, measured.
pub struct RelayRun {
    /// The name in the table.
    pub label: &'static str,
    /// Events relayed.
    pub events: usize,
    /// Wall time of all the invocations.
    pub seconds: f64,
    /// The relay process's CPU time over them.
    pub cpu_seconds: f64,
    /// Requests by operation, DynamoDB's and SQS's.
    pub counts: Counts,
}

impl RelayRun {
    fn per_event(&self, count: u64) -> f64 {
        count as f64 / self.events.max(1) as f64
    }

    /// Every request, per event.
    pub fn requests_per_event(&self) -> f64 {
        self.per_event(self.counts.values().sum())
    }

    /// Events relayed per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// What the measurement talks to.
pub struct Services<'a> {
    /// The release `bench-eventkit`.
    pub bench_eventkit: &'a Path,
    /// DynamoDB Local, for the proxy.
    pub dynamodb: SocketAddr,
    /// LocalStack, for the proxy.
    pub localstack: SocketAddr,
    /// Creates and deletes tables directly.
    pub tables: &'a Tables,
    /// SQS, directly (the queue's creation and deletion are not counted).
    pub sqs: aws_sdk_sqs::Client,
    /// Where the invocation files go.
    pub dir: &'a Path,
    /// Names this bench run's tables and queues.
    pub run_id: &'a str,
}

/// Relays `events` events per event, then in deployed batches.
pub async fn measure(services: &Services<'_>, events: usize) -> Result<Vec<RelayRun>> {
    let mut runs = Vec::new();
    for (label, per_invocation) in [
        ("relay, one event per invocation", 1),
        (
            "relay, a shard's batch per invocation (as deployed)",
            DEPLOYED_BATCH,
        ),
    ] {
        let step = Step::start(format!("{label}: {events} events"));
        match relay(services, events, per_invocation, label).await {
            Ok(run) => {
                step.done(&format!(
                    "{:.0} events/s, {:.2} requests per event",
                    run.events_per_second(),
                    run.requests_per_event()
                ));
                runs.push(run);
            }
            Err(error) => {
                step.fail();
                return Err(error);
            }
        }
    }
    Ok(runs)
}

async fn relay(
    services: &Services<'_>,
    events: usize,
    per_invocation: usize,
    label: &'static str,
) -> Result<RelayRun> {
    let name = format!("relay-{}-{per_invocation}", services.run_id);
    services.tables.create(&name).await?;
    let queue_url = services
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .context("creating the relay's queue")?
        .queue_url
        .context("the new queue has no URL")?;
    let items: Vec<Value> = (0..events).map(|n| outbox_item(n, &queue_url)).collect();
    services.tables.put_all(&name, &items).await?;
    let invocations: Vec<Value> = items
        .chunks(per_invocation)
        .enumerate()
        .map(|(chunk, items)| stream_event(chunk * per_invocation, items))
        .collect();
    let file = services.dir.join(format!("relay-{per_invocation}.json"));
    std::fs::write(&file, serde_json::to_vec(&invocations)?)?;

    let dynamodb = Proxy::start(services.dynamodb, Duration::ZERO).await?;
    let sqs = Proxy::start(services.localstack, Duration::ZERO).await?;
    let output = Command::new(services.bench_eventkit)
        .args(["relay"])
        .arg(&file)
        .args([name.as_str(), queue_url.as_str()])
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.endpoint())
        .env("AWS_ENDPOINT_URL_SQS", sqs.endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // The relay logs a line per event; the measurement keeps only its own line.
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .context("running bench-eventkit relay")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("@relay "))
        .with_context(|| format!("bench-eventkit relay said nothing ({})", output.status))?;
    let figures: Value = serde_json::from_str(line)?;
    if figures["failures"].as_u64() != Some(0) {
        bail!("{label}: the relay failed records: {figures}");
    }
    let published = queue_length(&services.sqs, &queue_url).await?;
    if published != events {
        bail!("{label}: {published} of {events} events reached the queue");
    }
    let mut counts = dynamodb.counts();
    for (operation, count) in sqs.counts() {
        *counts.entry(operation).or_default() += count;
    }
    services.tables.delete(&name).await?;
    let _ = services
        .sqs
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await;
    Ok(RelayRun {
        label,
        events,
        seconds: figures["seconds"].as_f64().unwrap_or_default(),
        cpu_seconds: figures["cpu_seconds"].as_f64().unwrap_or_default(),
        counts,
    })
}

/// How many messages the queue holds (LocalStack counts them at once).
async fn queue_length(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<usize> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .context("reading the queue's length")?;
    Ok(attributes
        .attributes()
        .and_then(|all| all.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|count| count.parse().ok())
        .unwrap_or_default())
}

/// An unpublished outbox item for the queue, in DynamoDB JSON (`{"S": ..}`), shaped as the
/// commit writes it (see `eventkit::outbox::OutboxEntry`).
fn outbox_item(n: usize, queue_url: &str) -> Value {
    let event_id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "eventId": event_id, "eventType": "StockReserved", "eventVersion": 1,
        "source": "bench", "time": "2026-12-07T00:00:00Z",
        "correlationId": event_id, "data": {"orderId": format!("o-{n}"), "units": 3}
    });
    let s = |text: &str| json!({ "S": text });
    json!({
        "id": s(&format!("{event_id}|sqs:{queue_url}")),
        "eventId": s(&event_id),
        "eventType": s("StockReserved"),
        "source": s("bench"),
        "time": s("2026-12-07T00:00:00+00:00"),
        "body": s(&body.to_string()),
        "destination": s(&format!("sqs:{queue_url}")),
        "committedBy": s(&format!("bench#{n}")),
        "stagedAt": s("2026-12-07T00:00:00.000Z"),
        "unpublished": s(&format!("{:x}", n % 16)),
    })
}

/// The stream event Lambda hands the relay for `items`, sequence numbers from `first`.
fn stream_event(first: usize, items: &[Value]) -> Value {
    let records: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            json!({
                "eventID": format!("{}", first + n), "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_796_601_600,
                    "Keys": {"id": item["id"]},
                    "NewImage": item,
                    "SequenceNumber": format!("{:021}", first + n + 1),
                    "SizeBytes": 512, "StreamViewType": "NEW_AND_OLD_IMAGES"
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A DynamoDB JSON item of string attributes as the SDK's attribute values.
pub fn attribute_values(item: &Value) -> HashMap<String, AttributeValue> {
    item.as_object()
        .map(Map::iter)
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| {
            Some((
                name.clone(),
                AttributeValue::S(value["S"].as_str()?.to_string()),
            ))
        })
        .collect()
}

/// The items' puts, 25 to a `BatchWriteItem`.
pub fn write_requests(items: &[Value]) -> Result<Vec<Vec<WriteRequest>>> {
    items
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(attribute_values(item)))
                        .build()?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect()
        })
        .collect()
}

/// The section of BENCHMARKS.md.
pub fn markdown(runs: &[RelayRun]) -> String {
    let mut text = String::from(
        "## The relay: publishing the outbox\n\n\
         The outbox's relay publishing committed events to an SQS queue in LocalStack and \
         marking them in DynamoDB Local, every request of both counted by a proxy: handed one \
         stream record per invocation (what it did before it took a shard's batch whole: a \
         publish and a mark per event), and handed the shard's batches of 100 records the \
         template's event source mapping gives it (the events published ten per \
         `SendMessageBatch`, marked 25 per `BatchExecuteStatement`). The relay's own marks \
         come back through the stream without `unpublished` and the mapping's \
         `FilterCriteria` drops them before any invocation, so they cost no request here or \
         there. One run each (the relay runs in the release `bench-eventkit`).\n\n\
         | relay | events | events/s | requests/event | requests by operation, per event | client CPU µs/event |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for run in runs {
        let by_operation: Vec<String> = run
            .counts
            .iter()
            .map(|(operation, count)| format!("{operation} {:.2}", run.per_event(*count)))
            .collect();
        text.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {} | {:.0} |\n",
            run.label,
            run.events,
            run.events_per_second(),
            run.requests_per_event(),
            by_operation.join(", "),
            run.cpu_seconds * 1e6 / run.events.max(1) as f64,
        ));
    }
    text
}
