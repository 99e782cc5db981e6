//! The batched mode ([`Idempotency::execute_batch`]): the per-record semantics over a whole
//! batch, records of one batch sharing a key, and the concurrency scenarios.

use eventkit::idempotency::{BatchEntry, BatchResult, Outcome};

use super::support::*;

fn entries<'a>(payloads: &'a [Value], ids: &'a [String]) -> Vec<BatchEntry<'a>> {
    payloads
        .iter()
        .zip(ids)
        .map(|(payload, record_id)| BatchEntry {
            payload,
            record_id,
            remaining: WINDOW,
        })
        .collect()
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

/// Runs one batch whose handler counts its runs per position and returns `value(i)`.
async fn batch<S: IdempotencyStore, T: Serialize + DeserializeOwned>(
    layer: &Idempotency<S>,
    payloads: &[Value],
    runs: &[AtomicUsize],
    value: impl Fn(usize) -> Result<T, Boom>,
) -> Vec<BatchResult<T, Boom>> {
    let ids = ids("m", payloads.len());
    let value = &value;
    layer
        .execute_batch(&entries(payloads, &ids), |i| async move {
            runs[i].fetch_add(1, Ordering::SeqCst);
            value(i)
        })
        .await
}

fn counters(count: usize) -> Vec<AtomicUsize> {
    (0..count).map(|_| AtomicUsize::new(0)).collect()
}

fn total(runs: &[AtomicUsize]) -> usize {
    runs.iter().map(|n| n.load(Ordering::SeqCst)).sum()
}

pub async fn batched_a_new_batch_completes_every_record_and_a_duplicate_batch_replays_exactly<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, _) = layer(store, orders());
    let payloads: Vec<Value> = (0..12).map(|n| event(&format!("b{n}"))).collect();
    // Falsy results among them: each must replay as itself.
    let value = |i: usize| {
        Ok(match i % 6 {
            0 => json!(0),
            1 => json!(""),
            2 => json!({}),
            3 => json!(null),
            4 => json!(false),
            _ => json!({"order": i}),
        })
    };
    let runs = counters(payloads.len());
    let first = batch(&layer, &payloads, &runs, value).await;
    assert_eq!(total(&runs), 12);
    for (i, result) in first.into_iter().enumerate() {
        assert_eq!(
            result.unwrap(),
            Outcome::Computed(value(i).unwrap()),
            "record {i}"
        );
        let stored = stored(&layer, &payloads[i]).await.expect("a record");
        assert_eq!(stored.status, Status::Completed);
        assert_eq!(
            stored.result.as_deref(),
            Some(value(i).unwrap().to_string().as_str())
        );
    }
    let again = batch(&layer, &payloads, &runs, |_| Err::<Value, _>(Boom)).await;
    assert_eq!(total(&runs), 12, "no handler ran for the duplicates");
    for (i, result) in again.into_iter().enumerate() {
        assert_eq!(
            result.unwrap(),
            Outcome::Replayed(value(i).unwrap()),
            "record {i}"
        );
    }
}

pub async fn batched_records_sharing_a_key_run_once_and_the_others_replay<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, _) = layer(store, orders());
    let payloads = vec![event("s1"), event("s1"), event("s2"), event("s1")];
    let runs = counters(payloads.len());
    let results = batch(&layer, &payloads, &runs, |i| Ok::<_, Boom>(i as u32 + 100)).await;
    assert_eq!(runs[0].load(Ordering::SeqCst), 1);
    assert_eq!(runs[2].load(Ordering::SeqCst), 1);
    assert_eq!(total(&runs), 2, "one run per key");
    let outcomes: Vec<Outcome<u32>> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Computed(100),
            Outcome::Replayed(100),
            Outcome::Computed(102),
            Outcome::Replayed(100)
        ]
    );
}

pub async fn batched_a_failed_handler_releases_its_claim_alone_and_a_retry_runs_it<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, _) = layer(store, orders());
    let payloads = vec![event("f1"), event("f2"), event("f3"), event("f2")];
    let runs = counters(payloads.len());
    let results = batch(&layer, &payloads, &runs, |i| {
        if i == 1 {
            Err(Boom)
        } else {
            Ok(i as u32)
        }
    })
    .await;
    let mut results = results.into_iter();
    assert_eq!(results.next().unwrap().unwrap(), Outcome::Computed(0));
    assert!(matches!(
        results.next().unwrap(),
        Err(IdempotencyError::Handler(Boom))
    ));
    assert_eq!(results.next().unwrap().unwrap(), Outcome::Computed(2));
    // The same key as the failed record: not run, retried later.
    assert!(matches!(
        results.next().unwrap(),
        Err(IdempotencyError::AlreadyInProgress { .. })
    ));
    assert!(
        stored(&layer, &payloads[1]).await.is_none(),
        "claim released"
    );
    assert_eq!(total(&runs), 3);

    let retry = batch(&layer, &payloads, &runs, |i| Ok::<_, Boom>(i as u32 + 10)).await;
    let retry: Vec<Outcome<u32>> = retry.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        retry,
        [
            Outcome::Replayed(0),
            Outcome::Computed(11),
            Outcome::Replayed(2),
            Outcome::Replayed(11)
        ]
    );
    assert_eq!(
        runs[1].load(Ordering::SeqCst),
        2,
        "the failed one ran again"
    );
}

pub async fn batched_live_claims_payload_changes_and_missing_keys_keep_their_typed_errors<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, clock) = layer(
        store,
        orders()
            .validate_payload("data.amount")
            .on_missing_key(MissingKeyPolicy::Fail),
    );
    // A live claim held by another delivery.
    let held = event("v-held");
    let key = layer.key_for(&held).unwrap();
    let claim = IdempotencyRecord {
        key,
        status: Status::InProgress,
        expiration: clock.now_ms() / 1000 + 3600,
        in_progress_expiry_ms: Some(clock.now_ms() + 60_000),
        result: None,
        payload_hash: layer.payload_hash(&held),
        owner: Some("someone-else".into()),
    };
    assert!(matches!(
        layer.store().claim(&claim, clock.now_ms()).await,
        Ok(ClaimOutcome::Claimed { .. })
    ));
    let runs = counters(1);
    batch(&layer, &[event("v-done")], &runs, |_| Ok::<_, Boom>(1u32)).await;

    let mut tampered = event("v-done");
    tampered["data"]["amount"] = json!(99);
    let payloads = vec![held, tampered, json!({"noEventId": true}), event("v-new")];
    let runs = counters(payloads.len());
    let results = batch(&layer, &payloads, &runs, |i| Ok::<_, Boom>(i as u32)).await;
    let mut results = results.into_iter();
    assert!(matches!(
        results.next().unwrap(),
        Err(IdempotencyError::AlreadyInProgress { in_progress_expiry_ms: Some(expiry), .. })
            if expiry == clock.now_ms() + 60_000
    ));
    assert!(matches!(
        results.next().unwrap(),
        Err(IdempotencyError::PayloadValidation { record_id, .. }) if record_id == "m-1"
    ));
    assert!(matches!(
        results.next().unwrap(),
        Err(IdempotencyError::MissingKey { record_id, .. }) if record_id == "m-2"
    ));
    assert_eq!(results.next().unwrap().unwrap(), Outcome::Computed(3));
    assert_eq!(total(&runs), 1, "only the new record ran");
}

pub async fn batched_an_expired_window_is_taken_over_and_fences_the_old_owner<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, clock) = layer(store, orders());
    let payload = event("t1");
    let key = layer.key_for(&payload).unwrap();
    let old = IdempotencyRecord {
        key: key.clone(),
        status: Status::InProgress,
        expiration: clock.now_ms() / 1000 + 3600,
        in_progress_expiry_ms: Some(clock.now_ms() + 1_000),
        result: None,
        payload_hash: None,
        owner: Some("old-owner".into()),
    };
    layer.store().claim(&old, clock.now_ms()).await.unwrap();
    clock.advance(Duration::from_secs(2));
    let runs = counters(1);
    let results = batch(&layer, std::slice::from_ref(&payload), &runs, |_| {
        Ok::<_, Boom>(5u32)
    })
    .await;
    assert_eq!(
        results.into_iter().next().unwrap().unwrap(),
        Outcome::Computed(5)
    );
    assert!(matches!(
        layer.store().complete(&key, "old-owner", "1", 0).await,
        Err(StoreError::Fenced)
    ));
    let stored = stored(&layer, &payload).await.unwrap();
    assert_eq!(stored.result.as_deref(), Some("5"));
}

pub async fn batched_fifty_concurrent_batches_with_one_key_run_the_handler_once<
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
                // Each batch carries the shared key and one of its own.
                let payloads = [event("c1"), event(&format!("own-{i}"))];
                let ids = ids(&format!("m{i}"), 2);
                start.wait().await;
                let results = layer
                    .execute_batch(&entries(&payloads, &ids), |n| {
                        let runs = runs.clone();
                        async move {
                            if n == 0 {
                                runs.fetch_add(1, Ordering::SeqCst);
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<u32, Boom>(if n == 0 { 7 } else { i })
                        }
                    })
                    .await;
                (i, results)
            })
        })
        .collect();
    for delivery in deliveries {
        let (i, results) = delivery.await.expect("delivery task");
        let mut results = results.into_iter();
        match results.next().unwrap() {
            Ok(outcome) => assert_eq!(outcome.into_inner(), 7),
            Err(IdempotencyError::AlreadyInProgress { .. }) => {}
            other => panic!("batch {i}: unexpected outcome {other:?}"),
        }
        assert_eq!(results.next().unwrap().unwrap(), Outcome::Computed(i));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

pub async fn batched_a_thousand_keys_delivered_three_times_run_a_thousand_times<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    const KEYS: usize = 1_000;
    let (layer, _) = layer(store, orders());
    let runs: Arc<Vec<AtomicUsize>> = Arc::new(counters(KEYS));
    // Batches of 10 (SQS's default), three deliveries of each block of 10 keys in a row and
    // 8 batches in flight, so that claims, completions and duplicates of a key overlap.
    let batches: Vec<Vec<usize>> = (0..KEYS)
        .collect::<Vec<_>>()
        .chunks(10)
        .flat_map(|block| (0..3).map(move |_| block.to_vec()))
        .collect();
    type Delivered = (Vec<usize>, Vec<BatchResult<u64, Boom>>);
    let outcomes: Vec<Delivered> = futures::stream::iter(batches)
        .map(|keys| {
            let (layer, runs) = (layer.clone(), runs.clone());
            tokio::spawn(async move {
                let payloads: Vec<Value> = keys
                    .iter()
                    .map(|key| event(&format!("order-{key}")))
                    .collect();
                let ids = ids("m", keys.len());
                let results = layer
                    .execute_batch(&entries(&payloads, &ids), |n| {
                        let (runs, key) = (runs.clone(), keys[n]);
                        async move {
                            runs[key].fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            Ok::<u64, Boom>(key as u64 * 2)
                        }
                    })
                    .await;
                (keys, results)
            })
        })
        .buffer_unordered(8)
        .map(|delivery| delivery.expect("delivery task"))
        .collect()
        .await;
    assert!(runs.iter().all(|n| n.load(Ordering::SeqCst) == 1));
    let mut in_progress = Vec::new();
    for (keys, results) in outcomes {
        for (key, result) in keys.into_iter().zip(results) {
            match result {
                Ok(outcome) => assert_eq!(outcome.into_inner(), key as u64 * 2, "key {key}"),
                Err(IdempotencyError::AlreadyInProgress { .. }) => in_progress.push(key),
                Err(other) => panic!("key {key}: unexpected outcome {other:?}"),
            }
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

pub async fn batched_store_failures_surface_as_typed_errors_and_nothing_is_lost<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, clock) = layer(Probe::new(store), orders());
    let payloads = vec![event("x1"), event("x2")];
    let runs = counters(2);

    // Throttled claims: no handler runs and nothing is written.
    layer.store().throttle(Op::Claim, true);
    let results = batch(&layer, &payloads, &runs, |i| Ok::<_, Boom>(i as u32)).await;
    for (i, result) in results.into_iter().enumerate() {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, IdempotencyError::Store { record_id, source: StoreError::Throttled { .. }, .. } if *record_id == format!("m-{i}")),
            "{error:?}"
        );
        assert!(error.is_transient() && !error.handler_ran());
    }
    layer.store().throttle(Op::Claim, false);
    assert_eq!(total(&runs), 0);
    assert_eq!(stored(&layer, &payloads[0]).await, None);

    // Throttled completions (what a crash before the completion leaves too): the handlers ran,
    // the error says so, and the keys stay in progress until the window ends.
    layer.store().throttle(Op::Complete, true);
    let results = batch(&layer, &payloads, &runs, |i| Ok::<_, Boom>(i as u32)).await;
    for result in results {
        let error = result.unwrap_err();
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
    }
    layer.store().throttle(Op::Complete, false);
    let record = stored(&layer, &payloads[1]).await.unwrap();
    assert_eq!((record.status, record.result), (Status::InProgress, None));
    let results = batch(&layer, &payloads, &runs, |i| Ok::<_, Boom>(i as u32)).await;
    assert!(results
        .iter()
        .all(|result| matches!(result, Err(IdempotencyError::AlreadyInProgress { .. }))));
    assert_eq!(total(&runs), 2);
    // Once the window has passed, a redelivery runs them again and is stored.
    clock.advance(WINDOW + Duration::from_millis(1));
    let results = batch(&layer, &payloads, &runs, |i| Ok::<_, Boom>(i as u32 + 10)).await;
    let outcomes: Vec<Outcome<u32>> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes, [Outcome::Computed(10), Outcome::Computed(11)]);
    assert_eq!(total(&runs), 4);

    // A throttled release after a handler error: both errors are reported, the claim stays.
    layer.store().throttle(Op::Release, true);
    let third = [event("x3")];
    let results = batch(&layer, &third, &counters(1), |_| Err::<u32, _>(Boom)).await;
    let error = results.into_iter().next().unwrap().unwrap_err();
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
    assert_eq!(
        stored(&layer, &third[0]).await.unwrap().status,
        Status::InProgress
    );
}
