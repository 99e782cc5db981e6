//! Faults only a real service gives, through the real SDK clients: a fault proxy
//! (`xtask::proxy`, the bench's DynamoDB proxy) stands in front of DynamoDB Local or
//! LocalStack and answers chosen requests itself, the way the service answers when it
//! throttles or fails entries of a batch. Everything else passes through to the local cloud.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use eventkit::events::{EventEnvelope, OutgoingEvent, RetryPolicy, SqsPublisher};
use eventkit::idempotency::{
    BatchEntry, DynamoDbStore, Idempotency, IdempotencyConfig, IdempotencyError, IdempotencyStore,
    Outcome, Status, StoreError,
};
use eventkit_tests::{dynamodb_address, localstack_address, LocalCloud};
use serde_json::{json, Value};
use xtask::proxy::{Canned, Proxy};

/// The SDK's own attempts per request in these tests (its standard mode's default).
const SDK_ATTEMPTS: u32 = 3;

/// The SDK's standard retries, with short waits: the tests wait for outcomes, not backoff.
fn quick_sdk_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(SDK_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(50))
}

fn throttling() -> Canned {
    Canned {
        status: 400,
        content_type: "application/x-amz-json-1.0".into(),
        body: json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput."
        })
        .to_string(),
    }
}

/// A fault proxy in front of DynamoDB Local that passes everything through until told.
async fn dynamodb_proxy() -> Proxy {
    Proxy::start(dynamodb_address(), Duration::ZERO)
        .await
        .expect("the proxy listens")
}

/// A layer on `table` whose DynamoDB requests pass through `proxy`, with quick SDK retries.
fn layer_through(cloud: &LocalCloud, proxy: &Proxy, table: &str) -> Idempotency<DynamoDbStore> {
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&cloud.config)
            .endpoint_url(proxy.endpoint())
            .retry_config(quick_sdk_retries())
            .build(),
    );
    Idempotency::new(
        DynamoDbStore::new(client, table),
        IdempotencyConfig::new("orders"),
    )
}

#[tokio::test]
async fn dynamodb_throttling_reaches_the_caller_as_throttled_and_the_handler_never_runs() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("faults-throttled").await;
    let proxy = dynamodb_proxy().await;
    proxy.inject("PutItem", usize::MAX, |_| throttling());
    let layer = layer_through(&cloud, &proxy, &table);
    let runs = AtomicUsize::new(0);

    let outcome = layer
        .run(
            &json!({"eventId": "e1"}),
            "m1",
            Duration::from_secs(30),
            || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<u32, std::io::Error>(1)
            },
        )
        .await;

    assert!(
        matches!(
            &outcome,
            Err(IdempotencyError::Store { record_id, source: StoreError::Throttled { message }, .. })
                if record_id == "m1" && message.contains("Rate of requests")
        ),
        "{outcome:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the handler never ran");
    // The SDK retried the throttled claim before giving up: each attempt reached the proxy.
    assert_eq!(
        proxy.counts().get("PutItem"),
        Some(&u64::from(SDK_ATTEMPTS))
    );
}

/// A layer on a new table (named from `prefix`) whose first `operation` reaches DynamoDB
/// and has its answer lost on the way back, as a dropped connection does.
async fn losing_first_answer(prefix: &str, operation: &str) -> (Proxy, Idempotency<DynamoDbStore>) {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table(prefix).await;
    let proxy = dynamodb_proxy().await;
    proxy.lose_responses(operation, 1);
    let layer = layer_through(&cloud, &proxy, &table);
    (proxy, layer)
}

/// One batch of `payloads`, each with 30 s left.
fn batch_of(payloads: &[Value]) -> Vec<BatchEntry<'_>> {
    payloads
        .iter()
        .map(|payload| BatchEntry {
            payload,
            record_id: "m",
            remaining: Duration::from_secs(30),
        })
        .collect()
}

/// The claim reached DynamoDB, its answer did not: the SDK sent it again, and the retry met
/// the record the first try had written. That record is the caller's own claim (its owner
/// token), not a delivery in progress elsewhere: the handler runs, once, and completes it.
#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_still_the_callers_own() {
    let (proxy, layer) = losing_first_answer("faults-lost-claim", "PutItem").await;
    let runs = AtomicUsize::new(0);
    let payload = json!({"eventId": "e1"});

    let outcome = layer
        .execute(&payload, "m1", Duration::from_secs(30), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<u32, std::io::Error>(7)
        })
        .await;

    assert!(matches!(outcome, Ok(Outcome::Computed(7))), "{outcome:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The claim was sent twice (the lost answer, then the retry) and the first try wrote it.
    assert_eq!(proxy.counts().get("PutItem"), Some(&2));
    assert_eq!(proxy.injected().get("scripted"), Some(&1));
    let key = layer.key_for(&payload).expect("a key");
    let stored = layer.store().get(&key).await.expect("readable");
    assert_eq!(stored.map(|record| record.status), Some(Status::Completed));
}

/// The same for a batch's claims, sent in one BatchExecuteStatement whose answer is lost:
/// every record of the batch meets its own claim on the retry, and each handler runs once.
#[tokio::test]
async fn a_batch_of_claims_whose_answer_was_lost_is_still_the_callers_own() {
    let (proxy, layer) = losing_first_answer("faults-lost-batch", "BatchExecuteStatement").await;
    let runs = AtomicUsize::new(0);
    let payloads: Vec<Value> = (0..4)
        .map(|n| json!({"eventId": format!("b{n}")}))
        .collect();
    let entries = batch_of(&payloads);

    let results = layer
        .execute_batch(&entries, |i| {
            let runs = &runs;
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<usize, std::io::Error>(i)
            }
        })
        .await;

    for (i, result) in results.iter().enumerate() {
        assert!(
            matches!(result, Ok(Outcome::Computed(value)) if *value == i),
            "record {i}: {result:?}"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(proxy.injected().get("scripted"), Some(&1));
    for payload in &payloads {
        let key = layer.key_for(payload).expect("a key");
        let stored = layer.store().get(&key).await.expect("readable");
        assert_eq!(stored.map(|record| record.status), Some(Status::Completed));
    }
}

/// A handler failed; the release of its claim reached DynamoDB, its answer did not, and the
/// SDK sent it again, which found nothing to delete. The claim is gone because this very
/// release removed it, not because another delivery took the key over: the caller gets the
/// handler's own error (here permanent), not `ReleaseFenced` (transient, "taken over").
#[tokio::test]
async fn a_release_whose_answer_was_lost_answers_with_the_handlers_error() {
    let (proxy, layer) = losing_first_answer("faults-lost-release", "DeleteItem").await;
    let payload = json!({"eventId": "e1"});

    let outcome = layer
        .execute(&payload, "m1", Duration::from_secs(30), || async {
            Err::<u32, _>(std::io::Error::other("card declined"))
        })
        .await;

    assert!(
        matches!(&outcome, Err(IdempotencyError::Handler(error)) if error.to_string() == "card declined"),
        "{outcome:?}"
    );
    assert_eq!(proxy.counts().get("DeleteItem"), Some(&2));
    assert_eq!(proxy.injected().get("scripted"), Some(&1));
    let key = layer.key_for(&payload).expect("a key");
    assert_eq!(layer.store().get(&key).await.expect("readable"), None);
}

/// The same for a batch's releases, sent in one BatchExecuteStatement whose answer is lost
/// (the loss is armed once the claims are in, from inside the handlers).
#[tokio::test]
async fn a_batch_of_releases_whose_answer_was_lost_answers_with_the_handlers_errors() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("faults-lost-releases").await;
    let proxy = dynamodb_proxy().await;
    let layer = layer_through(&cloud, &proxy, &table);
    let payloads: Vec<Value> = (0..3)
        .map(|n| json!({"eventId": format!("r{n}")}))
        .collect();
    let entries = batch_of(&payloads);

    let results = layer
        .execute_batch(&entries, |_| {
            let proxy = &proxy;
            async move {
                proxy.lose_responses("BatchExecuteStatement", 1);
                Err::<u32, _>(std::io::Error::other("card declined"))
            }
        })
        .await;

    for (i, result) in results.iter().enumerate() {
        assert!(
            matches!(result, Err(IdempotencyError::Handler(error)) if error.to_string() == "card declined"),
            "record {i}: {result:?}"
        );
    }
    assert_eq!(proxy.injected().get("scripted"), Some(&1));
    for payload in &payloads {
        let key = layer.key_for(payload).expect("a key");
        assert_eq!(layer.store().get(&key).await.expect("readable"), None);
    }
}

/// A BatchExecuteStatement answer that succeeded as a request and failed each statement
/// with one of `codes` in turn (as DynamoDB reports throttling, an internal error or a
/// conflict with a transaction per statement); nothing was written.
fn statements_failed(codes: &'static [&'static str]) -> impl Fn(&[u8]) -> Canned {
    move |request| {
        let request: Value = serde_json::from_slice(request).unwrap_or_default();
        let count = request["Statements"].as_array().map_or(0, Vec::len);
        let responses: Vec<Value> = (0..count)
            .map(|n| json!({"Error": {"Code": codes[n % codes.len()], "Message": "try again"}}))
            .collect();
        Canned {
            status: 200,
            content_type: "application/x-amz-json-1.0".into(),
            body: json!({"Responses": responses}).to_string(),
        }
    }
}

/// A batch's completions whose statements DynamoDB failed one by one in a successful
/// response (throttled, internal error, transaction conflict) are sent again: every record
/// completes, its handler ran once, and a redelivery replays instead of running it twice.
#[tokio::test]
async fn completions_failed_per_statement_are_retried_until_they_are_written() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("faults-statements").await;
    let proxy = dynamodb_proxy().await;
    let layer = layer_through(&cloud, &proxy, &table);
    let runs = AtomicUsize::new(0);
    let payloads: Vec<Value> = (0..3)
        .map(|n| json!({"eventId": format!("s{n}")}))
        .collect();
    let entries = batch_of(&payloads);
    let handler = |i: usize| {
        let (proxy, runs) = (&proxy, &runs);
        async move {
            // Armed once the claims are in: the completions' request is the one answered.
            proxy.inject(
                "BatchExecuteStatement",
                2,
                statements_failed(&[
                    "ThrottlingError",
                    "InternalServerError",
                    "TransactionConflict",
                ]),
            );
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<usize, std::io::Error>(i)
        }
    };

    let results = layer.execute_batch(&entries, handler).await;

    for (i, result) in results.iter().enumerate() {
        assert!(
            matches!(result, Ok(Outcome::Computed(value)) if *value == i),
            "record {i}: {result:?}"
        );
    }
    // The claims, two answered with failed statements, then the retry that wrote them.
    assert_eq!(proxy.counts().get("BatchExecuteStatement"), Some(&4));
    assert_eq!(proxy.injected().get("scripted"), Some(&2));
    for payload in &payloads {
        let key = layer.key_for(payload).expect("a key");
        let stored = layer.store().get(&key).await.expect("readable");
        assert_eq!(stored.map(|record| record.status), Some(Status::Completed));
    }
    let again = layer
        .execute_batch(&entries, |_| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<usize, std::io::Error>(99)
        })
        .await;
    assert!(again
        .iter()
        .all(|result| matches!(result, Ok(Outcome::Replayed(_)))));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

/// Statements that keep failing are given up after a bounded number of attempts, with the
/// statement's own error: the store never waits without end inside an invocation.
#[tokio::test]
async fn statements_that_keep_failing_are_given_up_with_their_error() {
    let cloud = LocalCloud::connect().await;
    let table = cloud
        .create_idempotency_table("faults-statements-down")
        .await;
    let proxy = dynamodb_proxy().await;
    proxy.inject(
        "BatchExecuteStatement",
        usize::MAX,
        statements_failed(&["ThrottlingError"]),
    );
    let layer = layer_through(&cloud, &proxy, &table);
    let payload = json!({"eventId": "d1"});
    let entries = [
        BatchEntry {
            payload: &payload,
            record_id: "m",
            remaining: Duration::from_secs(30),
        },
        BatchEntry {
            payload: &payload,
            record_id: "m2",
            remaining: Duration::from_secs(30),
        },
    ];
    let runs = AtomicUsize::new(0);

    let results = layer
        .execute_batch(&entries, |_| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<u32, std::io::Error>(1)
        })
        .await;

    assert!(
        matches!(
            &results[0],
            Err(IdempotencyError::Store {
                source: StoreError::Throttled { .. },
                ..
            })
        ),
        "{:?}",
        results[0]
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(proxy.counts().get("BatchExecuteStatement"), Some(&5));
}

/// A SendMessageBatch answer in which every entry of the request failed, retryably (as SQS
/// reports an internal error per entry); nothing was sent.
fn every_entry_failed(request: &[u8]) -> Canned {
    let request: Value = serde_json::from_slice(request).unwrap_or_default();
    let failed: Vec<Value> = request["Entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    json!({"Id": entry["Id"], "SenderFault": false,
                           "Code": "InternalError", "Message": "try again"})
                })
                .collect()
        })
        .unwrap_or_default();
    Canned {
        status: 200,
        content_type: "application/x-amz-json-1.0".into(),
        body: json!({"Successful": [], "Failed": failed}).to_string(),
    }
}

#[tokio::test]
async fn sqs_entries_reported_failed_are_sent_again_and_arrive_once() {
    let cloud = LocalCloud::connect().await;
    let queue = cloud.create_queue("faults-entries", &[]).await;
    let proxy = Proxy::start(localstack_address(), Duration::ZERO)
        .await
        .expect("the proxy listens");
    // The first batch comes back with every entry failed; the second passes through.
    proxy.inject("SendMessageBatch", 1, every_entry_failed);
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&cloud.config)
            .endpoint_url(proxy.endpoint())
            .build(),
    );
    let envelopes: Vec<EventEnvelope<Value>> = (0..7)
        .map(|n| EventEnvelope::from_parts("CustomerRegistered", 1, "customers", json!({"n": n})))
        .collect();
    let events: Vec<OutgoingEvent> = envelopes
        .iter()
        .map(|e| OutgoingEvent::from_envelope(e).unwrap())
        .collect();

    let failures = SqsPublisher::new(client, &queue.url)
        .with_retry(
            RetryPolicy::attempts(3)
                .with_delays(Duration::from_millis(10), Duration::from_millis(20)),
        )
        .publish(&events)
        .await;

    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(proxy.counts().get("SendMessageBatch"), Some(&2));
    let messages = cloud.receive(&queue, 7, Duration::from_secs(20)).await;
    let mut arrived: Vec<String> = messages
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap();
            body["eventId"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    arrived.sort();
    let mut sent: Vec<String> = envelopes.iter().map(|e| e.event_id.clone()).collect();
    sent.sort();
    assert_eq!(arrived, sent);
    // Nothing more: the failed first batch was never delivered.
    let more = cloud.receive(&queue, 1, Duration::from_secs(2)).await;
    assert!(more.is_empty(), "{more:?}");
}
