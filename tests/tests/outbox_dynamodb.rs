//! The transactional outbox against DynamoDB Local and LocalStack with the real SDK clients:
//! a unit of work commits with its completion in one transaction or not at all, and the
//! relay publishes what was committed under the staged ids.

#[path = "outbox_dynamodb/limits.rs"]
mod limits;
#[path = "outbox_dynamodb/staging.rs"]
mod staging;

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put, Update};
use eventkit::batch::{Deadline, ErrorClass, RecordError};
use eventkit::events::{EventEnvelope, EventRecord, Source, VersionedEvent};
use eventkit::handler::{Handler, Invocation, RecordHandler, RecordHandlerExt};
use eventkit::idempotency::{
    DynamoDbStore, IdempotencyConfig, IdempotencyRecord, IdempotencyStore, Status, StoreError,
};
use eventkit::outbox::{
    Destination, Relay, Staged, TransactionalLayer, TransactionalStore, UnitOfWork,
};
use eventkit::runtime::EventFunction;
use eventkit_tests::{LocalCloud, Queue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deposited {
    account: String,
    cents: u64,
}

impl VersionedEvent for Deposited {
    const EVENT_TYPE: &'static str = "Deposited";
    const CURRENT_VERSION: u32 = 1;
}

type Item = std::collections::HashMap<String, AttributeValue>;

struct Bank {
    cloud: LocalCloud,
    accounts: String,
    idempotency: String,
    outbox: String,
    queue: Queue,
}

impl Bank {
    async fn create() -> Self {
        let cloud = LocalCloud::connect().await;
        let accounts = cloud.create_table("accounts", "account").await;
        let idempotency = cloud.create_idempotency_table("idempotency").await;
        let outbox = cloud
            .create_table_with_ttl("outbox", "id", "expiration")
            .await;
        let queue = cloud.create_queue("credited", &[]).await;
        Self {
            accounts,
            idempotency,
            outbox,
            queue,
            cloud,
        }
    }

    fn store(&self) -> DynamoDbStore {
        DynamoDbStore::new(self.cloud.dynamodb.clone(), &self.idempotency).with_outbox(&self.outbox)
    }

    /// Credits the account (an ADD, not idempotent by itself) and emits Credited to the queue,
    /// both staged; `guard` adds a condition that fails when the account is frozen.
    fn handler(&self) -> impl RecordHandler<Output = u64> + '_ {
        Handler::with_state(self, credit).layer(TransactionalLayer::new(
            self.store(),
            IdempotencyConfig::new("bank"),
        ))
    }

    async fn balance(&self, account: &str) -> Option<u64> {
        let item = self
            .cloud
            .dynamodb
            .get_item()
            .table_name(&self.accounts)
            .key("account", AttributeValue::S(account.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item?;
        item.get("balance")?.as_n().ok()?.parse().ok()
    }

    /// The relay (publishing to SQS) handed `stream_event`, as Lambda would: its response.
    async fn relay(&self, stream_event: Value) -> Value {
        let relay = EventFunction::new(
            Relay::new(self.cloud.dynamodb.clone(), &self.outbox).with_sqs(self.cloud.sqs.clone()),
        );
        relay
            .handle(stream_event, Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap()
    }

    async fn outbox_items(&self) -> Vec<Item> {
        self.cloud
            .dynamodb
            .scan()
            .table_name(&self.outbox)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

async fn credit(
    bank: &&Bank,
    deposit: EventEnvelope<Deposited>,
) -> Result<Staged<u64>, RecordError> {
    let mut work = UnitOfWork::new();
    work.update(
        Update::builder()
            .table_name(&bank.accounts)
            .key("account", AttributeValue::S(deposit.data.account.clone()))
            .update_expression("ADD balance :cents")
            .condition_expression("attribute_not_exists(frozen)")
            .expression_attribute_values(
                ":cents",
                AttributeValue::N(deposit.data.cents.to_string()),
            )
            .build()
            .map_err(RecordError::permanent)?,
    )?;
    let credited = EventEnvelope::caused_by(
        &deposit,
        "bank",
        Deposited {
            account: deposit.data.account.clone(),
            cents: deposit.data.cents,
        },
    );
    work.emit_envelope(Destination::sqs(&bank.queue.url), &credited)?;
    Ok(work.with_output(deposit.data.cents))
}

fn deposit(message_id: &str, event_id: &str, account: &str) -> EventRecord {
    EventRecord::new(
        message_id,
        Source::Sqs,
        deposited(event_id, account).to_string(),
    )
}

/// The envelope of a 250-cent deposit to `account`.
fn deposited(event_id: &str, account: &str) -> Value {
    json!({
        "eventId": event_id, "eventType": "Deposited", "eventVersion": 1,
        "source": "tests", "time": "2026-11-30T00:00:00Z",
        "correlationId": event_id, "causationId": event_id,
        "data": {"account": account, "cents": 250}
    })
}

fn invocation() -> Invocation {
    Invocation::new(Deadline::after(Duration::from_secs(30)))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn writes_events_and_completion_commit_together_and_a_duplicate_commits_nothing() {
    let bank = Bank::create().await;
    let handler = bank.handler();
    let (account, event_id) = (unique("acct"), unique("e"));

    let first = handler
        .handle(&deposit("m-1", &event_id, &account), &invocation())
        .await
        .unwrap();
    let second = handler
        .handle(&deposit("m-2", &event_id, &account), &invocation())
        .await
        .unwrap();

    assert_eq!((first.output, first.replayed), (250, false));
    assert_eq!((second.output, second.replayed), (250, true));
    assert_eq!(bank.balance(&account).await, Some(250), "the ADD ran once");
    let outbox = bank.outbox_items().await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let expected_id = eventkit::events::derived_event_id(&event_id, "Deposited", "bank", None);
    assert_eq!(outbox[0]["eventId"].as_s().unwrap(), &expected_id);
    assert_eq!(
        outbox[0]["destination"].as_s().unwrap(),
        &format!("sqs:{}", bank.queue.url)
    );
    assert!(!outbox[0].contains_key("publishedAt"));
}

#[tokio::test]
async fn a_failed_staged_condition_commits_nothing_and_frees_the_key_for_the_retry() {
    let bank = Bank::create().await;
    let handler = bank.handler();
    let (account, event_id) = (unique("acct"), unique("e"));
    bank.cloud
        .dynamodb
        .put_item()
        .table_name(&bank.accounts)
        .item("account", AttributeValue::S(account.clone()))
        .item("frozen", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();

    let error = handler
        .handle(&deposit("m-1", &event_id, &account), &invocation())
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(error.to_string().contains("not committed"), "{error}");
    assert_eq!(bank.balance(&account).await, None, "no balance was added");
    assert!(bank.outbox_items().await.is_empty(), "no event was staged");
    let idempotency = bank
        .cloud
        .dynamodb
        .scan()
        .table_name(&bank.idempotency)
        .send()
        .await
        .unwrap();
    assert_eq!(idempotency.count(), 0, "the claim was released");

    // Unfrozen, the retry runs the handler and commits.
    bank.cloud
        .dynamodb
        .delete_item()
        .table_name(&bank.accounts)
        .key("account", AttributeValue::S(account.clone()))
        .send()
        .await
        .unwrap();
    let retried = handler
        .handle(&deposit("m-1", &event_id, &account), &invocation())
        .await
        .unwrap();
    assert_eq!((retried.output, retried.replayed), (250, false));
    assert_eq!(bank.balance(&account).await, Some(250));
    assert_eq!(bank.outbox_items().await.len(), 1);
}

#[tokio::test]
async fn an_owner_whose_claim_was_taken_over_commits_nothing() {
    let bank = Bank::create().await;
    let store = bank.store();
    let key = unique("bank#k");
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    let claim = |owner: &str, now_ms: u64| IdempotencyRecord {
        key: key.clone(),
        status: Status::InProgress,
        expiration: now_ms / 1000 + 3600,
        in_progress_expiry_ms: Some(now_ms + 1_000),
        result: None,
        payload_hash: None,
        owner: Some(owner.into()),
    };
    store.claim(&claim("a", now_ms), now_ms).await.unwrap();
    store
        .claim(&claim("b", now_ms + 2_000), now_ms + 2_000)
        .await
        .unwrap();
    let account = unique("acct");
    let mut work = UnitOfWork::new();
    work.put(
        Put::builder()
            .table_name(&bank.accounts)
            .item("account", AttributeValue::S(account.clone()))
            .item("balance", AttributeValue::N("1".into()))
            .build()
            .unwrap(),
    )
    .unwrap();

    let outcome = store
        .complete_with(&key, "a", "1", now_ms / 1000 + 60, work)
        .await;

    assert!(matches!(outcome, Err(StoreError::Fenced)), "{outcome:?}");
    assert_eq!(bank.balance(&account).await, None);
    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.owner.as_deref()),
        (Status::InProgress, Some("b"))
    );
}

/// DynamoDB JSON (`{"S": ..}`) of an item, as a stream record's `NewImage` carries it.
fn dynamodb_json(item: &Item) -> Value {
    fn value(attribute: &AttributeValue) -> Value {
        match attribute {
            AttributeValue::S(text) => json!({"S": text}),
            AttributeValue::N(number) => json!({"N": number}),
            AttributeValue::Bool(flag) => json!({"BOOL": flag}),
            AttributeValue::M(map) => json!({"M": dynamodb_json(map)}),
            AttributeValue::L(list) => json!({"L": list.iter().map(value).collect::<Vec<_>>()}),
            other => panic!("not used by the outbox: {other:?}"),
        }
    }
    Value::Object(
        item.iter()
            .map(|(name, v)| (name.clone(), value(v)))
            .collect(),
    )
}

/// A stream event of one change `name` (`INSERT`, `MODIFY`) of the outbox item `item`.
fn stream_event(sequence: &str, name: &str, item: &Item) -> Value {
    json!({"Records": [{
        "eventID": sequence, "eventName": name, "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/outbox/stream/1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1764460800,
            "Keys": {"id": item["id"].as_s().map(|id| json!({"S": id})).unwrap()},
            "NewImage": dynamodb_json(item),
            "SequenceNumber": sequence, "SizeBytes": 100, "StreamViewType": "NEW_IMAGE"
        }
    }]})
}

#[tokio::test]
async fn the_relay_publishes_committed_events_under_their_staged_ids_and_marks_them() {
    let bank = Bank::create().await;
    let (account, event_id) = (unique("acct"), unique("e"));
    let committed = bank
        .handler()
        .handle(&deposit("m-1", &event_id, &account), &invocation())
        .await
        .unwrap();
    assert!(!committed.replayed);
    let items = bank.outbox_items().await;
    let response = bank.relay(stream_event("100", "INSERT", &items[0])).await;

    assert_eq!(response, json!({"batchItemFailures": []}));
    let queue = &bank.queue;
    let received = bank.cloud.receive(queue, 1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_str(received[0].body().unwrap()).unwrap();
    assert_eq!(
        body["eventId"],
        eventkit::events::derived_event_id(&event_id, "Deposited", "bank", None)
    );
    let marked = bank.outbox_items().await;
    assert!(marked[0].contains_key("publishedAt"), "{marked:?}");
    assert!(
        marked[0].contains_key("expiration"),
        "published items expire by TTL"
    );

    // The relay's own mark comes back on the stream as a MODIFY: nothing is sent again.
    let response = bank.relay(stream_event("200", "MODIFY", &marked[0])).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert!(bank
        .cloud
        .receive(queue, 1, Duration::from_secs(2))
        .await
        .is_empty());
}

/// A stream event of the `INSERT`s of `items`, sequence numbers `1`, `2`, ... in order.
fn stream_of(items: &[Item]) -> Value {
    let records: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(n, item)| stream_event(&(n + 1).to_string(), "INSERT", item)["Records"][0].clone())
        .collect();
    json!({ "Records": records })
}

fn published(item: &Item) -> bool {
    item.contains_key("publishedAt") && !item.contains_key("unpublished")
}

#[tokio::test]
async fn the_relay_publishes_a_shard_in_batches_and_resumes_at_the_first_failed_event() {
    let bank = Bank::create().await;
    let account = unique("acct");
    for n in 0..24 {
        let _committed = bank
            .handler()
            .handle(
                &deposit(&format!("m-{n}"), &unique("e"), &account),
                &invocation(),
            )
            .await
            .unwrap();
    }
    let mut items = bank.outbox_items().await;
    assert_eq!(items.len(), 24);
    items.sort_by_key(|item| item["id"].as_s().unwrap().clone());
    // The 13th change names a queue that does not exist: SQS refuses it for good.
    let mut refused = items[12].clone();
    refused.insert(
        "destination".into(),
        AttributeValue::S(format!("sqs:{}-missing", bank.queue.url)),
    );
    let mut shard = items[..12].to_vec();
    shard.push(refused);
    shard.extend_from_slice(&items[12..]);

    let response = bank.relay(stream_of(&shard)).await;

    let failed: Vec<String> = (13..=25).map(|n| n.to_string()).collect();
    let expected: Vec<Value> = failed
        .iter()
        .map(|id| json!({"itemIdentifier": id}))
        .collect();
    assert_eq!(
        response,
        json!({ "batchItemFailures": expected }),
        "resumed at the refused one"
    );
    let event_id = |item: &Item| item["eventId"].as_s().unwrap().clone();
    let received = bank
        .cloud
        .receive(&bank.queue, 13, Duration::from_secs(3))
        .await;
    let mut sent: Vec<String> = received
        .iter()
        .map(|message| {
            serde_json::from_str::<Value>(message.body().unwrap()).unwrap()["eventId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    sent.sort();
    let mut before: Vec<String> = items[..12].iter().map(event_id).collect();
    before.sort();
    assert_eq!(
        sent, before,
        "the events before the refused one, and nothing after it"
    );
    let outbox = bank.outbox_items().await;
    let marked = |ids: &[String]| {
        ids.iter().all(|id| {
            outbox
                .iter()
                .any(|item| event_id(item) == *id && published(item))
        })
    };
    assert!(marked(&before), "published events are marked");
    let after: Vec<String> = items[12..].iter().map(event_id).collect();
    assert!(
        outbox
            .iter()
            .filter(|item| after.contains(&event_id(item)))
            .all(|item| !published(item)),
        "nothing after the refused event was marked"
    );

    // Lambda resumes the shard at the refused change; without it (dead-lettered), the rest.
    let response = bank.relay(stream_of(&items[12..])).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let received = bank
        .cloud
        .receive(&bank.queue, 12, Duration::from_secs(3))
        .await;
    assert_eq!(received.len(), 12);
    let outbox = bank.outbox_items().await;
    assert!(outbox.iter().all(published), "every event marked");
}

#[tokio::test]
async fn an_outbox_item_naming_an_unknown_destination_fails_its_record_and_the_batch_stops_there() {
    let bank = Bank::create().await;
    let relay = EventFunction::new(Relay::new(bank.cloud.dynamodb.clone(), &bank.outbox));
    let record = |sequence: &str, destination: &str| {
        json!({
            "eventID": sequence, "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1764460800,
                "Keys": {"id": {"S": sequence}},
                "NewImage": {
                    "id": {"S": sequence}, "eventId": {"S": sequence}, "eventType": {"S": "T"},
                    "source": {"S": "s"}, "time": {"S": "2026-11-30T00:00:00Z"}, "body": {"S": "{}"},
                    "destination": {"S": destination}
                },
                "SequenceNumber": sequence, "SizeBytes": 100, "StreamViewType": "NEW_IMAGE"
            }
        })
    };
    let event = json!({"Records": [record("1", "kinesis:stream"), record("2", "sqs:http://x")]});

    let response = relay
        .handle(event, Deadline::after(Duration::from_secs(30)))
        .await
        .unwrap();

    // The first fails (unknown kind); the second is not run, so the shard keeps its order.
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "2"}]})
    );
}

/// An SQS event holding `deposits` (event id, account), message ids `m0`, `m1`, ...
fn sqs_deposits(deposits: &[(String, String)]) -> Value {
    let records: Vec<Value> = deposits
        .iter()
        .enumerate()
        .map(|(n, (event_id, account))| {
            json!({
                "messageId": format!("m{n}"), "receiptHandle": "r",
                "body": deposited(event_id, account).to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:deposits",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// What BENCHMARKS.md prices the transactional path at, checked on the requests themselves:
/// the claims of a batch in one request, the records' completions with their staged writes
/// and events in one shared transaction (three actions a record, two write units each); a
/// duplicate batch a refused claim each (billed) and one read of the stored results,
/// committing nothing.
#[tokio::test]
async fn a_transactional_batch_claims_in_one_request_and_commits_in_one_shared_transaction() {
    use xtask::proxy::{Capacity, Counts, Proxy};

    let bank = Bank::create().await;
    let proxy = Proxy::start(eventkit_tests::dynamodb_address(), Duration::ZERO)
        .await
        .unwrap();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&bank.cloud.config)
            .endpoint_url(proxy.endpoint())
            .build(),
    );
    let store = DynamoDbStore::new(client, &bank.idempotency).with_outbox(&bank.outbox);
    let function = EventFunction::new(Handler::with_state(&bank, credit).layer(
        TransactionalLayer::new(store, IdempotencyConfig::new("bank")),
    ));
    let deposits: Vec<(String, String)> = (0..10).map(|_| (unique("e"), unique("acct"))).collect();
    let event = sqs_deposits(&deposits);
    let no_failures = json!({"batchItemFailures": []});
    let deadline = || Deadline::after(Duration::from_secs(30));

    let response = function.handle(event.clone(), deadline()).await.unwrap();
    assert_eq!(response, no_failures);
    assert_eq!(
        proxy.counts(),
        Counts::from([
            ("BatchExecuteStatement".into(), 1),
            ("TransactWriteItems".into(), 1),
        ])
    );
    assert_eq!(
        proxy.capacity(),
        Capacity {
            write_units: 10.0 + 10.0 * 3.0 * 2.0,
            read_units: 0.0
        }
    );
    for (_, account) in &deposits {
        assert_eq!(bank.balance(account).await, Some(250), "{account}");
    }
    assert_eq!(bank.outbox_items().await.len(), 10);

    let response = function.handle(event, deadline()).await.unwrap();
    assert_eq!(response, no_failures);
    assert_eq!(
        proxy.counts(),
        Counts::from([
            ("BatchExecuteStatement".into(), 2),
            ("BatchGetItem".into(), 1),
            ("TransactWriteItems".into(), 1),
        ]),
        "DynamoDB Local returns no item with a refused INSERT: one read brings the results"
    );
    assert_eq!(
        proxy.capacity(),
        Capacity {
            write_units: 20.0 + 10.0 * 3.0 * 2.0,
            read_units: 10.0
        }
    );
    for (_, account) in &deposits {
        assert_eq!(
            bank.balance(account).await,
            Some(250),
            "credited once: {account}"
        );
    }
    assert_eq!(
        bank.outbox_items().await.len(),
        10,
        "nothing committed again"
    );
}

/// A shared transaction keeps each record all or nothing: a record whose staged condition
/// fails is answered alone (its claim released, nothing of it written) and the others are
/// sent again without it; two records writing one item never share a transaction
/// (DynamoDB refuses two actions on one item), so both commit.
#[tokio::test]
async fn in_a_shared_transaction_a_failed_record_fails_alone_and_one_item_is_never_written_twice() {
    use xtask::proxy::{Counts, Proxy};

    let bank = Bank::create().await;
    let proxy = Proxy::start(eventkit_tests::dynamodb_address(), Duration::ZERO)
        .await
        .unwrap();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&bank.cloud.config)
            .endpoint_url(proxy.endpoint())
            .build(),
    );
    let store = DynamoDbStore::new(client, &bank.idempotency).with_outbox(&bank.outbox);
    let function = EventFunction::new(Handler::with_state(&bank, credit).layer(
        TransactionalLayer::new(store, IdempotencyConfig::new("bank")),
    ));
    let (frozen, shared, alone) = (unique("frozen"), unique("shared"), unique("alone"));
    bank.cloud
        .dynamodb
        .put_item()
        .table_name(&bank.accounts)
        .item("account", AttributeValue::S(frozen.clone()))
        .item("frozen", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();
    let deposits: Vec<(String, String)> = [&frozen, &shared, &alone, &shared]
        .into_iter()
        .map(|account| (unique("e"), account.clone()))
        .collect();

    let response = function
        .handle(
            sqs_deposits(&deposits),
            Deadline::after(Duration::from_secs(30)),
        )
        .await
        .unwrap();

    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m0"}]})
    );
    assert_eq!(
        bank.balance(&frozen).await,
        None,
        "nothing of the failed record"
    );
    assert_eq!(
        bank.balance(&shared).await,
        Some(500),
        "both credits of one account"
    );
    assert_eq!(bank.balance(&alone).await, Some(250));
    assert_eq!(
        bank.outbox_items().await.len(),
        3,
        "the committed records' events"
    );
    let claims = bank
        .cloud
        .dynamodb
        .scan()
        .table_name(&bank.idempotency)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(claims.count(), 3, "the failed record's claim was released");
    // The first transaction (frozen, shared, alone) is cancelled by the frozen account's
    // condition and sent again without it; the second credit of `shared` has its own.
    assert_eq!(
        proxy.counts(),
        Counts::from([
            ("BatchExecuteStatement".into(), 1),
            ("TransactWriteItems".into(), 3),
            ("DeleteItem".into(), 1),
        ]),
        "claims, the transactions, the failed record's release"
    );
}

/// Puts the account's "last deposit" item: a put names no key of its own (the table's key
/// attributes are inside the item), so two of them on one item are found only by DynamoDB.
async fn note_last(
    bank: &&Bank,
    deposit: EventEnvelope<Deposited>,
) -> Result<Staged<u64>, RecordError> {
    let mut work = UnitOfWork::new();
    work.put(
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(&bank.accounts)
            .item(
                "account",
                AttributeValue::S(format!("{}-last", deposit.data.account)),
            )
            .item("eventId", AttributeValue::S(deposit.event_id.clone()))
            .build()
            .map_err(RecordError::permanent)?,
    )?;
    Ok(work.with_output(deposit.data.cents))
}

#[tokio::test]
async fn records_that_put_one_item_share_no_transaction_once_dynamodb_says_so() {
    use xtask::proxy::{Counts, Proxy};

    let bank = Bank::create().await;
    let proxy = Proxy::start(eventkit_tests::dynamodb_address(), Duration::ZERO)
        .await
        .unwrap();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&bank.cloud.config)
            .endpoint_url(proxy.endpoint())
            .build(),
    );
    let store = DynamoDbStore::new(client, &bank.idempotency).with_outbox(&bank.outbox);
    let function = EventFunction::new(Handler::with_state(&bank, note_last).layer(
        TransactionalLayer::new(store, IdempotencyConfig::new("bank")),
    ));
    let account = unique("acct");
    let deposits: Vec<(String, String)> = (0..3).map(|_| (unique("e"), account.clone())).collect();

    let response = function
        .handle(
            sqs_deposits(&deposits),
            Deadline::after(Duration::from_secs(30)),
        )
        .await
        .unwrap();

    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(
        proxy.counts(),
        Counts::from([
            ("BatchExecuteStatement".into(), 1),
            ("TransactWriteItems".into(), 4),
        ]),
        "the shared transaction refused, then one per record"
    );
    let claims = bank
        .cloud
        .dynamodb
        .scan()
        .table_name(&bank.idempotency)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(
        claims.items().iter().all(|item| item
            .get("status")
            .and_then(|s| s.as_s().ok())
            .map(String::as_str)
            == Some("COMPLETED")),
        "every record completed: {claims:?}"
    );
}

/// Emits the credit's event and stages nothing else: a handler that only emits.
async fn announce(
    bank: &&Bank,
    deposit: EventEnvelope<Deposited>,
) -> Result<Staged<u64>, RecordError> {
    let mut work = UnitOfWork::new();
    let credited = EventEnvelope::caused_by(
        &deposit,
        "bank",
        Deposited {
            account: deposit.data.account.clone(),
            cents: deposit.data.cents,
        },
    );
    work.emit_envelope(Destination::sqs(&bank.queue.url), &credited)?;
    Ok(work.with_output(deposit.data.cents))
}

/// Events on completions (`with_outbox_on_completions`): the idempotency table is the outbox.
mod on_completions {
    use super::*;
    use xtask::proxy::{Capacity, Counts, Proxy};

    impl Bank {
        /// The idempotency records, by key.
        async fn records(&self) -> Vec<Item> {
            self.cloud
                .dynamodb
                .scan()
                .table_name(&self.idempotency)
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .items
                .unwrap_or_default()
        }

        /// A function committing with `handler` through a counting proxy.
        async fn counted<F>(
            &self,
            handler: F,
        ) -> (Proxy, EventFunction<impl RecordHandler<Output = u64> + '_>)
        where
            F: AsyncFn(&&Bank, EventEnvelope<Deposited>) -> Result<Staged<u64>, RecordError>
                + 'static,
        {
            let proxy = Proxy::start(eventkit_tests::dynamodb_address(), Duration::ZERO)
                .await
                .unwrap();
            let client = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&self.cloud.config)
                    .endpoint_url(proxy.endpoint())
                    .build(),
            );
            let store = DynamoDbStore::new(client, &self.idempotency).with_outbox_on_completions();
            let function = EventFunction::new(Handler::with_state(self, handler).layer(
                TransactionalLayer::new(store, IdempotencyConfig::new("bank")),
            ));
            (proxy, function)
        }
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(30))
    }

    #[tokio::test]
    async fn an_emitting_batch_costs_what_plain_idempotency_costs_and_the_relay_publishes_from_the_records(
    ) {
        let bank = Bank::create().await;
        let (proxy, function) = bank.counted(announce).await;
        let deposits: Vec<(String, String)> =
            (0..10).map(|_| (unique("e"), unique("acct"))).collect();
        let event = sqs_deposits(&deposits);

        let response = function.handle(event.clone(), deadline()).await.unwrap();

        assert_eq!(response, json!({"batchItemFailures": []}));
        assert_eq!(
            proxy.counts(),
            Counts::from([("BatchExecuteStatement".into(), 2)]),
            "the claims, then the completions carrying the events: no transaction"
        );
        assert_eq!(
            proxy.capacity(),
            Capacity {
                write_units: 20.0,
                read_units: 0.0
            },
            "a claim and a completion per record, each under a kilobyte"
        );
        assert!(
            bank.outbox_items().await.is_empty(),
            "no outbox item of its own"
        );
        let records = bank.records().await;
        assert_eq!(records.len(), 10);
        for record in &records {
            assert!(record.contains_key("unpublished"), "{record:?}");
            assert_eq!(record["outbox"].as_l().unwrap().len(), 1, "{record:?}");
        }

        // The relay reads the records from the idempotency table's stream.
        let relay = EventFunction::new(
            Relay::new(bank.cloud.dynamodb.clone(), &bank.idempotency)
                .with_sqs(bank.cloud.sqs.clone()),
        );
        let response = relay.handle(stream_of(&records), deadline()).await.unwrap();
        assert_eq!(response, json!({"batchItemFailures": []}));
        let received = bank
            .cloud
            .receive(&bank.queue, 10, Duration::from_secs(5))
            .await;
        let mut sent: Vec<String> = received
            .iter()
            .map(|m| {
                serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["eventId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        sent.sort();
        let mut derived: Vec<String> = deposits
            .iter()
            .map(|(event_id, _)| {
                eventkit::events::derived_event_id(event_id, "Deposited", "bank", None)
            })
            .collect();
        derived.sort();
        assert_eq!(sent, derived, "each event once, under its derived id");
        for record in bank.records().await {
            assert!(
                record.contains_key("publishedAt") && !record.contains_key("unpublished"),
                "{record:?}"
            );
            assert_eq!(
                record["status"].as_s().unwrap(),
                "COMPLETED",
                "still the idempotency record"
            );
        }

        // Duplicates replay; the marked records come back on the stream and are skipped.
        let response = function.handle(event, deadline()).await.unwrap();
        assert_eq!(response, json!({"batchItemFailures": []}));
        let response = relay
            .handle(stream_of(&bank.records().await), deadline())
            .await
            .unwrap();
        assert_eq!(response, json!({"batchItemFailures": []}));
        assert!(bank
            .cloud
            .receive(&bank.queue, 1, Duration::from_secs(2))
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn a_write_and_an_event_cost_a_claim_and_a_share_of_a_transaction_of_two_actions() {
        let bank = Bank::create().await;
        let (proxy, function) = bank.counted(credit).await;
        let deposits: Vec<(String, String)> =
            (0..10).map(|_| (unique("e"), unique("acct"))).collect();

        let response = function
            .handle(sqs_deposits(&deposits), deadline())
            .await
            .unwrap();

        assert_eq!(response, json!({"batchItemFailures": []}));
        assert_eq!(
            proxy.counts(),
            Counts::from([
                ("BatchExecuteStatement".into(), 1),
                ("TransactWriteItems".into(), 1)
            ])
        );
        assert_eq!(
            proxy.capacity(),
            Capacity {
                write_units: 10.0 + 10.0 * 2.0 * 2.0,
                read_units: 0.0
            },
            "the claim, then the completion (with its event) and the credit, twice each"
        );
        for (_, account) in &deposits {
            assert_eq!(bank.balance(account).await, Some(250));
        }
        assert!(bank
            .records()
            .await
            .iter()
            .all(|record| record.contains_key("outbox")));
    }
}
