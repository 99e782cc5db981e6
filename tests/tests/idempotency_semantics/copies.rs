//! Copies of one key in one batch: each copy gets the answer per-record mode gives it,
//! whatever the order of the copies, for every state the key can be in before the batch
//! (new, completed, completed with a result that no longer reads, in progress elsewhere)
//! and every sequence of genuine and tampered copies up to four long.

use eventkit::idempotency::{BatchEntry, BatchResult};

use super::support::*;

/// A copy of the event: the genuine payload, or one with the same `eventId` and other data
/// (payload validation is on `data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copy {
    Genuine,
    Tampered,
}

/// What a copy was told, comparable across the two modes.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Computed(u64),
    Replayed(u64),
    PayloadValidation,
    StoredResultUnreadable,
    InProgress(Option<u64>),
    Other(String),
}

fn answer(result: BatchResult<u64, Boom>) -> Answer {
    match result {
        Ok(Outcome::Computed(value)) => Answer::Computed(value),
        Ok(Outcome::Replayed(value)) => Answer::Replayed(value),
        Err(IdempotencyError::PayloadValidation { .. }) => Answer::PayloadValidation,
        Err(IdempotencyError::StoredResultUnreadable { .. }) => Answer::StoredResultUnreadable,
        Err(IdempotencyError::AlreadyInProgress {
            in_progress_expiry_ms,
            ..
        }) => Answer::InProgress(in_progress_expiry_ms),
        Err(other) => Answer::Other(other.to_string()),
    }
}

fn payload(id: &str, copy: Copy) -> Value {
    let amount = match copy {
        Copy::Genuine => 10,
        Copy::Tampered => 99_999,
    };
    json!({"eventId": id, "eventType": "OrderPlaced", "eventVersion": 1,
           "data": {"orderId": "o-7", "amount": amount}})
}

/// Every sequence of genuine and tampered copies, one to four long.
fn sequences() -> Vec<Vec<Copy>> {
    (1..=4u32)
        .flat_map(|len| {
            (0..1u32 << len).map(move |bits| {
                (0..len)
                    .map(|i| {
                        if bits & (1 << i) == 0 {
                            Copy::Genuine
                        } else {
                            Copy::Tampered
                        }
                    })
                    .collect()
            })
        })
        .collect()
}

/// The state of a key already in the store before the batch (a new key is tested apart).
#[derive(Clone, Copy, Debug)]
enum Before {
    Completed,
    Unreadable,
    InProgressElsewhere,
}

async fn prepare<S: IdempotencyStore>(
    layer: &Layer<S>,
    clock: &ManualClock,
    id: &str,
    before: Before,
) {
    let genuine = payload(id, Copy::Genuine);
    match before {
        Before::Completed => {
            let stored = layer
                .run(&genuine, "first", WINDOW, || async { Ok::<u64, Boom>(7) })
                .await;
            assert!(matches!(stored, Ok(7)), "{stored:?}");
        }
        Before::Unreadable => {
            // Stored as text: the batch's handler returns a number, so it cannot be read.
            let stored = layer
                .run(&genuine, "first", WINDOW, || async {
                    Ok::<String, Boom>("seven".into())
                })
                .await;
            assert!(matches!(&stored, Ok(text) if text == "seven"), "{stored:?}");
        }
        Before::InProgressElsewhere => {
            let now_ms = clock.now_ms();
            let claim = IdempotencyRecord {
                key: layer.key_for(&genuine).expect("a key"),
                status: Status::InProgress,
                expiration: now_ms / 1000 + 3600,
                in_progress_expiry_ms: Some(now_ms + 120_000),
                result: None,
                payload_hash: layer.payload_hash(&genuine),
                owner: Some("another-delivery".into()),
            };
            let claimed = layer.store().claim(&claim, now_ms).await;
            assert!(
                matches!(claimed, Ok(ClaimOutcome::Claimed { .. })),
                "{claimed:?}"
            );
        }
    }
}

/// The answers per-record mode gives the copies, delivered one after the other.
async fn per_record<S: IdempotencyStore>(
    layer: &Layer<S>,
    id: &str,
    copies: &[Copy],
    runs: &AtomicUsize,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    for (n, copy) in copies.iter().enumerate() {
        let result = layer
            .execute(&payload(id, *copy), &format!("p{n}"), WINDOW, || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<u64, Boom>(7)
            })
            .await;
        answers.push(answer(result));
    }
    answers
}

/// The answers the batched mode gives the copies, in one batch.
async fn batched<S: IdempotencyStore>(
    layer: &Layer<S>,
    id: &str,
    copies: &[Copy],
    runs: &AtomicUsize,
) -> Vec<Answer> {
    let payloads: Vec<Value> = copies.iter().map(|copy| payload(id, *copy)).collect();
    let ids: Vec<String> = (0..copies.len()).map(|n| format!("b{n}")).collect();
    let entries: Vec<BatchEntry> = payloads
        .iter()
        .zip(&ids)
        .map(|(payload, record_id)| BatchEntry {
            payload,
            record_id,
            remaining: WINDOW,
        })
        .collect();
    layer
        .execute_batch(&entries, |_| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<u64, Boom>(7)
        })
        .await
        .into_iter()
        .map(answer)
        .collect()
}

pub async fn batched_copies_of_a_key_get_their_per_record_answers_in_every_order<
    S: IdempotencyStore + 'static,
>(
    store: S,
) {
    let (layer, clock) = layer(store, orders().validate_payload("data"));
    for before in [
        Before::Completed,
        Before::Unreadable,
        Before::InProgressElsewhere,
    ] {
        // The key's state is the same for every sequence: nothing below changes it.
        let id = format!("{before:?}");
        prepare(&layer, &clock, &id, before).await;
        let runs = AtomicUsize::new(0);
        for copies in sequences() {
            let expected = per_record(&layer, &id, &copies, &runs).await;
            let got = batched(&layer, &id, &copies, &runs).await;
            assert_eq!(got, expected, "{before:?}, copies {copies:?}");
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "{before:?}: no handler runs"
        );
    }
    // A new key: the first copy runs and the later ones answer from its record, as they do
    // when delivered one after the other per record.
    for (n, copies) in sequences().into_iter().enumerate() {
        let (reference_runs, batch_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let expected = per_record(&layer, &format!("new-p{n}"), &copies, &reference_runs).await;
        let got = batched(&layer, &format!("new-b{n}"), &copies, &batch_runs).await;
        assert_eq!(got, expected, "new key, copies {copies:?}");
        assert_eq!(batch_runs.load(Ordering::SeqCst), 1, "copies {copies:?}");
    }
    // The answers themselves, for one order of each state, so that the comparison above
    // cannot pass on two wrong modes.
    let runs = AtomicUsize::new(0);
    let order = [Copy::Tampered, Copy::Genuine];
    assert_eq!(
        batched(&layer, "Completed", &order, &runs).await,
        [Answer::PayloadValidation, Answer::Replayed(7)]
    );
    assert_eq!(
        batched(&layer, "Unreadable", &order, &runs).await,
        [Answer::PayloadValidation, Answer::StoredResultUnreadable]
    );
    let window = clock.now_ms();
    let in_progress = batched(&layer, "InProgressElsewhere", &order, &runs).await;
    assert_eq!(in_progress[0], Answer::PayloadValidation);
    assert!(
        matches!(in_progress[1], Answer::InProgress(Some(expiry)) if expiry > window),
        "{in_progress:?}"
    );
}
