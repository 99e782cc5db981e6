//! What is stored and replayed: results, payload validation, keys, missing keys.

use super::support::*;

pub async fn first_execution_stores_completed_with_the_result<S: IdempotencyStore + 'static>(
    store: S,
) {
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
        t0 / 1000 + DEFAULT_RECORD_TTL.as_secs(),
        "epoch seconds, now + the default TTL"
    );
    assert_eq!(record.in_progress_expiry_ms, Some(t0 + 60_000));
    assert_eq!(record.payload_hash, layer.payload_hash(&event("e1")));
    assert!(record.payload_hash.is_some_and(|hash| hash.len() == 64));
    assert!(record.owner.is_some_and(|owner| !owner.is_empty()));
}

pub async fn a_duplicate_replays_the_stored_result_without_running_the_handler<
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

pub async fn payload_tampering_is_detected_from_the_store_and_from_the_cache<
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

pub async fn keys_survive_json_key_order_and_the_handler_mutating_its_input<
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

pub async fn a_missing_key_fails_or_runs_without_idempotency<S: IdempotencyStore + 'static>(
    store: S,
) {
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

pub async fn replays_exactly<S, T>(layer: &Idempotency<S>, id: &str, value: T, stored_text: &str)
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

pub async fn falsy_results_replay_exactly<S: IdempotencyStore + 'static>(store: S) {
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
