//! Many deliveries at once: the handler still runs once per key.

use super::support::*;

pub async fn fifty_concurrent_deliveries_of_one_key_run_the_handler_once<
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

pub async fn a_thousand_keys_delivered_three_times_run_a_thousand_times<
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
