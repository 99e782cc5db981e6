//! A failing store surfaces as a typed error, never as a silent success.

use super::support::*;

pub async fn store_failures_surface_as_typed_errors<S: IdempotencyStore + 'static>(store: S) {
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

/// A result DynamoDB could not store with its record (over 400 KB) is refused before it is
/// written, on every store: a permanent error naming the limit, the claim removed so the
/// key is not blocked, and a retry runs the handler again (and is refused again).
pub async fn a_result_over_the_item_limit_is_refused_and_its_claim_released<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, _) = layer(store, orders());
    let payload = event("too-large");
    let runs = AtomicUsize::new(0);
    for attempt in 1..=2 {
        let outcome = layer
            .run(&payload, "m1", WINDOW, || {
                counted(&runs, "x".repeat(400 * 1024))
            })
            .await;
        match outcome {
            Err(error @ IdempotencyError::ResultTooLarge { .. }) => {
                assert!(!error.is_transient());
                assert!(error.to_string().contains("too large"), "{error}");
            }
            other => panic!("attempt {attempt}: expected ResultTooLarge, got {other:?}"),
        }
        assert_eq!(
            stored(&layer, &payload).await,
            None,
            "the claim is released"
        );
        assert_eq!(runs.load(Ordering::SeqCst), attempt);
    }
    // A result within the limit completes as usual.
    let fits = layer
        .run(&payload, "m1", WINDOW, || {
            counted(&runs, "x".repeat(300 * 1024))
        })
        .await
        .map(|value| value.len());
    assert!(matches!(fits, Ok(len) if len == 300 * 1024), "{fits:?}");
}
