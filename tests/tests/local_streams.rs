//! The local Lambda's DynamoDB stream event source, end to end against DynamoDB Local: a
//! table's writes reach a plain `lambda_runtime` function (tests/apps, `stream-probe`) in
//! order, a record the function reports as failed is retried from that record on, a poison
//! record is bisected out of its batch, retried `MaximumRetryAttempts` times alone and then
//! recorded in the OnFailure queue, and no record is skipped.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit_local::build::build_binaries;
use eventkit_local::clients::{Clients, Endpoints};
use eventkit_local::cloud::workspace_root;
use eventkit_local::stack::{Stack, StackOptions};
use eventkit_local::{peek, LocalPipeline, RunOptions};
use eventkit_tests::{unique_name, Item};
use serde_json::Value;

/// The template's MaximumRetryAttempts.
const MAX_RETRIES: usize = 2;
/// The template's BatchSize.
const BATCH_SIZE: usize = 4;

/// One invocation, as the function logged it.
#[derive(Debug)]
struct Invocation {
    at: u128,
    ids: Vec<String>,
    processed: Vec<String>,
}

fn strings(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|value| value.as_s().ok().cloned())
            .collect(),
        _ => Vec::new(),
    }
}

async fn invocations(pipeline: &LocalPipeline) -> Vec<Invocation> {
    let table = pipeline.stack().table("ProbeLog").expect("declared");
    let items = pipeline
        .clients()
        .dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("Scan the probe's log")
        .items
        .unwrap_or_default();
    let mut invocations: Vec<Invocation> = items
        .iter()
        .map(|item| Invocation {
            at: item["at"].as_n().expect("at").parse().expect("a number"),
            ids: strings(item, "ids"),
            processed: strings(item, "processed"),
        })
        .collect();
    invocations.sort_by_key(|invocation| invocation.at);
    invocations
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streams_records_arrive_in_order_and_failures_are_retried_or_recorded() {
    let binaries = build_binaries(
        &["stream-probe".to_string()],
        false,
        &[],
        &workspace_root().join(".local-cloud/e2e/stream-probe-build.log"),
    )
    .await
    .expect("stream-probe builds");
    let endpoints = Endpoints::from_env();
    let clients = Clients::new(&endpoints).await;
    let name = unique_name("streams");
    let options = StackOptions {
        name: name.clone(),
        template: workspace_root().join("tests/apps/templates/stream-probe.yaml"),
        parameters: Default::default(),
        visibility_timeout: None,
        binaries,
        endpoints,
    };
    let stack = Stack::create(&clients, &options, |_| {})
        .await
        .expect("the template's resources are created (is the local cloud up?)");
    let logs: PathBuf = workspace_root().join(".local-cloud/e2e").join(&name);
    let pipeline = LocalPipeline::run(clients, stack, &RunOptions::new(logs))
        .await
        .expect("the function starts");

    // Ten writes in order: the third fails once (after two records of its batch that
    // succeed, so a retry from the batch's start would show), the eighth always.
    let behaviour = |n: usize| match n {
        3 => "fail-once",
        8 => "poison",
        _ => "ok",
    };
    let source = pipeline
        .stack()
        .table("SourceTable")
        .expect("declared")
        .to_string();
    let ids: Vec<String> = (1..=10).map(|n| format!("item-{n:02}")).collect();
    for (index, id) in ids.iter().enumerate() {
        pipeline
            .clients()
            .dynamodb
            .put_item()
            .table_name(&source)
            .item("id", AttributeValue::S(id.clone()))
            .item("behaviour", AttributeValue::S(behaviour(index + 1).into()))
            .send()
            .await
            .expect("PutItem");
    }
    pipeline
        .wait_until_settled(Duration::from_secs(3), Duration::from_secs(120), |_| {})
        .await
        .expect("every record is done or given up");

    let invocations = invocations(&pipeline).await;
    let processed: Vec<String> = invocations
        .iter()
        .flat_map(|i| i.processed.clone())
        .collect();
    let expected: Vec<String> = ids.iter().filter(|id| *id != "item-08").cloned().collect();
    assert_eq!(
        processed, expected,
        "every record but the poison one is processed once, in write order: {invocations:#?}"
    );
    assert!(
        invocations.iter().all(|i| i.ids.len() <= BATCH_SIZE),
        "no batch is larger than BatchSize: {invocations:#?}"
    );
    // The reported failure: delivered again, its retry starting at that record.
    let with_three: Vec<&Invocation> = invocations
        .iter()
        .filter(|i| i.ids.contains(&"item-03".to_string()))
        .collect();
    assert_eq!(
        with_three.len(),
        2,
        "item-03 is retried once: {invocations:#?}"
    );
    assert_eq!(
        with_three[1].ids.first().map(String::as_str),
        Some("item-03"),
        "the retry resumes from the failed record: {invocations:#?}"
    );
    // The poison record, bisected out: 1 + MaximumRetryAttempts invocations alone.
    let alone = invocations
        .iter()
        .filter(|i| i.ids == ["item-08".to_string()])
        .count();
    assert_eq!(alone, 1 + MAX_RETRIES, "{invocations:#?}");

    // ... and then recorded (not its records: where they are in the stream).
    let queue = pipeline
        .stack()
        .queue("GivenUpQueue")
        .expect("declared")
        .clone();
    let given_up = peek(pipeline.clients(), &queue)
        .await
        .expect("read the queue");
    assert_eq!(given_up.len(), 1, "one batch given up: {given_up:?}");
    let record: Value =
        serde_json::from_str(given_up[0].body().unwrap_or_default()).expect("JSON record");
    let info = &record["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"]);
    let stream_arn = &pipeline
        .stack()
        .attributes("SourceTable")
        .expect("recorded")
        .attributes["StreamArn"];
    assert_eq!(info["streamArn"].as_str(), Some(stream_arn.as_str()));
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(
        record["requestContext"]["approximateInvokeCount"],
        1 + MAX_RETRIES
    );
    let poison_sequence = stream_sequence_of(&pipeline, &source, "item-08").await;
    assert_eq!(
        info["startSequenceNumber"].as_str(),
        Some(poison_sequence.as_str())
    );

    pipeline.shut_down().await;
}

/// The sequence number the stream gave the write of `id`, read from the stream itself.
async fn stream_sequence_of(pipeline: &LocalPipeline, table: &str, id: &str) -> String {
    let clients = pipeline.clients();
    let arn = clients
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("the table has a stream");
    let shards = clients
        .streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("DescribeStream")
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    for shard in shards {
        let iterator = clients
            .streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        let records = clients
            .streams
            .get_records()
            .set_shard_iterator(iterator)
            .send()
            .await
            .expect("GetRecords")
            .records
            .unwrap_or_default();
        for record in records {
            let change = record.dynamodb();
            let written = change
                .and_then(|c| c.keys())
                .and_then(|keys| keys.get("id"))
                .and_then(|value| value.as_s().ok());
            if written.map(String::as_str) == Some(id) {
                return change
                    .and_then(|c| c.sequence_number())
                    .unwrap_or_default()
                    .to_string();
            }
        }
    }
    panic!("{id} is not in the stream");
}
