//! The idempotency semantics of issue 4, each scenario written once, generic over the store,
//! and run against both stores: `in_memory::*` on [`InMemoryStore`], `dynamodb::*` on
//! [`DynamoDbStore`] in DynamoDB Local (a fresh table with TTL on `expiration` per test).
//!
//! Time is a [`ManualClock`] moved forward explicitly. The store conditions compare against
//! the layer's clock, so expiry is tested without sleeping. The clock starts an hour ahead of
//! the real time: DynamoDB Local's TTL sweeper runs on the real clock and deletes expired
//! items within seconds, and this way it never removes a record a scenario still needs
//! (even one with a 10-second TTL on a slow machine), so the conditions themselves must
//! decide what has expired.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventkit::idempotency::{
    ClaimOutcome, Clock, DynamoDbStore, Idempotency, IdempotencyConfig, IdempotencyError,
    IdempotencyRecord, IdempotencyStore, InMemoryStore, ManualClock, MissingKeyPolicy, Status,
    StoreError, SystemClock,
};
use eventkit_tests::LocalCloud;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Barrier};
use tokio::task::JoinHandle;

/// Instantiates each scenario for both stores.
macro_rules! for_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(super::InMemoryStore::new()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(super::dynamodb_store().await).await;
                }
            )*
        }
    };
}

for_both_stores!(
    first_execution_stores_completed_with_the_result,
    a_duplicate_replays_the_stored_result_without_running_the_handler,
    a_key_in_progress_gives_the_typed_error,
    an_expired_record_runs_again,
    a_live_claim_outlives_a_record_ttl_shorter_than_its_window,
    an_expired_in_progress_window_is_taken_over,
    takeover_fencing_refuses_the_old_owners_completion_and_delete,
    a_handler_error_removes_the_claim_and_a_retry_succeeds,
    payload_tampering_is_detected_from_the_store_and_from_the_cache,
    keys_survive_json_key_order_and_the_handler_mutating_its_input,
    a_missing_key_fails_or_runs_without_idempotency,
    falsy_results_replay_exactly,
    fifty_concurrent_deliveries_of_one_key_run_the_handler_once,
    a_thousand_keys_delivered_three_times_run_a_thousand_times,
    store_failures_surface_as_typed_errors,
);

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
struct Boom;

async fn dynamodb_store() -> DynamoDbStore {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    DynamoDbStore::new(cloud.dynamodb.clone(), table)
}

fn layer<S: IdempotencyStore>(
    store: S,
    config: IdempotencyConfig,
) -> (Arc<Idempotency<S>>, ManualClock) {
    let clock = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let layer = Idempotency::new(store, config).with_clock(clock.clone());
    (Arc::new(layer), clock)
}

fn orders() -> IdempotencyConfig {
    IdempotencyConfig::new("orders")
}

fn event(id: &str) -> Value {
    json!({
        "eventId": id, "eventType": "OrderPlaced", "eventVersion": 1,
        "data": {"orderId": "o-7", "amount": 10}
    })
}

/// A handler that counts its runs and returns `value`.
fn counted<T>(runs: &AtomicUsize, value: T) -> impl Future<Output = Result<T, Boom>> {
    runs.fetch_add(1, Ordering::SeqCst);
    std::future::ready(Ok(value))
}

async fn stored<S: IdempotencyStore>(
    layer: &Idempotency<S>,
    payload: &Value,
) -> Option<IdempotencyRecord> {
    let key = layer.key_for(payload).expect("the payload has a key");
    layer.store().get(&key).await.expect("reading the record")
}

/// A delivery running in its own task, whose handler says when it has started and then
/// holds its claim until told to finish.
struct Held<T> {
    started: oneshot::Receiver<()>,
    finish: oneshot::Sender<()>,
    task: JoinHandle<Result<T, IdempotencyError<Boom>>>,
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Held<T> {
    fn spawn<S: IdempotencyStore + 'static>(
        layer: &Arc<Idempotency<S>>,
        payload: &Value,
        record_id: &str,
        remaining: Duration,
        outcome: Result<T, Boom>,
    ) -> Self {
        let (started_tx, started) = oneshot::channel();
        let (finish, finish_rx) = oneshot::channel::<()>();
        let (layer, payload, record_id) = (layer.clone(), payload.clone(), record_id.to_string());
        let task = tokio::spawn(async move {
            layer
                .run(&payload, &record_id, remaining, || async move {
                    let _ = started_tx.send(());
                    let _ = finish_rx.await;
                    outcome
                })
                .await
        });
        Self {
            started,
            finish,
            task,
        }
    }

    /// Waits until the handler runs, which means the claim is written.
    async fn wait_started(&mut self) {
        (&mut self.started)
            .await
            .expect("the delivery claimed the key and started its handler");
    }

    /// Lets the handler return, and gives the delivery's outcome.
    async fn finish(self) -> Result<T, IdempotencyError<Boom>> {
        let _ = self.finish.send(());
        self.task.await.expect("the delivery task")
    }

    /// Stops the delivery mid-handler, as Lambda does at the deadline: its claim stays.
    async fn crash(self) {
        self.task.abort();
        assert!(self.task.await.is_err_and(|error| error.is_cancelled()));
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Claim = 0,
    Complete = 1,
    Release = 2,
    Get = 3,
}

/// A store wrapper that counts each operation, and fails the chosen ones the way a
/// throttled DynamoDB does (after the SDK's retries).
struct Probe<S> {
    inner: S,
    calls: [AtomicUsize; 4],
    throttled: [AtomicBool; 4],
}

impl<S> Probe<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Default::default(),
            throttled: Default::default(),
        }
    }

    fn calls(&self, op: Op) -> usize {
        self.calls[op as usize].load(Ordering::SeqCst)
    }

    fn total_calls(&self) -> usize {
        self.calls.iter().map(|n| n.load(Ordering::SeqCst)).sum()
    }

    fn throttle(&self, op: Op, throttled: bool) {
        self.throttled[op as usize].store(throttled, Ordering::SeqCst);
    }

    fn enter(&self, op: Op) -> Result<(), StoreError> {
        self.calls[op as usize].fetch_add(1, Ordering::SeqCst);
        if self.throttled[op as usize].load(Ordering::SeqCst) {
            return Err(StoreError::Throttled {
                message: format!("{op:?}: rate exceeded"),
            });
        }
        Ok(())
    }
}

impl<S: IdempotencyStore> IdempotencyStore for Probe<S> {
    async fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.enter(Op::Claim)?;
        self.inner.claim(record, now_ms).await
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> Result<(), StoreError> {
        self.enter(Op::Complete)?;
        self.inner.complete(key, owner, result, expiration).await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.enter(Op::Release)?;
        self.inner.release(key, owner).await
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.enter(Op::Get)?;
        self.inner.get(key).await
    }
}

async fn first_execution_stores_completed_with_the_result<S: IdempotencyStore + 'static>(store: S) {
    let (layer, clock) = layer(store, orders().validate_payload("data"));
    let t0 = clock.now_ms();
    let charged = HashMap::from([("charged".to_string(), 42_u32)]);
    let out = layer
        .run(&event("e1"), "m1", WINDOW, || async {
            Ok::<_, Boom>(charged.clone())
        })
        .await
        .unwrap();
    assert_eq!(out, charged);

    let record = stored(&layer, &event("e1")).await.expect("a record");
    assert_eq!(Some(record.key.clone()), layer.key_for(&event("e1")));
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.result.as_deref(), Some(r#"{"charged":42}"#));
    assert_eq!(
        record.expiration,
        t0 / 1000 + 3600,
        "epoch seconds, now + TTL"
    );
    assert_eq!(record.in_progress_expiry_ms, Some(t0 + 60_000));
    assert_eq!(record.payload_hash, layer.payload_hash(&event("e1")));
    assert!(record.payload_hash.is_some_and(|hash| hash.len() == 64));
    assert!(record.owner.is_some_and(|owner| !owner.is_empty()));
}

async fn a_duplicate_replays_the_stored_result_without_running_the_handler<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, _) = layer(Probe::new(store), orders());
    let runs = AtomicUsize::new(0);
    let first: String = layer
        .run(&event("e1"), "m1", WINDOW, || {
            counted(&runs, "first".to_string())
        })
        .await
        .unwrap();
    assert_eq!(first, "first");
    for attempt in 2..5 {
        let again: String = layer
            .run(&event("e1"), &format!("m{attempt}"), WINDOW, || {
                counted(&runs, format!("run {attempt}"))
            })
            .await
            .unwrap();
        assert_eq!(again, "first");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Each duplicate is one claim that finds the completed record, and nothing else.
    let probe = layer.store();
    assert_eq!(
        (
            probe.calls(Op::Claim),
            probe.calls(Op::Complete),
            probe.calls(Op::Release)
        ),
        (4, 1, 0)
    );
}

async fn a_key_in_progress_gives_the_typed_error<S: IdempotencyStore + 'static>(store: S) {
    let (layer, clock) = layer(store, orders());
    let t0 = clock.now_ms();
    let mut first = Held::spawn(&layer, &event("e1"), "m1", WINDOW, Ok(1_u32));
    first.wait_started().await;

    let runs = AtomicUsize::new(0);
    let error = layer
        .run(&event("e1"), "m2", WINDOW, || counted(&runs, 2_u32))
        .await
        .unwrap_err();
    assert!(error.is_transient() && !error.handler_ran(), "{error:?}");
    let expected_key = layer.key_for(&event("e1")).unwrap();
    assert!(
        matches!(
            &error,
            IdempotencyError::AlreadyInProgress { key, record_id, in_progress_expiry_ms: Some(expiry) }
                if *key == expected_key && record_id == "m2" && *expiry == t0 + 60_000
        ),
        "{error:?}"
    );

    assert_eq!(first.finish().await.unwrap(), 1);
    let replayed = layer
        .run(&event("e1"), "m2", WINDOW, || counted(&runs, 2_u32))
        .await
        .unwrap();
    assert_eq!((replayed, runs.load(Ordering::SeqCst)), (1, 0));
}

async fn an_expired_record_runs_again<S: IdempotencyStore + 'static>(store: S) {
    let window = Duration::from_secs(5);
    let (layer, clock) = layer(store, orders().with_record_ttl(Duration::from_secs(10)));
    let runs = AtomicUsize::new(0);
    layer
        .run(&event("e1"), "m1", window, || counted(&runs, 1_u32))
        .await
        .unwrap();

    clock.advance(Duration::from_secs(10));
    let during_last_second = layer
        .run(&event("e1"), "m2", window, || counted(&runs, 2_u32))
        .await
        .unwrap();
    assert_eq!(
        during_last_second, 1,
        "live until its expiration second ends"
    );

    clock.advance(Duration::from_secs(1));
    let after = layer
        .run(&event("e1"), "m3", window, || counted(&runs, 3_u32))
        .await
        .unwrap();
    assert_eq!((after, runs.load(Ordering::SeqCst)), (3, 2));
    let record = stored(&layer, &event("e1")).await.unwrap();
    assert_eq!(
        (record.status, record.result.as_deref()),
        (Status::Completed, Some("3"))
    );
}

async fn a_live_claim_outlives_a_record_ttl_shorter_than_its_window<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, clock) = layer(store, orders().with_record_ttl(Duration::from_secs(10)));
    let t0 = clock.now_ms();
    let mut first = Held::spawn(&layer, &event("e1"), "m1", WINDOW, Ok(1_u32));
    first.wait_started().await;
    let claim = stored(&layer, &event("e1")).await.unwrap();
    assert!(
        claim.expiration * 1000 >= t0 + 60_000,
        "the claim must not expire (or be deleted by TTL) before its window ends: {claim:?}"
    );

    // Past the record TTL, still inside the claimant's window: the claim holds.
    clock.advance(Duration::from_secs(30));
    let runs = AtomicUsize::new(0);
    let duplicate = layer
        .run(&event("e1"), "m2", WINDOW, || counted(&runs, 2_u32))
        .await;
    assert!(
        matches!(duplicate, Err(IdempotencyError::AlreadyInProgress { .. })),
        "{duplicate:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(first.finish().await.unwrap(), 1);
}

async fn an_expired_in_progress_window_is_taken_over<S: IdempotencyStore + 'static>(store: S) {
    let (layer, clock) = layer(store, orders());
    let t0 = clock.now_ms();
    let runs = AtomicUsize::new(0);
    let mut crashed = Held::spawn(
        &layer,
        &event("e1"),
        "m1",
        Duration::from_millis(500),
        Ok(1_u32),
    );
    crashed.wait_started().await;
    crashed.crash().await;
    let claim = stored(&layer, &event("e1")).await.unwrap();
    assert_eq!(
        (claim.status, claim.in_progress_expiry_ms),
        (Status::InProgress, Some(t0 + 500))
    );

    // At the deadline itself the claimant may still be finishing.
    clock.advance(Duration::from_millis(500));
    let at_deadline = layer
        .run(&event("e1"), "m2", WINDOW, || counted(&runs, 2_u32))
        .await;
    assert!(
        matches!(at_deadline, Err(IdempotencyError::AlreadyInProgress { .. })),
        "{at_deadline:?}"
    );
    clock.advance(Duration::from_millis(1));
    let taken_over = layer
        .run(&event("e1"), "m3", WINDOW, || counted(&runs, 3_u32))
        .await
        .unwrap();
    assert_eq!((taken_over, runs.load(Ordering::SeqCst)), (3, 1));
    let record = stored(&layer, &event("e1")).await.unwrap();
    assert_eq!(
        (record.status, record.result.as_deref()),
        (Status::Completed, Some("3"))
    );
    assert_ne!(record.owner, claim.owner, "the new claim has its own token");

    // Zero remaining is a deadline that has arrived, not "unknown".
    let t1 = clock.now_ms();
    let mut zero = Held::spawn(&layer, &event("e2"), "m4", Duration::ZERO, Ok(4_u32));
    zero.wait_started().await;
    zero.crash().await;
    let claim = stored(&layer, &event("e2")).await.unwrap();
    assert_eq!(claim.in_progress_expiry_ms, Some(t1));
    assert!(matches!(
        layer
            .run(&event("e2"), "m5", WINDOW, || counted(&runs, 5_u32))
            .await,
        Err(IdempotencyError::AlreadyInProgress { .. })
    ));
    clock.advance(Duration::from_millis(1));
    let taken_over = layer
        .run(&event("e2"), "m6", WINDOW, || counted(&runs, 6_u32))
        .await
        .unwrap();
    assert_eq!((taken_over, runs.load(Ordering::SeqCst)), (6, 2));
}

async fn takeover_fencing_refuses_the_old_owners_completion_and_delete<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let store = Arc::new(store);
    for (old_fails, new_finishes_first) in
        [(false, false), (false, true), (true, false), (true, true)]
    {
        let (layer, clock) = layer(store.clone(), orders());
        let payload = event(&format!("takeover-{old_fails}-{new_finishes_first}"));
        let key = layer.key_for(&payload).unwrap();
        let old_outcome = if old_fails {
            Err(Boom)
        } else {
            Ok("old".to_string())
        };

        let mut old = Held::spawn(
            &layer,
            &payload,
            "old",
            Duration::from_millis(100),
            old_outcome,
        );
        old.wait_started().await;
        let old_claim = store.get(&key).await.unwrap().unwrap();
        clock.advance(Duration::from_secs(1));
        let mut new = Held::spawn(&layer, &payload, "new", WINDOW, Ok("new".to_string()));
        new.wait_started().await;
        let new_claim = store.get(&key).await.unwrap().unwrap();
        assert_eq!(new_claim.status, Status::InProgress);
        assert_ne!(new_claim.owner, old_claim.owner);

        let mut new = Some(new);
        let new_owners_record = if new_finishes_first {
            let new = new.take().expect("the new owner is running");
            assert_eq!(new.finish().await.unwrap(), "new");
            store.get(&key).await.unwrap().unwrap()
        } else {
            new_claim
        };

        let old_error = old.finish().await.unwrap_err();
        assert!(old_error.handler_ran(), "{old_error:?}");
        if old_fails {
            assert!(
                matches!(
                    &old_error,
                    IdempotencyError::ReleaseFenced { record_id, handler_error: Boom, .. }
                        if record_id == "old"
                ),
                "{old_error:?}"
            );
        } else {
            assert!(
                matches!(&old_error, IdempotencyError::CompletionFenced { record_id, .. } if record_id == "old"),
                "{old_error:?}"
            );
        }
        assert_eq!(
            store.get(&key).await.unwrap().as_ref(),
            Some(&new_owners_record),
            "the new owner's record is untouched"
        );

        if let Some(new) = new {
            assert_eq!(new.finish().await.unwrap(), "new");
        }
        let record = store.get(&key).await.unwrap().unwrap();
        assert_eq!(
            (record.status, record.result.as_deref(), &record.owner),
            (
                Status::Completed,
                Some(r#""new""#),
                &new_owners_record.owner
            )
        );
    }
}

async fn a_handler_error_removes_the_claim_and_a_retry_succeeds<S: IdempotencyStore + 'static>(
    store: S,
) {
    let (layer, _) = layer(Probe::new(store), orders());
    let failed = layer
        .run(&event("e1"), "m1", WINDOW, || async { Err::<u32, _>(Boom) })
        .await;
    assert!(
        matches!(&failed, Err(IdempotencyError::Handler(Boom))),
        "{failed:?}"
    );
    assert_eq!(layer.store().calls(Op::Release), 1);
    assert_eq!(stored(&layer, &event("e1")).await, None, "claim removed");

    let runs = AtomicUsize::new(0);
    let retried = layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 5_u32))
        .await
        .unwrap();
    assert_eq!((retried, runs.load(Ordering::SeqCst)), (5, 1));
    let record = stored(&layer, &event("e1")).await.unwrap();
    assert_eq!(
        (record.status, record.result.as_deref()),
        (Status::Completed, Some("5"))
    );
}

async fn payload_tampering_is_detected_from_the_store_and_from_the_cache<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let store = Arc::new(store);
    for capacity in [0, 16] {
        let config = orders()
            .validate_payload("data.amount")
            .with_cache_capacity(capacity);
        let (layer, _) = layer(Probe::new(store.clone()), config);
        let original = event(&format!("tamper-{capacity}"));
        let runs = AtomicUsize::new(0);
        layer
            .run(&original, "m1", WINDOW, || counted(&runs, 1_u32))
            .await
            .unwrap();

        let claims_before = layer.store().calls(Op::Claim);
        let mut tampered = original.clone();
        tampered["data"]["amount"] = json!(1_000_000);
        let outcome = layer
            .run(&tampered, "m2", WINDOW, || counted(&runs, 2_u32))
            .await;
        assert!(
            matches!(&outcome, Err(IdempotencyError::PayloadValidation { record_id, .. }) if record_id == "m2"),
            "capacity {capacity}: {outcome:?}"
        );
        let claims = layer.store().calls(Op::Claim) - claims_before;
        assert_eq!(
            claims,
            usize::from(capacity == 0),
            "with a cache the mismatch is caught without a store request"
        );

        // Outside the validated part a resend may differ.
        let mut resent = original.clone();
        resent["data"]["note"] = json!("resent");
        let replayed = layer
            .run(&resent, "m3", WINDOW, || counted(&runs, 3_u32))
            .await
            .unwrap();
        assert_eq!((replayed, runs.load(Ordering::SeqCst)), (1, 1));
    }
}

async fn keys_survive_json_key_order_and_the_handler_mutating_its_input<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, _) = layer(store, orders().with_key_path("data"));
    let written: Value = serde_json::from_str(
        r#"{"data": {"orderId": "o-7", "lines": [{"sku": "x", "qty": 1}], "customer": {"id": 3, "tier": "gold"}}}"#,
    )
    .unwrap();
    let reordered: Value = serde_json::from_str(
        r#"{"data": {"customer": {"tier": "gold", "id": 3}, "lines": [{"qty": 1, "sku": "x"}], "orderId": "o-7"}}"#,
    )
    .unwrap();
    let key = layer.key_for(&written).unwrap();
    assert_eq!(layer.key_for(&reordered).as_ref(), Some(&key));
    assert!(key.starts_with("orders#") && key.len() == "orders#".len() + 64);

    // The handler owns its input (as a decoded event is) and rewrites the key's fields.
    let runs = AtomicUsize::new(0);
    let input = written.clone();
    let output: Value = layer
        .run(&written, "m1", WINDOW, || {
            runs.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut input = input;
                input["data"]["orderId"] = json!("rewritten");
                input["data"]["customer"]["id"] = json!(4);
                Ok::<_, Boom>(input)
            }
        })
        .await
        .unwrap();
    let rewritten_key = layer.key_for(&output).unwrap();
    assert_ne!(rewritten_key, key, "the rewrite touched the key's fields");
    assert_eq!(
        stored(&layer, &written).await.map(|record| record.status),
        Some(Status::Completed)
    );
    assert_eq!(layer.store().get(&rewritten_key).await.unwrap(), None);

    let replayed: Value = layer
        .run(&reordered, "m2", WINDOW, || async {
            Ok::<_, Boom>(Value::Null)
        })
        .await
        .unwrap();
    assert_eq!((replayed, runs.load(Ordering::SeqCst)), (output, 1));
}

async fn a_missing_key_fails_or_runs_without_idempotency<S: IdempotencyStore + 'static>(store: S) {
    let store = Arc::new(Probe::new(store));
    let without_event_id = json!({"eventType": "OrderPlaced", "data": {"orderId": null}});
    let runs = AtomicUsize::new(0);

    for config in [orders(), orders().with_key_path("data.orderId")] {
        let (strict, _) = layer(store.clone(), config);
        let error = strict
            .run(&without_event_id, "m1", WINDOW, || counted(&runs, 1_u32))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, IdempotencyError::MissingKey { record_id, .. } if record_id == "m1"),
            "{error:?}"
        );
        assert!(!error.is_transient() && !error.handler_ran());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    let (lenient, _) = layer(
        store.clone(),
        orders().on_missing_key(MissingKeyPolicy::ProcessWithoutIdempotency),
    );
    for _ in 0..2 {
        let out = lenient
            .run(&without_event_id, "m1", WINDOW, || counted(&runs, 1_u32))
            .await
            .unwrap();
        assert_eq!(out, 1);
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "without a key every delivery runs"
    );
    let failed = lenient
        .run(&without_event_id, "m2", WINDOW, || async {
            Err::<u32, _>(Boom)
        })
        .await;
    assert!(matches!(failed, Err(IdempotencyError::Handler(Boom))));
    assert_eq!(store.total_calls(), 0, "nothing was read or written");
}

async fn replays_exactly<S, T>(layer: &Idempotency<S>, id: &str, value: T, stored_text: &str)
where
    S: IdempotencyStore,
    T: Serialize + DeserializeOwned + PartialEq + Debug + Clone,
{
    let first: T = layer
        .run(&event(id), "m1", WINDOW, || async {
            Ok::<_, Boom>(value.clone())
        })
        .await
        .unwrap();
    // A handler run here would fail the delivery, so Ok means replayed.
    let replayed: T = layer
        .run(&event(id), "m2", WINDOW, || async { Err(Boom) })
        .await
        .unwrap_or_else(|error| panic!("{id}: {error:?}"));
    assert_eq!((&first, &replayed), (&value, &value), "{id}");
    let record = stored(layer, &event(id)).await.unwrap();
    assert_eq!(record.result.as_deref(), Some(stored_text), "{id}");
}

async fn falsy_results_replay_exactly<S: IdempotencyStore + 'static>(store: S) {
    let (layer, _) = layer(store, orders());
    replays_exactly(&layer, "i64", 0_i64, "0").await;
    replays_exactly(&layer, "f64", 0.0_f64, "0.0").await;
    replays_exactly(&layer, "string", String::new(), r#""""#).await;
    replays_exactly(&layer, "bool", false, "false").await;
    replays_exactly(&layer, "map", HashMap::<String, u8>::new(), "{}").await;
    replays_exactly(&layer, "vec", Vec::<u8>::new(), "[]").await;
    replays_exactly(&layer, "option", None::<u8>, "null").await;
    replays_exactly(&layer, "unit", (), "null").await;
    for (id, value, text) in [
        ("json-0", json!(0), "0"),
        ("json-empty-string", json!(""), r#""""#),
        ("json-empty-object", json!({}), "{}"),
        ("json-null", json!(null), "null"),
        ("json-empty-array", json!([]), "[]"),
        ("json-false", json!(false), "false"),
    ] {
        replays_exactly(&layer, id, value, text).await;
    }
}

async fn fifty_concurrent_deliveries_of_one_key_run_the_handler_once<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, _) = layer(store, orders());
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(50));
    let deliveries: Vec<_> = (0..50)
        .map(|i| {
            let (layer, runs, start) = (layer.clone(), runs.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let outcome = layer
                    .run(&event("e1"), &format!("m{i}"), WINDOW, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<u32, Boom>(7)
                    })
                    .await;
                (i, outcome)
            })
        })
        .collect();

    let mut in_progress = Vec::new();
    for delivery in deliveries {
        match delivery.await.expect("delivery task") {
            (_, Ok(7)) => {}
            (i, Err(IdempotencyError::AlreadyInProgress { .. })) => in_progress.push(i),
            (i, other) => panic!("delivery {i}: unexpected outcome {other:?}"),
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(in_progress.len() < 50, "one delivery ran the handler");
    // Redelivered later, the ones turned away replay the result.
    for i in in_progress {
        let out = layer
            .run(&event("e1"), &format!("m{i}"), WINDOW, || async {
                Err::<u32, _>(Boom)
            })
            .await
            .unwrap();
        assert_eq!(out, 7);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

async fn a_thousand_keys_delivered_three_times_run_a_thousand_times<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    const KEYS: usize = 1_000;
    let (layer, _) = layer(store, orders());
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect());
    // Blocks of 16 keys, each delivered three times in a row, so that the 32 deliveries in
    // flight hold both live claims and completed records of the same keys.
    let order: Vec<(usize, usize)> = (0..KEYS)
        .collect::<Vec<_>>()
        .chunks(16)
        .flat_map(|block| (0..3).flat_map(move |round| block.iter().map(move |&key| (key, round))))
        .collect();
    assert_eq!(order.len(), 3 * KEYS);

    let outcomes: Vec<_> = futures::stream::iter(order)
        .map(|(key, round)| {
            let (layer, runs) = (layer.clone(), runs.clone());
            tokio::spawn(async move {
                let outcome = layer
                    .run(
                        &event(&format!("order-{key}")),
                        &format!("m{key}-{round}"),
                        WINDOW,
                        || async move {
                            runs[key].fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            Ok::<u64, Boom>(key as u64 * 2)
                        },
                    )
                    .await;
                (key, outcome)
            })
        })
        .buffer_unordered(32)
        .map(|delivery| delivery.expect("delivery task"))
        .collect()
        .await;

    let total: usize = runs.iter().map(|n| n.load(Ordering::SeqCst)).sum();
    assert_eq!(total, KEYS);
    assert!(runs.iter().all(|n| n.load(Ordering::SeqCst) == 1));
    let mut in_progress = Vec::new();
    for (key, outcome) in outcomes {
        match outcome {
            Ok(value) => assert_eq!(value, key as u64 * 2, "key {key}"),
            Err(IdempotencyError::AlreadyInProgress { .. }) => in_progress.push(key),
            Err(other) => panic!("key {key}: unexpected outcome {other:?}"),
        }
    }
    for key in in_progress {
        let out = layer
            .run(&event(&format!("order-{key}")), "retry", WINDOW, || async {
                Err::<u64, _>(Boom)
            })
            .await
            .unwrap();
        assert_eq!(out, key as u64 * 2);
    }
}

async fn store_failures_surface_as_typed_errors<S: IdempotencyStore + 'static>(store: S) {
    let (layer, clock) = layer(Probe::new(store), orders());
    let runs = AtomicUsize::new(0);

    // A throttled claim: the handler does not run and nothing is written.
    layer.store().throttle(Op::Claim, true);
    let error = layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 1_u32))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, IdempotencyError::Store { record_id, source: StoreError::Throttled { .. }, .. } if record_id == "m1"),
        "{error:?}"
    );
    assert!(error.is_transient() && !error.handler_ran());
    layer.store().throttle(Op::Claim, false);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(stored(&layer, &event("e1")).await, None);

    // A throttled completion: reported, and the key stays in progress, never "completed".
    layer.store().throttle(Op::Complete, true);
    let error = layer
        .run(&event("e2"), "m2", WINDOW, || counted(&runs, 2_u32))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            IdempotencyError::CompletionFailed {
                source: StoreError::Throttled { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.handler_ran());
    layer.store().throttle(Op::Complete, false);
    let record = stored(&layer, &event("e2")).await.unwrap();
    assert_eq!((record.status, record.result), (Status::InProgress, None));
    assert!(matches!(
        layer
            .run(&event("e2"), "m3", WINDOW, || counted(&runs, 3_u32))
            .await,
        Err(IdempotencyError::AlreadyInProgress { .. })
    ));
    // Once the window has passed, a redelivery runs the handler again and is stored.
    clock.advance(WINDOW + Duration::from_millis(1));
    let rerun = layer
        .run(&event("e2"), "m4", WINDOW, || counted(&runs, 4_u32))
        .await
        .unwrap();
    assert_eq!((rerun, runs.load(Ordering::SeqCst)), (4, 2));

    // A throttled release after a handler error: both errors are reported.
    layer.store().throttle(Op::Release, true);
    let error = layer
        .run(&event("e3"), "m5", WINDOW, || async { Err::<u32, _>(Boom) })
        .await
        .unwrap_err();
    assert_eq!(error.handler_error(), Some(&Boom));
    assert!(
        matches!(
            &error,
            IdempotencyError::ReleaseFailed {
                source: StoreError::Throttled { .. },
                ..
            }
        ),
        "{error:?}"
    );
    layer.store().throttle(Op::Release, false);
    let record = stored(&layer, &event("e3")).await.unwrap();
    assert_eq!(record.status, Status::InProgress);
}
