//! The backoff schedule with a seeded coin: bounds, growth, cap, off, the failures it leaves
//! alone, and the time it guarantees before a record's last receive.

use std::time::Duration;

use super::*;
use crate::batch::{ErrorClass, FailureKind, RecordFailure};

const NOW_MS: u64 = 1_700_000_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn failure(class: ErrorClass, kind: FailureKind) -> RecordFailure {
    RecordFailure {
        class,
        kind,
        reason: "x".into(),
        retry_at_ms: None,
    }
}

fn transient() -> RecordFailure {
    failure(ErrorClass::Transient, FailureKind::Error)
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// `draws` delays after receive `receive`, from a seeded coin.
fn draws(backoff: &RecordBackoff, receive: u32, draws: usize, seed: u64) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..draws)
        .map(|_| {
            backoff
                .delay(&transient(), Some(receive), NOW_MS, &mut rng)
                .unwrap()
        })
        .collect()
}

#[test]
fn waits_lie_between_half_the_ceiling_and_the_ceiling_and_double_per_receive() {
    let backoff = RecordBackoff::new(secs(3), secs(60));
    for (receive, ceiling) in [(1, 3), (2, 6), (3, 12), (4, 24), (5, 48)] {
        let delays = draws(&backoff, receive, 400, u64::from(receive));
        let (low, high) = (secs(ceiling) / 2, secs(ceiling));
        assert!(
            delays.iter().all(|d| *d >= low && *d <= high),
            "receive {receive}: outside {low:?}..={high:?}"
        );
        // Jitter: the draws spread over the range, not one value for every record.
        let least = delays.iter().min().unwrap();
        let most = delays.iter().max().unwrap();
        assert!(
            *most - *least > (high - low) * 3 / 4,
            "receive {receive}: {least:?}..{most:?}"
        );
    }
}

#[test]
fn waits_stop_growing_at_the_cap() {
    let backoff = RecordBackoff::new(secs(3), secs(60));
    for receive in [6, 7, 20, u32::MAX] {
        let delays = draws(&backoff, receive, 200, 5);
        assert!(
            delays.iter().all(|d| *d >= secs(30) && *d <= secs(60)),
            "receive {receive}"
        );
    }
    // No cap beyond what SQS accepts, and no base above the cap.
    let huge = RecordBackoff::new(secs(100_000), secs(100_000))
        .backoff()
        .unwrap();
    assert_eq!(
        (huge.base(), huge.cap()),
        (SQS_MAX_VISIBILITY, SQS_MAX_VISIBILITY)
    );
}

#[test]
fn the_same_seed_draws_the_same_schedule() {
    let backoff = RecordBackoff::default();
    assert_eq!(draws(&backoff, 3, 20, 42), draws(&backoff, 3, 20, 42));
    assert_ne!(draws(&backoff, 3, 20, 42), draws(&backoff, 3, 20, 43));
}

#[test]
fn a_record_without_a_receive_count_waits_as_on_its_first_receive() {
    let backoff = RecordBackoff::new(secs(10), secs(600));
    let mut rng = fastrand::Rng::with_seed(1);
    let delay = backoff.delay(&transient(), None, NOW_MS, &mut rng).unwrap();
    assert!(delay >= secs(5) && delay <= secs(10), "{delay:?}");
}

#[test]
fn off_delays_nothing() {
    let off = RecordBackoff::off();
    let mut rng = fastrand::Rng::with_seed(1);
    assert_eq!(off.delay(&transient(), Some(3), NOW_MS, &mut rng), None);
    assert_eq!(off.backoff(), None);
    // Off, a record's receives are the queue's visibility timeouts.
    assert_eq!(off.guaranteed_before(5, secs(100)), secs(400));
    assert_eq!(off.longest_wait(secs(100)), secs(100));
}

#[test]
fn poison_and_records_never_attempted_keep_the_queues_visibility_timeout() {
    let backoff = RecordBackoff::default();
    let mut rng = fastrand::Rng::with_seed(1);
    let left_alone = [
        failure(ErrorClass::Permanent, FailureKind::Error),
        failure(ErrorClass::Transient, FailureKind::DeadlineReached),
        failure(ErrorClass::Transient, FailureKind::SkippedAfterGroupFailure),
        failure(ErrorClass::Transient, FailureKind::SkippedAfterBatchStopped),
    ];
    for failure in left_alone {
        assert_eq!(
            backoff.delay(&failure, Some(2), NOW_MS, &mut rng),
            None,
            "{failure:?}"
        );
    }
    let panicked = failure(ErrorClass::Transient, FailureKind::Panicked);
    assert!(backoff
        .delay(&panicked, Some(2), NOW_MS, &mut rng)
        .is_some());
}

#[test]
fn a_dependency_unavailable_comes_back_past_its_probe_and_never_sooner_than_the_backoff() {
    let backoff = RecordBackoff::new(secs(60), secs(7200));
    let mut rng = fastrand::Rng::with_seed(1);
    let mut rejected = failure(ErrorClass::Transient, FailureKind::DependencyUnavailable);
    // The breaker's next probe is 10 minutes away: past the backoff of an early receive.
    rejected.retry_at_ms = Some(NOW_MS + 600_000);
    for _ in 0..100 {
        let delay = backoff.delay(&rejected, Some(1), NOW_MS, &mut rng).unwrap();
        assert!(delay >= secs(600) && delay <= secs(601), "{delay:?}");
    }
    // A probe due sooner than the backoff of a late receive: the backoff's floor holds, so
    // the receives still span the outage.
    rejected.retry_at_ms = Some(NOW_MS + 5_000);
    for _ in 0..100 {
        let delay = backoff.delay(&rejected, Some(5), NOW_MS, &mut rng).unwrap();
        assert!(delay >= secs(480) && delay <= secs(960), "{delay:?}");
    }
}

#[test]
fn a_key_in_progress_comes_back_just_after_its_claim_lapses() {
    let backoff = RecordBackoff::default();
    let mut rng = fastrand::Rng::with_seed(1);
    let mut in_progress = failure(ErrorClass::Transient, FailureKind::InProgress);
    in_progress.retry_at_ms = Some(NOW_MS + 12_000);
    for _ in 0..100 {
        // Whatever the receive count: the claim's expiry, not the backoff, says when.
        let delay = backoff
            .delay(&in_progress, Some(7), NOW_MS, &mut rng)
            .unwrap();
        assert!(delay >= secs(13) && delay <= secs(14), "{delay:?}");
    }
    // A claim already lapsed: back at once, give or take the margin.
    in_progress.retry_at_ms = Some(NOW_MS - 5_000);
    let delay = backoff
        .delay(&in_progress, Some(1), NOW_MS, &mut rng)
        .unwrap();
    assert!(delay >= secs(1) && delay <= secs(2), "{delay:?}");
    // Its expiry unknown: the backoff.
    in_progress.retry_at_ms = None;
    let delay = backoff
        .delay(&in_progress, Some(3), NOW_MS, &mut rng)
        .unwrap();
    assert!(delay >= secs(120) && delay <= secs(240), "{delay:?}");
}

/// The defaults against the template's queues (maxReceiveCount 10, visibility 100 s): a
/// record that fails transiently on every receive has its tenth and last receive at least
/// 3 hours after its first, however the coin falls; nine receives would not be enough.
#[test]
fn the_defaults_span_three_hours_before_the_tenth_receive() {
    let backoff = RecordBackoff::default();
    let visibility = secs(100);
    let guaranteed = backoff.guaranteed_before(10, visibility);
    assert_eq!(
        guaranteed,
        secs(30 + 60 + 120 + 240 + 480 + 960 + 1920 + 3600 + 3600)
    );
    assert!(guaranteed >= 3 * HOUR, "{guaranteed:?}");
    assert!(backoff.guaranteed_before(9, visibility) < 3 * HOUR);
    // The same with the draws themselves: the unluckiest of many schedules still spans it.
    let mut rng = fastrand::Rng::with_seed(2025);
    let shortest = (0..1_000)
        .map(|_| {
            (1..10)
                .map(|receive| {
                    backoff
                        .delay(&transient(), Some(receive), NOW_MS, &mut rng)
                        .unwrap()
                })
                .sum::<Duration>()
        })
        .min()
        .unwrap();
    assert!(shortest >= guaranteed, "{shortest:?} < {guaranteed:?}");
    // Without backoff, the same queue gives up after 15 minutes.
    assert_eq!(
        RecordBackoff::off().guaranteed_before(10, visibility),
        secs(900)
    );
    // And a record is held back at most the cap between two receives.
    assert_eq!(backoff.longest_wait(visibility), 2 * HOUR);
}

#[cfg(feature = "sqs")]
mod sqs_batches {
    use aws_lambda_events::sqs::{SqsEvent, SqsMessage};

    use super::*;
    use crate::batch::{BatchOutcome, RecordOutcome};

    fn message(id: &str, receive_count: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.into());
        message.receipt_handle = Some(format!("handle-{id}"));
        message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:q".into());
        message
            .attributes
            .insert("ApproximateReceiveCount".into(), receive_count.into());
        message
    }

    #[test]
    fn only_the_transient_failures_of_a_batch_are_delayed_by_their_own_receive_count() {
        let mut event = SqsEvent::default();
        event.records = vec![
            message("ok", "1"),
            message("down", "4"),
            message("poison", "2"),
        ];
        let outcome = BatchOutcome {
            records: vec![
                RecordOutcome {
                    id: "ok".into(),
                    result: Ok(()),
                },
                RecordOutcome {
                    id: "down".into(),
                    result: Err(transient()),
                },
                RecordOutcome {
                    id: "poison".into(),
                    result: Err(failure(ErrorClass::Permanent, FailureKind::Error)),
                },
            ],
            duration: Duration::ZERO,
        };
        let backoff = RecordBackoff::new(secs(10), secs(600));
        let mut rng = fastrand::Rng::with_seed(8);
        let delayed = send_back::delays(&backoff, &event, &outcome, NOW_MS, &mut rng);
        assert_eq!(delayed.len(), 1, "{delayed:?}");
        let record = &delayed[0];
        assert_eq!(record.message_id, "down");
        assert_eq!(record.receipt_handle, "handle-down");
        assert_eq!(record.queue_arn, "arn:aws:sqs:us-east-1:000000000000:q");
        // Fourth receive: between 40 and 80 s.
        assert!(
            record.delay >= secs(40) && record.delay <= secs(80),
            "{:?}",
            record.delay
        );
    }
}
