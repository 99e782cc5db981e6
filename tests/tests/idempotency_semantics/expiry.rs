//! Claims over time: in progress, expiry, takeover and its fencing, handler errors.

use super::support::*;

pub async fn a_key_in_progress_gives_the_typed_error<S: IdempotencyStore + 'static>(store: S) {
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

pub async fn an_expired_record_runs_again<S: IdempotencyStore + 'static>(store: S) {
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

pub async fn a_live_claim_outlives_a_record_ttl_shorter_than_its_window<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, clock) = layer(store, orders().with_record_ttl(Duration::from_secs(10)));
    let t0 = clock.now_ms();
    let mut first = Held::spawn(&layer, &event("e1"), "m1", WINDOW, Ok(1_u32));
    first.wait_started().await;
    let claim = stored(&layer, &event("e1")).await.unwrap();
    // The claim must not expire (or be deleted by TTL) before its window ends: it lives
    // until the window's end, rounded up to the second, not the 10 s record TTL.
    assert_eq!(claim.expiration, (t0 + 60_000).div_ceil(1000), "{claim:?}");

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

pub async fn an_expired_in_progress_window_is_taken_over<S: IdempotencyStore + 'static>(store: S) {
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

pub async fn takeover_fencing_refuses_the_old_owners_completion_and_delete<
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

pub async fn a_handler_error_removes_the_claim_and_a_retry_succeeds<
    S: IdempotencyStore + 'static,
>(
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
