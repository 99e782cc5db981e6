//! What only the DynamoDB store can show, against DynamoDB Local: the item as written (its
//! attributes, epoch-second `expiration`, the table's TTL), what each outcome costs in
//! requests (counted by an SDK interceptor), custom attribute names, and DynamoDB's own
//! failures surfacing as typed errors. The semantics shared with the in-memory store are in
//! `idempotency_semantics.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use eventkit::idempotency::{
    AttributeNames, Clock, DynamoDbStore, Idempotency, IdempotencyConfig, IdempotencyError,
    ManualClock, StoreError, SystemClock, DEFAULT_RECORD_TTL,
};
use eventkit_tests::LocalCloud;
use serde_json::{json, Value};

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
struct Boom;

fn event(id: &str) -> Value {
    json!({"eventId": id, "eventType": "OrderPlaced", "data": {"orderId": "o-7", "amount": 10}})
}

/// Records the operation of every request the client sends (retries included).
#[derive(Clone, Debug, Default)]
struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    /// The operations sent since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.PutItem`.
        let target = context.request().headers().get("x-amz-target");
        let operation = target.and_then(|target| target.rsplit('.').next());
        self.0
            .lock()
            .unwrap()
            .push(operation.unwrap_or("?").to_string());
        Ok(())
    }
}

fn logged_client(cloud: &LocalCloud, log: &RequestLog) -> aws_sdk_dynamodb::Client {
    let config = cloud
        .dynamodb
        .config()
        .to_builder()
        .interceptor(log.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn raw_item(
    cloud: &LocalCloud,
    table: &str,
    key_name: &str,
    key: &str,
) -> Option<HashMap<String, AttributeValue>> {
    cloud
        .dynamodb
        .get_item()
        .table_name(table)
        .key(key_name, AttributeValue::S(key.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    match item.get(name) {
        Some(AttributeValue::N(text)) => text.parse().expect("an integer"),
        other => panic!("{name} is not a number: {other:?}"),
    }
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(text)) => text,
        other => panic!("{name} is not a string: {other:?}"),
    }
}

#[tokio::test]
async fn first_execution_writes_the_documented_item_with_a_ttl_in_epoch_seconds() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    let clock = ManualClock::at_system_time();
    let t0 = clock.now_ms();
    let layer = Idempotency::new(
        DynamoDbStore::new(cloud.dynamodb.clone(), &table),
        IdempotencyConfig::new("orders").validate_payload("data"),
    )
    .with_clock(clock);

    let out = layer
        .run(&event("e1"), "m1", WINDOW, || async {
            Ok::<_, Boom>(json!({"charged": 42}))
        })
        .await
        .unwrap();
    assert_eq!(out, json!({"charged": 42}));

    let key = layer.key_for(&event("e1")).unwrap();
    let item = raw_item(&cloud, &table, "id", &key)
        .await
        .expect("the item");
    let names: BTreeSet<&str> = item.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "id",
            "status",
            "expiration",
            "in_progress_expiration",
            "data",
            "validation",
            "owner"
        ])
    );
    assert_eq!(string(&item, "id"), key);
    assert_eq!(string(&item, "status"), "COMPLETED");
    assert_eq!(string(&item, "data"), r#"{"charged":42}"#);
    assert_eq!(
        Some(string(&item, "validation")),
        layer.payload_hash(&event("e1")).as_deref()
    );
    assert!(uuid::Uuid::parse_str(string(&item, "owner")).is_ok());
    assert_eq!(number(&item, "in_progress_expiration"), t0 + 60_000);

    // Epoch seconds (what DynamoDB's TTL reads), the default retention after the completion.
    let expiration = number(&item, "expiration");
    let retention = DEFAULT_RECORD_TTL.as_secs();
    assert_eq!(expiration, t0 / 1000 + retention);
    let wall_clock = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(expiration.abs_diff(wall_clock.as_secs() + retention) < 60);

    let ttl = cloud
        .dynamodb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .expect("a TTL description");
    assert_eq!(ttl.time_to_live_status, Some(TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name.as_deref(), Some("expiration"));
}

#[tokio::test]
async fn a_duplicate_costs_exactly_one_request() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    let log = RequestLog::default();
    let store = DynamoDbStore::new(logged_client(&cloud, &log), &table);
    let layer = Idempotency::new(store.clone(), IdempotencyConfig::new("orders"))
        .with_clock(ManualClock::at_system_time());
    let runs = AtomicUsize::new(0);
    let handler = |value: u32| {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, Boom>(value))
    };

    assert_eq!(
        layer
            .run(&event("e1"), "m1", WINDOW, || handler(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(log.take(), ["PutItem", "UpdateItem"], "claim, complete");

    assert_eq!(
        layer
            .run(&event("e1"), "m2", WINDOW, || handler(2))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        log.take(),
        ["PutItem"],
        "a completed duplicate: the claim only"
    );

    let failed = layer
        .run(&event("e2"), "m3", WINDOW, || async { Err::<u32, _>(Boom) })
        .await;
    assert!(matches!(failed, Err(IdempotencyError::Handler(Boom))));
    assert_eq!(log.take(), ["PutItem", "DeleteItem"], "claim, release");

    // An in-progress duplicate, while the first delivery's handler is running.
    let duplicate = layer
        .run(&event("e3"), "m4", WINDOW, || async {
            log.take();
            let outcome = layer.run(&event("e3"), "m5", WINDOW, || handler(5)).await;
            let requests = log.take();
            let in_progress = matches!(
                &outcome,
                Err(IdempotencyError::AlreadyInProgress { record_id, .. }) if record_id == "m5"
            );
            Ok::<_, Boom>((in_progress, requests))
        })
        .await
        .unwrap();
    assert_eq!(duplicate, (true, vec!["PutItem".to_string()]));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Without ALL_OLD on a failed condition, the record is read back: a second request.
    let without_old_item = Idempotency::new(
        store.with_return_old_item_on_conflict(false),
        IdempotencyConfig::new("orders"),
    );
    log.take();
    assert_eq!(
        without_old_item
            .run(&event("e1"), "m6", WINDOW, || handler(6))
            .await
            .unwrap(),
        1
    );
    assert_eq!(log.take(), ["PutItem", "GetItem"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_batch_of_ten_costs_two_requests_new_and_two_duplicate() {
    use eventkit::idempotency::{BatchEntry, IdempotencyStore};
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    let log = RequestLog::default();
    let store = DynamoDbStore::new(logged_client(&cloud, &log), &table);
    let layer = Idempotency::new(store, IdempotencyConfig::new("orders"))
        .with_clock(ManualClock::at_system_time());
    let payloads: Vec<Value> = (0..10).map(|n| event(&format!("b{n}"))).collect();
    let ids: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    let entries: Vec<BatchEntry> = payloads
        .iter()
        .zip(&ids)
        .map(|(payload, record_id)| BatchEntry {
            payload,
            record_id,
            remaining: WINDOW,
        })
        .collect();
    let runs = AtomicUsize::new(0);
    let run = |failing: usize| {
        let runs = &runs;
        layer.execute_batch(&entries, move |i| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            if i == failing {
                Err(Boom)
            } else {
                Ok::<_, Boom>(i)
            }
        })
    };

    let first = run(usize::MAX).await;
    assert!(first
        .iter()
        .all(|result| matches!(result, Ok(outcome) if !outcome.is_replayed())));
    assert_eq!(
        log.take(),
        ["BatchExecuteStatement", "BatchExecuteStatement"],
        "every claim in one request, every completion in one more"
    );

    let again = run(usize::MAX).await;
    assert!(again
        .iter()
        .all(|result| matches!(result, Ok(outcome) if outcome.is_replayed())));
    // DynamoDB Local returns no item with a refused INSERT: the duplicates are read back
    // in one more request (DynamoDB itself returns the items, so one request there).
    assert_eq!(log.take(), ["BatchExecuteStatement", "BatchGetItem"]);
    assert_eq!(runs.load(Ordering::SeqCst), 10);

    // New keys, one handler failing: its release shares the completions' request.
    let fresh: Vec<Value> = (0..10).map(|n| event(&format!("c{n}"))).collect();
    let entries: Vec<BatchEntry> = fresh
        .iter()
        .zip(&ids)
        .map(|(payload, record_id)| BatchEntry {
            payload,
            record_id,
            remaining: WINDOW,
        })
        .collect();
    let results = layer
        .execute_batch(&entries, |i| async move {
            if i == 3 {
                Err(Boom)
            } else {
                Ok::<_, Boom>(i)
            }
        })
        .await;
    assert!(matches!(results[3], Err(IdempotencyError::Handler(Boom))));
    assert_eq!(
        log.take(),
        [
            "BatchExecuteStatement",
            "BatchExecuteStatement",
            "BatchExecuteStatement"
        ],
        "claims; then the nine completions and the release, side by side"
    );
    let key = layer.key_for(&fresh[3]).unwrap();
    assert!(layer.store().get(&key).await.unwrap().is_none(), "released");
}

#[tokio::test]
async fn a_missing_table_is_a_typed_error_before_and_after_the_handler() {
    let cloud = LocalCloud::connect().await;
    let runs = AtomicUsize::new(0);
    let missing = Idempotency::new(
        DynamoDbStore::new(cloud.dynamodb.clone(), "no-such-idempotency-table"),
        IdempotencyConfig::new("orders"),
    );
    let error = missing
        .run(&event("e1"), "m1", WINDOW, || {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<u32, Boom>(1) }
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, IdempotencyError::Store { source: StoreError::TableMissing { table, .. }, .. } if table == "no-such-idempotency-table"),
        "{error:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    // The table disappears while the handler runs: completion and release both report it.
    for handler_fails in [false, true] {
        let table = cloud.create_idempotency_table("idem").await;
        let layer = Idempotency::new(
            DynamoDbStore::new(cloud.dynamodb.clone(), &table),
            IdempotencyConfig::new("orders"),
        );
        let error = layer
            .run(&event("e1"), "m1", WINDOW, || async {
                cloud
                    .dynamodb
                    .delete_table()
                    .table_name(&table)
                    .send()
                    .await
                    .expect("DeleteTable");
                if handler_fails {
                    Err(Boom)
                } else {
                    Ok(1_u32)
                }
            })
            .await
            .unwrap_err();
        assert!(error.handler_ran());
        let source = match &error {
            IdempotencyError::CompletionFailed { source, .. } if !handler_fails => source,
            IdempotencyError::ReleaseFailed {
                source,
                handler_error: Boom,
                ..
            } if handler_fails => source,
            other => panic!("unexpected {other:?}"),
        };
        assert!(
            matches!(source, StoreError::TableMissing { .. }),
            "{source:?}"
        );
    }
}

#[tokio::test]
async fn custom_attribute_names_are_written_and_used_in_the_conditions() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_table_with_ttl("idem", "pk", "ttl").await;
    let names = AttributeNames {
        key: "pk".into(),
        status: "state".into(),
        expiration: "ttl".into(),
        in_progress_expiry: "lease_until_ms".into(),
        data: "result".into(),
        validation: "payload_sha256".into(),
        owner: "claimed_by".into(),
    };
    // An hour ahead, so that DynamoDB Local's TTL sweeper (on the real clock) leaves the
    // 10-second record alone: the claim condition alone must find it expired.
    let clock = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let layer = Idempotency::new(
        DynamoDbStore::new(cloud.dynamodb.clone(), &table).with_attribute_names(names),
        IdempotencyConfig::new("orders")
            .with_record_ttl(Duration::from_secs(10))
            .validate_payload(""),
    )
    .with_clock(clock.clone());
    let runs = AtomicUsize::new(0);
    let handler = |value: u32| {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, Boom>(value))
    };
    let window = Duration::from_secs(5);

    layer
        .run(&event("e1"), "m1", window, || handler(1))
        .await
        .unwrap();
    let key = layer.key_for(&event("e1")).unwrap();
    let item = raw_item(&cloud, &table, "pk", &key)
        .await
        .expect("the item");
    let names: BTreeSet<&str> = item.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "pk",
            "state",
            "ttl",
            "lease_until_ms",
            "result",
            "payload_sha256",
            "claimed_by"
        ])
    );
    assert_eq!(string(&item, "state"), "COMPLETED");

    // Replay reads the custom names; the expiry condition compares the custom `ttl`.
    let replayed = layer
        .run(&event("e1"), "m2", window, || handler(2))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    let mut tampered = event("e1");
    tampered["data"]["amount"] = json!(11);
    assert!(matches!(
        layer.run(&tampered, "m3", window, || handler(3)).await,
        Err(IdempotencyError::PayloadValidation { .. })
    ));
    clock.advance(Duration::from_secs(11));
    let rerun = layer
        .run(&event("e1"), "m4", window, || handler(4))
        .await
        .unwrap();
    assert_eq!((rerun, runs.load(Ordering::SeqCst)), (4, 2));
}

#[tokio::test]
async fn a_malformed_item_is_a_typed_error_and_the_handler_does_not_run() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    let clock = ManualClock::at_system_time();
    let layer = Idempotency::new(
        DynamoDbStore::new(cloud.dynamodb.clone(), &table),
        IdempotencyConfig::new("orders"),
    )
    .with_clock(clock.clone());
    let key = layer.key_for(&event("e1")).unwrap();
    // A live item someone else wrote, with a status this version does not know.
    cloud
        .dynamodb
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S(key.clone()))
        .item("status", AttributeValue::S("DONE".into()))
        .item(
            "expiration",
            AttributeValue::N((clock.now_ms() / 1000 + 3600).to_string()),
        )
        .send()
        .await
        .expect("PutItem");

    let runs = AtomicUsize::new(0);
    let error = layer
        .run(&event("e1"), "m1", WINDOW, || {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<u32, Boom>(1) }
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, IdempotencyError::Store { source: StoreError::CorruptRecord { key: bad, .. }, .. } if *bad == key),
        "{error:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let item = raw_item(&cloud, &table, "id", &key)
        .await
        .expect("the item");
    assert_eq!(string(&item, "status"), "DONE", "left as it was");
}

#[tokio::test]
async fn the_dynamodb_store_passes_the_conformance_check_third_party_stores_run() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    let store = DynamoDbStore::new(cloud.dynamodb.clone(), &table);
    eventkit::idempotency::conformance::check_store(&store)
        .await
        .unwrap();
    // Run again on the same table: every run keeps to keys of its own.
    eventkit::idempotency::conformance::check_store(&store)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_table_reaches_lambdas_error_with_the_stores_message() {
    use eventkit::handler::{Handler, Json, RecordHandlerExt};
    use eventkit::idempotency::IdempotencyLayer;
    use eventkit::runtime::EventFunction;

    let cloud = LocalCloud::connect().await;
    let function = EventFunction::new(
        Handler::new(|Json(_): Json<Value>| async { Ok::<_, std::io::Error>(1_u32) }).layer(
            IdempotencyLayer::new(
                DynamoDbStore::new(cloud.dynamodb.clone(), "no-such-idempotency-table"),
                IdempotencyConfig::new("orders"),
            ),
        ),
    );
    let eventbridge = json!({
        "version": "0", "id": "eb-1", "detail-type": "OrderPlaced", "source": "orders",
        "account": "000000000000", "time": "2026-11-22T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": event("e1")
    });
    let deadline = eventkit::batch::Deadline::after(WINDOW);
    let error = function.handle(eventbridge, deadline).await.unwrap_err();
    // What Lambda's error message is made of (the Diagnostic's message is this text): the
    // record, the store failure, and the store's own words, in one line.
    let message = error.to_string();
    assert!(message.contains("record eb-1"), "{message}");
    assert!(
        message.contains("idempotency table \"no-such-idempotency-table\" does not exist"),
        "{message}"
    );
}

/// An SQS event of one record per body, message ids `m0`, `m1`, ...
fn sqs_batch(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            json!({
                "messageId": format!("m{n}"), "receiptHandle": "r", "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn an_sqs_batch_through_the_layer_costs_two_requests_unless_per_record_is_chosen() {
    use eventkit::handler::{Handler, Json, RecordHandlerExt};
    use eventkit::idempotency::IdempotencyLayer;
    use eventkit::runtime::EventFunction;

    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    let log = RequestLog::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let function = |config: IdempotencyConfig| {
        let runs = runs.clone();
        EventFunction::new(
            Handler::new(move |Json(body): Json<Value>| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(body["eventId"].clone())
                }
            })
            .layer(IdempotencyLayer::new(
                DynamoDbStore::new(logged_client(&cloud, &log), &table),
                config,
            )),
        )
    };
    let deadline = || eventkit::batch::Deadline::after(WINDOW);
    let no_failures = json!({"batchItemFailures": []});

    // Batched claims, the default: one request claims the ten, one completes them.
    let batched = function(IdempotencyConfig::new("orders"));
    let bodies: Vec<Value> = (0..10).map(|n| event(&format!("s{n}"))).collect();
    let response = batched
        .handle(sqs_batch(&bodies), deadline())
        .await
        .unwrap();
    assert_eq!(response, no_failures);
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    assert_eq!(
        log.take(),
        ["BatchExecuteStatement", "BatchExecuteStatement"]
    );
    // The same batch again: replayed, the handler not run, in two requests.
    let response = batched
        .handle(sqs_batch(&bodies), deadline())
        .await
        .unwrap();
    assert_eq!(response, no_failures);
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    assert_eq!(log.take(), ["BatchExecuteStatement", "BatchGetItem"]);

    // Per record, as chosen: a claim and a completion for each record.
    let per_record = function(IdempotencyConfig::new("orders").with_batched_claims(false));
    let bodies: Vec<Value> = (0..10).map(|n| event(&format!("p{n}"))).collect();
    let response = per_record
        .handle(sqs_batch(&bodies), deadline())
        .await
        .unwrap();
    assert_eq!(response, no_failures);
    assert_eq!(runs.load(Ordering::SeqCst), 20);
    let sent = log.take();
    assert_eq!(sent.len(), 20, "{sent:?}");
    assert_eq!(sent.iter().filter(|op| *op == "PutItem").count(), 10);
}

#[tokio::test]
async fn a_sort_key_table_passes_the_conformance_check_and_keeps_each_partition_apart() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_sorted_idempotency_table("idem-sk").await;
    let store = |partition: &str| {
        DynamoDbStore::new(cloud.dynamodb.clone(), &table).with_sort_key("sk", partition)
    };
    let inventory = store("idempotency#inventory");
    eventkit::idempotency::conformance::check_store(&inventory)
        .await
        .unwrap();

    // One key in two partitions of the table: two records, each function its own.
    let payments = store("idempotency#payments");
    let layers = [
        Idempotency::new(inventory, IdempotencyConfig::new("orders")),
        Idempotency::new(payments, IdempotencyConfig::new("orders")),
    ];
    for (n, layer) in layers.iter().enumerate() {
        let ran = layer
            .run(&event("shared"), "m1", WINDOW, || async {
                Ok::<_, Boom>(n)
            })
            .await
            .unwrap();
        assert_eq!(ran, n, "each partition runs its own handler");
    }
    let key = layers[0].key_for(&event("shared")).unwrap();
    for partition in ["idempotency#inventory", "idempotency#payments"] {
        let item = cloud
            .dynamodb
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S(partition.into()))
            .key("sk", AttributeValue::S(key.clone()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no record in {partition}"));
        assert_eq!(item["status"], AttributeValue::S("COMPLETED".into()));
    }
}

#[tokio::test]
async fn an_sqs_batch_on_a_sort_key_table_costs_two_requests_and_lands_in_its_partition() {
    use eventkit::handler::{Handler, Json, RecordHandlerExt};
    use eventkit::idempotency::IdempotencyLayer;
    use eventkit::runtime::EventFunction;

    let cloud = LocalCloud::connect().await;
    let table = cloud.create_sorted_idempotency_table("idem-sk").await;
    let log = RequestLog::default();
    let store = DynamoDbStore::new(logged_client(&cloud, &log), &table)
        .with_sort_key("sk", "idempotency#inventory");
    let function = EventFunction::new(
        Handler::new(|Json(body): Json<Value>| async move {
            Ok::<_, std::io::Error>(body["eventId"].clone())
        })
        .layer(IdempotencyLayer::new(
            store,
            IdempotencyConfig::new("orders"),
        )),
    );
    let bodies: Vec<Value> = (0..10).map(|n| event(&format!("t{n}"))).collect();
    let deadline = || eventkit::batch::Deadline::after(WINDOW);
    for _ in 0..2 {
        let response = function
            .handle(sqs_batch(&bodies), deadline())
            .await
            .unwrap();
        assert_eq!(response, json!({"batchItemFailures": []}));
    }
    assert_eq!(
        log.take(),
        [
            "BatchExecuteStatement",
            "BatchExecuteStatement",
            "BatchExecuteStatement",
            "BatchGetItem"
        ],
        "a new batch: claims and completions; the same batch again: claims and their read"
    );
    let items = cloud
        .dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("id = :partition")
        .expression_attribute_values(
            ":partition",
            AttributeValue::S("idempotency#inventory".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 10);
    assert!(items
        .items()
        .iter()
        .all(|item| item["status"] == AttributeValue::S("COMPLETED".into())));
}

/// What BENCHMARKS.md prices the default and per-record paths at, billed from the requests
/// themselves (the proxy counts units by DynamoDB's rules): batched, a claim and a completion
/// per record at one write unit each, in two requests per batch; a duplicate batch a refused
/// claim each (billed) and one consistent read each. Per record: the same writes in a
/// request each, and a duplicate's refused claim returns the stored item (no read).
#[tokio::test]
async fn each_path_is_billed_one_write_unit_per_claim_and_per_completion() {
    use eventkit::handler::{Handler, Json, RecordHandlerExt};
    use eventkit::idempotency::IdempotencyLayer;
    use eventkit::runtime::EventFunction;
    use xtask::proxy::{Capacity, Proxy};

    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("billed").await;
    let proxy = Proxy::start(eventkit_tests::dynamodb_address(), Duration::ZERO)
        .await
        .unwrap();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&cloud.config)
            .endpoint_url(proxy.endpoint())
            .build(),
    );
    let function = |config: IdempotencyConfig| {
        EventFunction::new(
            Handler::new(|Json(body): Json<Value>| async move {
                Ok::<_, std::io::Error>(body["eventId"].clone())
            })
            .layer(IdempotencyLayer::new(
                DynamoDbStore::new(client.clone(), &table),
                config,
            )),
        )
    };
    let deadline = || eventkit::batch::Deadline::after(WINDOW);
    let units = |write_units: f64, read_units: f64| Capacity {
        write_units,
        read_units,
    };
    let mut billed = Capacity::default();
    let mut billed_since = || {
        let now = proxy.capacity();
        let since = now - billed;
        billed = now;
        since
    };

    let batched = function(IdempotencyConfig::new("orders"));
    let bodies: Vec<Value> = (0..10).map(|n| event(&format!("u{n}"))).collect();
    batched
        .handle(sqs_batch(&bodies), deadline())
        .await
        .unwrap();
    assert_eq!(billed_since(), units(20.0, 0.0), "new, batched");
    batched
        .handle(sqs_batch(&bodies), deadline())
        .await
        .unwrap();
    assert_eq!(billed_since(), units(10.0, 10.0), "duplicate, batched");

    let per_record = function(IdempotencyConfig::new("orders").with_batched_claims(false));
    let bodies: Vec<Value> = (0..10).map(|n| event(&format!("v{n}"))).collect();
    per_record
        .handle(sqs_batch(&bodies), deadline())
        .await
        .unwrap();
    assert_eq!(billed_since(), units(20.0, 0.0), "new, per record");
    per_record
        .handle(sqs_batch(&bodies), deadline())
        .await
        .unwrap();
    assert_eq!(billed_since(), units(10.0, 0.0), "duplicate, per record");
}
