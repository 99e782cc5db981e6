//! The orchestrator's semantics against the in-memory store, with a manual clock. The same
//! semantics are checked against DynamoDB Local in `tests/tests/idempotency_*.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::*;

const T0: u64 = 1_700_000_000_000;
const WINDOW: Duration = Duration::from_secs(30);

type Layer = Idempotency<Arc<InMemoryStore>>;

fn layer(config: IdempotencyConfig) -> (Layer, ManualClock) {
    let clock = ManualClock::new(T0);
    let layer = Idempotency::new(Arc::new(InMemoryStore::new()), config).with_clock(clock.clone());
    (layer, clock)
}

fn orders() -> IdempotencyConfig {
    IdempotencyConfig::new("orders")
}

fn event(id: &str) -> Value {
    json!({"eventId": id, "detail": {"orderId": 7, "amount": 10}})
}

#[derive(Debug, PartialEq, Eq)]
struct Boom;

/// A handler that counts its runs and returns `value`.
fn counted<T>(runs: &AtomicUsize, value: T) -> std::future::Ready<Result<T, Boom>> {
    runs.fetch_add(1, Ordering::SeqCst);
    std::future::ready(Ok(value))
}

#[tokio::test]
async fn first_run_stores_the_result_and_duplicates_replay_it() {
    let (layer, _) = layer(orders());
    let runs = AtomicUsize::new(0);
    let first: u32 = layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 42))
        .await
        .unwrap();
    let again: u32 = layer
        .run(&event("e1"), "m2", WINDOW, || counted(&runs, 99))
        .await
        .unwrap();
    assert_eq!((first, again, runs.load(Ordering::SeqCst)), (42, 42, 1));

    let key = layer.key_for(&event("e1")).unwrap();
    let record = layer.store().get(&key).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.result.as_deref(), Some("42"));
    assert_eq!(record.expiration, T0 / 1000 + DEFAULT_RECORD_TTL.as_secs());
    assert_eq!(record.in_progress_expiry_ms, Some(T0 + 30_000));
}

#[tokio::test]
async fn a_key_in_progress_is_a_typed_transient_error() {
    let (layer, _) = layer(orders());
    let (started_tx, started_rx) = oneshot::channel();
    let (finish_tx, finish_rx) = oneshot::channel::<()>();
    let payload = event("e1");
    let slow = layer.run(&payload, "m1", WINDOW, || async {
        let _ = started_tx.send(());
        let _ = finish_rx.await;
        Ok::<_, Boom>(1)
    });
    let duplicate = async {
        let _ = started_rx.await;
        let outcome = layer
            .run(&event("e1"), "m2", WINDOW, || async { Ok::<u32, Boom>(2) })
            .await;
        let _ = finish_tx.send(());
        outcome
    };
    let (slow, duplicate) = tokio::join!(slow, duplicate);
    assert_eq!(slow.unwrap(), 1);
    let error = duplicate.unwrap_err();
    assert!(error.is_transient() && !error.handler_ran());
    assert!(matches!(
        error,
        IdempotencyError::AlreadyInProgress { record_id, in_progress_expiry_ms: Some(expiry), .. }
            if record_id == "m2" && expiry == T0 + 30_000
    ));
}

#[tokio::test]
async fn an_expired_record_runs_again() {
    let (layer, clock) = layer(orders().with_record_ttl(Duration::from_secs(10)));
    let runs = AtomicUsize::new(0);
    layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 1))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10));
    layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 2))
        .await
        .unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "still live during its last second"
    );
    clock.advance(Duration::from_secs(1));
    let again: u32 = layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 3))
        .await
        .unwrap();
    assert_eq!((again, runs.load(Ordering::SeqCst)), (3, 2));
}

#[tokio::test]
async fn an_expired_in_progress_window_is_taken_over_and_zero_remaining_is_a_deadline() {
    let (layer, clock) = layer(orders());
    let key = layer.key_for(&event("e1")).unwrap();
    // A claimant that died at its deadline (remaining 0) leaves an immediately takeable claim.
    let payload = event("e1");
    let crashed = layer.run(&payload, "m1", Duration::ZERO, || async {
        futures::future::pending::<Result<u32, Boom>>().await
    });
    assert!(futures::poll!(Box::pin(crashed)).is_pending());
    let claim = layer.store().get(&key).await.unwrap().unwrap();
    assert_eq!(
        claim.in_progress_expiry_ms,
        Some(T0),
        "zero remaining is stored, not dropped"
    );

    assert!(matches!(
        layer
            .run(&event("e1"), "m2", WINDOW, || async { Ok::<u32, Boom>(2) })
            .await,
        Err(IdempotencyError::AlreadyInProgress { .. })
    ));
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        layer
            .run(&event("e1"), "m3", WINDOW, || async { Ok::<u32, Boom>(3) })
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn takeover_fences_the_old_owners_completion_and_release() {
    for handler_fails in [false, true] {
        let (layer, clock) = layer(orders());
        let (started_tx, started_rx) = oneshot::channel();
        let (finish_tx, finish_rx) = oneshot::channel::<()>();
        let payload = event("e1");
        let slow = layer.run(&payload, "old", Duration::from_millis(100), || async move {
            let _ = started_tx.send(());
            let _ = finish_rx.await;
            if handler_fails {
                Err(Boom)
            } else {
                Ok::<u32, Boom>(1)
            }
        });
        let new_owner = async {
            let _ = started_rx.await;
            clock.advance(Duration::from_secs(1));
            let outcome = layer
                .run(&event("e1"), "new", WINDOW, || async { Ok::<u32, Boom>(2) })
                .await;
            let _ = finish_tx.send(());
            outcome
        };
        let (old, new) = tokio::join!(slow, new_owner);
        assert_eq!(new.unwrap(), 2);
        let old = old.unwrap_err();
        assert!(old.handler_ran());
        if handler_fails {
            assert!(
                matches!(
                    old,
                    IdempotencyError::ReleaseFenced {
                        handler_error: Boom,
                        ..
                    }
                ),
                "{old:?}"
            );
        } else {
            assert!(
                matches!(old, IdempotencyError::CompletionFenced { .. }),
                "{old:?}"
            );
        }
        let record = layer
            .store()
            .get(&layer.key_for(&event("e1")).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (record.status, record.result.as_deref()),
            (Status::Completed, Some("2"))
        );
    }
}

#[tokio::test]
async fn a_handler_error_removes_the_claim_so_a_retry_runs_again() {
    let (layer, _) = layer(orders());
    let failed = layer
        .run(&event("e1"), "m1", WINDOW, || async { Err::<u32, _>(Boom) })
        .await;
    assert!(matches!(failed, Err(IdempotencyError::Handler(Boom))));
    assert!(layer.store().is_empty());
    assert_eq!(
        layer
            .run(&event("e1"), "m1", WINDOW, || async { Ok::<u32, Boom>(5) })
            .await
            .unwrap(),
        5
    );
}

#[tokio::test]
async fn payload_tampering_is_detected_from_the_store_and_from_the_cache() {
    for cache in [0, 16] {
        let config = orders()
            .validate_payload("detail.amount")
            .with_cache_capacity(cache);
        let (layer, _) = layer(config);
        let runs = AtomicUsize::new(0);
        layer
            .run(&event("e1"), "m1", WINDOW, || counted(&runs, 1))
            .await
            .unwrap();
        let mut tampered = event("e1");
        tampered["detail"]["amount"] = json!(1_000_000);
        let outcome = layer
            .run(&tampered, "m2", WINDOW, || counted(&runs, 2))
            .await;
        assert!(
            matches!(outcome, Err(IdempotencyError::PayloadValidation { .. })),
            "cache {cache}: {outcome:?}"
        );
        // Fields outside the validated part may differ.
        let mut other = event("e1");
        other["detail"]["note"] = json!("resent");
        assert_eq!(
            layer
                .run(&other, "m3", WINDOW, || counted(&runs, 3))
                .await
                .unwrap(),
            1
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn cache_hits_skip_the_store_and_expire_with_the_record() {
    let (layer, clock) = layer(
        orders()
            .with_cache_capacity(8)
            .with_record_ttl(Duration::from_secs(5)),
    );
    let runs = AtomicUsize::new(0);
    layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 1))
        .await
        .unwrap();
    let key = layer.key_for(&event("e1")).unwrap();
    // Change the stored result behind the cache's back: a cache hit does not read it.
    let mut stored = layer.store().get(&key).await.unwrap().unwrap();
    stored.result = Some("7".into());
    layer.store().insert(stored);
    assert_eq!(
        layer
            .run(&event("e1"), "m2", WINDOW, || counted(&runs, 2))
            .await
            .unwrap(),
        1
    );
    clock.advance(Duration::from_secs(6));
    assert_eq!(
        layer
            .run(&event("e1"), "m3", WINDOW, || counted(&runs, 3))
            .await
            .unwrap(),
        3
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn in_progress_records_are_never_cached() {
    let (layer, _) = layer(orders().with_cache_capacity(8));
    let key = layer.key_for(&event("e1")).unwrap();
    layer.store().insert(IdempotencyRecord {
        key: key.clone(),
        status: Status::InProgress,
        expiration: T0 / 1000 + 60,
        in_progress_expiry_ms: Some(T0 + 60_000),
        result: None,
        payload_hash: None,
        owner: Some("someone".into()),
    });
    for _ in 0..2 {
        assert!(matches!(
            layer
                .run(&event("e1"), "m", WINDOW, || async { Ok::<u32, Boom>(1) })
                .await,
            Err(IdempotencyError::AlreadyInProgress { .. })
        ));
    }
}

#[tokio::test]
async fn keys_ignore_json_key_order_and_what_the_handler_does_with_its_input() {
    let (layer, _) = layer(orders().with_key_path("detail"));
    let a: Value = serde_json::from_str(r#"{"detail": {"b": 1, "a": {"y": 2, "x": 3}}}"#).unwrap();
    let b: Value = serde_json::from_str(r#"{"detail": {"a": {"x": 3, "y": 2}, "b": 1}}"#).unwrap();
    assert_eq!(layer.key_for(&a), layer.key_for(&b));
    let key = layer.key_for(&a).unwrap();
    assert!(key.starts_with("orders#") && key.len() == "orders#".len() + 64);

    let runs = AtomicUsize::new(0);
    let out: Value = layer
        .run(&a, "m1", WINDOW, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            // The handler owns and rewrites its copy of the input, key fields included.
            let mut input = a.clone();
            input["detail"]["b"] = json!("changed");
            input["detail"]["extra"] = json!(true);
            Ok::<_, Boom>(input)
        })
        .await
        .unwrap();
    assert_eq!(out["detail"]["b"], json!("changed"));
    assert_eq!(layer.store().len(), 1);
    assert!(
        layer.store().get(&key).await.unwrap().is_some(),
        "stored under the original key"
    );
    let replayed: Value = layer
        .run(&b, "m2", WINDOW, || async {
            Ok::<Value, Boom>(json!(null))
        })
        .await
        .unwrap();
    assert_eq!((replayed, runs.load(Ordering::SeqCst)), (out, 1));
}

#[tokio::test]
async fn missing_keys_fail_or_run_without_idempotency() {
    let payload = json!({"detail": {}});
    let (strict, _) = layer(orders());
    let runs = AtomicUsize::new(0);
    let outcome = strict
        .run(&payload, "m1", WINDOW, || counted(&runs, 1))
        .await;
    assert!(
        matches!(outcome, Err(IdempotencyError::MissingKey { ref record_id, .. }) if record_id == "m1")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    let (lenient, _) = layer(orders().on_missing_key(MissingKeyPolicy::ProcessWithoutIdempotency));
    for _ in 0..2 {
        assert_eq!(
            lenient
                .run(&payload, "m1", WINDOW, || counted(&runs, 1))
                .await
                .unwrap(),
            1
        );
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "no idempotency: runs every time"
    );
    assert!(lenient.store().is_empty());
}

#[tokio::test]
async fn falsy_results_replay_exactly() {
    async fn round_trip<T>(layer: &Layer, id: &str, value: T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
    {
        let first: T = layer
            .run(&event(id), "m1", WINDOW, || async {
                Ok::<_, Boom>(value.clone())
            })
            .await
            .unwrap();
        let replayed: T = layer
            .run(&event(id), "m2", WINDOW, || async {
                panic!("replay must not run the handler")
            })
            .await
            .map_err(|error: IdempotencyError<Boom>| error)
            .unwrap();
        assert_eq!((&first, &replayed), (&value, &value));
    }
    let (layer, _) = layer(orders());
    round_trip(&layer, "int", 0_i64).await;
    round_trip(&layer, "float", 0.0_f64).await;
    round_trip(&layer, "string", String::new()).await;
    round_trip(&layer, "bool", false).await;
    round_trip(&layer, "map", HashMap::<String, u8>::new()).await;
    round_trip(&layer, "vec", Vec::<u8>::new()).await;
    round_trip(&layer, "none", None::<u8>).await;
    round_trip(&layer, "unit", ()).await;
    for (id, value) in [
        ("v0", json!(0)),
        ("v1", json!("")),
        ("v2", json!({})),
        ("v3", json!(null)),
        ("v4", json!([])),
    ] {
        round_trip(&layer, id, value).await;
    }
}

#[tokio::test]
async fn unserializable_results_release_the_claim_and_unreadable_ones_are_typed() {
    let (layer, _) = layer(orders());
    let mut bad = HashMap::new();
    bad.insert((1, 2), 3);
    let outcome = layer
        .run(&event("e1"), "m1", WINDOW, || async { Ok::<_, Boom>(bad) })
        .await;
    assert!(matches!(
        outcome,
        Err(IdempotencyError::ResultSerialization { .. })
    ));
    assert!(layer.store().is_empty());

    layer
        .run(&event("e2"), "m1", WINDOW, || async {
            Ok::<_, Boom>("text".to_string())
        })
        .await
        .unwrap();
    let outcome = layer
        .run(&event("e2"), "m2", WINDOW, || async { Ok::<u32, Boom>(1) })
        .await;
    assert!(matches!(
        outcome,
        Err(IdempotencyError::StoredResultUnreadable { .. })
    ));
}

#[tokio::test]
async fn concurrent_deliveries_of_one_key_run_the_handler_once() {
    let layer = Arc::new(layer(orders()).0);
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (layer, runs) = (layer.clone(), runs.clone());
            tokio::spawn(async move {
                layer
                    .run(&event("e1"), &format!("m{i}"), WINDOW, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<u32, Boom>(1)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(1) | Err(IdempotencyError::AlreadyInProgress { .. }) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A store whose every operation fails, to check that failures surface.
struct FailingStore;

impl IdempotencyStore for FailingStore {
    async fn claim(&self, _: &IdempotencyRecord, _: u64) -> Result<ClaimOutcome, StoreError> {
        Err(StoreError::Throttled {
            message: "slow down".into(),
        })
    }
    async fn complete(&self, _: &str, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
        Err(StoreError::Throttled {
            message: "slow down".into(),
        })
    }
    async fn release(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Throttled {
            message: "slow down".into(),
        })
    }
    async fn get(&self, _: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Err(StoreError::Throttled {
            message: "slow down".into(),
        })
    }
}

#[tokio::test]
async fn store_failures_before_the_handler_are_typed_and_the_handler_does_not_run() {
    let layer = Idempotency::new(FailingStore, orders());
    let runs = AtomicUsize::new(0);
    let outcome = layer
        .run(&event("e1"), "m1", WINDOW, || counted(&runs, 1))
        .await;
    assert!(
        matches!(
            outcome,
            Err(IdempotencyError::Store {
                source: StoreError::Throttled { .. },
                ..
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn remaining_until_saturates_at_zero() {
    let (layer, _) = layer(orders());
    assert_eq!(
        layer.remaining_until(T0 + 1_500),
        Duration::from_millis(1_500)
    );
    assert_eq!(layer.remaining_until(T0 - 1), Duration::ZERO);
}

#[test]
fn payload_hash_covers_the_validated_paths_only() {
    let (single, _) = layer(orders().validate_payload("detail.amount"));
    let mut changed = event("e1");
    changed["detail"]["orderId"] = json!(8);
    assert_eq!(
        single.payload_hash(&event("e1")),
        single.payload_hash(&changed)
    );
    let (whole, _) = layer(orders().validate_payload(""));
    assert_ne!(
        whole.payload_hash(&event("e1")),
        whole.payload_hash(&changed)
    );
    let (none, _) = layer(orders());
    assert_eq!(none.payload_hash(&event("e1")), None);
}

#[tokio::test]
async fn a_claim_lives_at_least_as_long_as_its_in_progress_window() {
    let (layer, clock) = layer(orders().with_record_ttl(Duration::from_secs(10)));
    let key = layer.key_for(&event("e1")).unwrap();
    let payload = event("e1");
    let running = layer.run(&payload, "m1", Duration::from_millis(60_500), || async {
        futures::future::pending::<Result<u32, Boom>>().await
    });
    assert!(futures::poll!(Box::pin(running)).is_pending());
    let claim = layer.store().get(&key).await.unwrap().unwrap();
    // The window ends at T0 + 60.5 s: the claim expires at the end of that second.
    assert_eq!(claim.expiration, T0 / 1000 + 61);

    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        layer
            .run(&event("e1"), "m2", WINDOW, || async { Ok::<u32, Boom>(2) })
            .await,
        Err(IdempotencyError::AlreadyInProgress { .. })
    ));
}

#[tokio::test]
async fn a_panicking_handler_releases_its_claim_so_a_retry_runs_at_once() {
    use futures::FutureExt;

    let (layer, _) = layer(orders());
    let panicked = std::panic::AssertUnwindSafe(layer.run(&event("e1"), "m1", WINDOW, || async {
        if true {
            panic!("handler bug");
        }
        Ok::<u32, Boom>(1)
    }))
    .catch_unwind()
    .await;
    assert!(panicked.is_err(), "the panic goes on unwinding");
    let key = layer.key_for(&event("e1")).unwrap();
    assert_eq!(layer.store().get(&key).await.unwrap(), None);
    // Inside what would have been the in-progress window, a retry runs the handler.
    let runs = AtomicUsize::new(0);
    let retried: u32 = layer
        .run(&event("e1"), "m2", WINDOW, || counted(&runs, 7))
        .await
        .unwrap();
    assert_eq!((retried, runs.load(Ordering::SeqCst)), (7, 1));
}

#[tokio::test]
async fn a_blank_key_is_refused_and_never_taken() {
    for config in [orders(), orders().with_key_path("detail.orderId")] {
        let (layer, _) = layer(config);
        for blank in ["", "  "] {
            let payload = json!({"eventId": blank, "detail": {"orderId": blank}});
            let runs = AtomicUsize::new(0);
            let error = layer
                .run(&payload, "m1", WINDOW, || counted(&runs, 1))
                .await
                .unwrap_err();
            assert!(
                matches!(error, IdempotencyError::BlankKey { .. }),
                "{error:?}"
            );
            assert_eq!(runs.load(Ordering::SeqCst), 0);
            assert!(layer.store().is_empty(), "no key was claimed");
        }
    }
    // The configured key is named as the user wrote it.
    let (layer, _) = layer(orders().with_key_path("detail.orderId"));
    let error = layer
        .run(
            &json!({"detail": {"orderId": ""}}),
            "m1",
            WINDOW,
            || async { Ok::<u32, Boom>(1) },
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("key path `detail.orderId`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_result_that_does_not_read_back_is_not_stored() {
    let (layer, _) = layer(orders());
    let error = layer
        .run(&event("e1"), "m1", WINDOW, || async {
            Ok::<f64, Boom>(f64::NAN) // written as `null`, which no f64 reads back from
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdempotencyError::ResultSerialization { .. }),
        "{error:?}"
    );
    // The claim is released: the next delivery runs the handler instead of failing forever
    // on an unreadable stored result.
    assert!(layer.store().is_empty());
    let fixed: f64 = layer
        .run(&event("e1"), "m2", WINDOW, || async {
            Ok::<f64, Boom>(1.5)
        })
        .await
        .unwrap();
    assert_eq!(fixed, 1.5);
}

/// How each idempotency outcome becomes a record's error: a key in progress elsewhere comes
/// back later (transient, `InProgress`); input that can never get a key or never match is
/// poison (permanent); a store or completion failure is transient; the handler's own error
/// keeps its class. The idempotency error stays the source.
#[test]
fn each_idempotency_error_becomes_a_record_error_of_its_class() {
    use crate::batch::{ErrorClass, FailureKind, RecordError};

    let key = || "orders#k".to_string();
    let record_id = || "m1".to_string();
    let store = || StoreError::Throttled {
        message: "slow down".into(),
    };
    let json_error = || serde_json::from_str::<u32>("x").unwrap_err();
    let handler = || RecordError::permanent("bad order");
    let cases: Vec<(IdempotencyError<RecordError>, ErrorClass, FailureKind)> = vec![
        (
            IdempotencyError::AlreadyInProgress {
                key: key(),
                record_id: record_id(),
                in_progress_expiry_ms: None,
            },
            ErrorClass::Transient,
            FailureKind::InProgress,
        ),
        (
            IdempotencyError::PayloadValidation {
                key: key(),
                record_id: record_id(),
            },
            ErrorClass::Permanent,
            FailureKind::Error,
        ),
        (
            IdempotencyError::MissingKey {
                record_id: record_id(),
                source_description: "the envelope's `eventId`".into(),
            },
            ErrorClass::Permanent,
            FailureKind::Error,
        ),
        (
            IdempotencyError::BlankKey {
                record_id: record_id(),
                source_description: "the envelope's `eventId`".into(),
            },
            ErrorClass::Permanent,
            FailureKind::Error,
        ),
        (
            IdempotencyError::ResultSerialization {
                key: key(),
                record_id: record_id(),
                source: json_error(),
            },
            ErrorClass::Permanent,
            FailureKind::Error,
        ),
        (
            IdempotencyError::StoredResultUnreadable {
                key: key(),
                record_id: record_id(),
                source: json_error(),
            },
            ErrorClass::Permanent,
            FailureKind::Error,
        ),
        (
            IdempotencyError::Store {
                key: key(),
                record_id: record_id(),
                source: store(),
            },
            ErrorClass::Transient,
            FailureKind::Error,
        ),
        (
            IdempotencyError::CompletionFenced {
                key: key(),
                record_id: record_id(),
            },
            ErrorClass::Transient,
            FailureKind::Error,
        ),
        (
            IdempotencyError::CompletionFailed {
                key: key(),
                record_id: record_id(),
                source: store(),
            },
            ErrorClass::Transient,
            FailureKind::Error,
        ),
        (
            IdempotencyError::NotCommitted {
                key: key(),
                record_id: record_id(),
                source: store(),
            },
            ErrorClass::Transient,
            FailureKind::Error,
        ),
        // A unit of work that can never fit (events that would make the record larger than
        // a DynamoDB item): retrying commits nothing more, so its record goes to the DLQ now.
        (
            IdempotencyError::NotCommitted {
                key: key(),
                record_id: record_id(),
                source: StoreError::LimitExceeded {
                    key: key(),
                    reason: "2 events of about 500000 bytes do not fit one idempotency record"
                        .into(),
                },
            },
            ErrorClass::Permanent,
            FailureKind::Error,
        ),
        (
            IdempotencyError::ReleaseFenced {
                key: key(),
                record_id: record_id(),
                handler_error: handler(),
            },
            ErrorClass::Transient,
            FailureKind::Error,
        ),
        (
            IdempotencyError::ReleaseFailed {
                key: key(),
                record_id: record_id(),
                source: store(),
                handler_error: handler(),
            },
            ErrorClass::Transient,
            FailureKind::Error,
        ),
    ];
    for (error, class, kind) in cases {
        let described = format!("{error:?}");
        let record_error = RecordError::from(error);
        assert_eq!(
            (record_error.class(), record_error.kind()),
            (class, kind),
            "{described}"
        );
        assert!(
            record_error
                .downcast_ref::<IdempotencyError<RecordError>>()
                .is_some(),
            "{described}: the idempotency error is the source"
        );
    }

    // The handler's own error passes through as it was, class and all.
    for inner in [
        RecordError::permanent("bad"),
        RecordError::transient("later"),
    ] {
        let class = inner.class();
        let record_error = RecordError::from(IdempotencyError::Handler(inner));
        assert_eq!(record_error.class(), class);
        assert!(record_error
            .downcast_ref::<IdempotencyError<RecordError>>()
            .is_none());
    }
}
