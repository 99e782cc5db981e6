//! The batch semantics on in-memory records: which records run, in what order, and what is
//! reported. The same processor against real SQS is in `tests/tests/batch_sqs.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::events::{EventRecord, Source};
use crate::idempotency::{Clock, ManualClock};

fn record(id: &str, group: Option<&str>) -> EventRecord {
    EventRecord::new(id, Source::Sqs, id).with_message_group_id(group.map(String::from))
}

fn standard(ids: &[&str]) -> Vec<EventRecord> {
    ids.iter().map(|id| record(id, None)).collect()
}

fn later() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

/// A handler that fails the records whose body starts with "fail", panics on "panic", and
/// logs the order in which records ran.
fn scripted(
    ran: Arc<Mutex<Vec<String>>>,
) -> impl Fn(EventRecord) -> std::future::Ready<Result<String, RecordError>> {
    move |record: EventRecord| {
        let id = record.id().to_string();
        if let Ok(mut ran) = ran.lock() {
            ran.push(id.clone());
        }
        if id.starts_with("panic") {
            panic!("boom in {id}");
        }
        std::future::ready(if id.starts_with("fail") {
            Err(RecordError::permanent(format!("{id} is poison")))
        } else {
            Ok(id)
        })
    }
}

fn ran_log() -> Arc<Mutex<Vec<String>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn ran(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    log.lock().map(|ran| ran.clone()).unwrap_or_default()
}

#[tokio::test]
async fn the_response_lists_exactly_the_failed_records() {
    let log = ran_log();
    let outcome = BatchProcessor::default()
        .process(
            standard(&["a", "fail-b", "c", "fail-d"]),
            later(),
            scripted(log.clone()),
        )
        .await;
    let response = outcome.sqs_response(AllFailedPolicy::ReportAll).unwrap();
    let ids: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(ids, ["fail-b", "fail-d"]);
    assert_eq!(outcome.succeeded(), 2);
    let (_, failure) = outcome.failures().next().unwrap();
    assert_eq!(failure.class, ErrorClass::Permanent);
    assert_eq!(failure.reason, "fail-b is poison");
}

#[tokio::test]
async fn a_panic_fails_its_record_only() {
    let log = ran_log();
    let outcome = BatchProcessor::default()
        .process(
            standard(&["a", "panic-b", "c"]),
            later(),
            scripted(log.clone()),
        )
        .await;
    assert_eq!(outcome.failed_ids(), ["panic-b"]);
    let (_, failure) = outcome.failures().next().unwrap();
    assert_eq!(failure.kind, FailureKind::Panicked);
    assert!(
        failure.reason.contains("boom in panic-b"),
        "{}",
        failure.reason
    );
    assert_eq!(outcome.succeeded(), 2);
}

#[tokio::test]
async fn records_run_concurrently_up_to_the_limit() {
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = |_: EventRecord| {
        let (running, peak) = (running.clone(), peak.clone());
        async move {
            use std::sync::atomic::Ordering::SeqCst;
            let now = running.fetch_add(1, SeqCst) + 1;
            peak.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            running.fetch_sub(1, SeqCst);
            Ok::<_, RecordError>(())
        }
    };
    let ids: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
    let records = ids.iter().map(|id| record(id, None)).collect();
    let outcome = BatchProcessor::new(BatchConfig::default().with_max_concurrency(3))
        .process(records, later(), handler)
        .await;
    assert_eq!(outcome.succeeded(), 12);
    assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 3);
}

fn fifo_batch() -> Vec<EventRecord> {
    vec![
        record("g1-1", Some("g1")),
        record("g2-1", Some("g2")),
        record("fail-g1-2", Some("g1")),
        record("g2-2", Some("g2")),
        record("g1-3", Some("g1")),
        record("g2-3", Some("g2")),
    ]
}

#[tokio::test]
async fn fifo_skip_group_keeps_order_and_lets_other_groups_go_on() {
    let log = ran_log();
    let outcome = BatchProcessor::default()
        .process(fifo_batch(), later(), scripted(log.clone()))
        .await;
    assert_eq!(outcome.failed_ids(), ["fail-g1-2", "g1-3"]);
    let kinds: Vec<_> = outcome.failures().map(|(_, f)| f.kind.clone()).collect();
    assert_eq!(
        kinds,
        [FailureKind::Error, FailureKind::SkippedAfterGroupFailure]
    );
    let ran = ran(&log);
    assert!(
        !ran.contains(&"g1-3".to_string()),
        "skipped record ran: {ran:?}"
    );
    // Within each group, records ran in arrival order.
    let g2: Vec<_> = ran.iter().filter(|id| id.starts_with("g2")).collect();
    assert_eq!(g2, ["g2-1", "g2-2", "g2-3"]);
}

#[tokio::test]
async fn fifo_stop_batch_runs_nothing_after_the_first_failure() {
    let log = ran_log();
    let outcome = BatchProcessor::new(BatchConfig::default().with_fifo(FifoPolicy::StopBatch))
        .process(fifo_batch(), later(), scripted(log.clone()))
        .await;
    assert_eq!(outcome.failed_ids(), ["fail-g1-2", "g2-2", "g1-3", "g2-3"]);
    assert_eq!(ran(&log), ["g1-1", "g2-1", "fail-g1-2"]);
    let skipped = outcome
        .failures()
        .filter(|(_, f)| f.kind == FailureKind::SkippedAfterBatchStopped)
        .count();
    assert_eq!(skipped, 3);
}

#[tokio::test]
async fn records_not_started_before_the_margin_are_reported_not_run() {
    // Time is the processor's clock, moved by the handler: each record "takes" 600 ms.
    let clock = ManualClock::new(1_700_000_000_000);
    let log = ran_log();
    let slow_log = log.clone();
    let handler_clock = clock.clone();
    let handler = move |record: EventRecord| {
        let log = slow_log.clone();
        let clock = handler_clock.clone();
        async move {
            if let Ok(mut ran) = log.lock() {
                ran.push(record.id().to_string());
            }
            clock.advance(Duration::from_millis(600));
            Ok::<_, RecordError>(())
        }
    };
    // One at a time, 600 ms each, 1400 ms before the deadline with a 400 ms margin: the first
    // two start (1400 and 800 ms left), the third would start with 200 ms left and must not.
    let config = BatchConfig::default()
        .with_max_concurrency(1)
        .with_deadline_margin(Duration::from_millis(400));
    let deadline = Deadline::from_epoch_ms(clock.now_ms() + 1400);
    let outcome = BatchProcessor::new(config)
        .with_clock(clock.clone())
        .process(standard(&["a", "b", "c", "d"]), deadline, handler)
        .await;
    assert_eq!(ran(&log), ["a", "b"]);
    assert_eq!(outcome.failed_ids(), ["c", "d"]);
    assert!(outcome
        .failures()
        .all(|(_, f)| f.kind == FailureKind::DeadlineReached && f.class == ErrorClass::Transient));
}

#[test]
fn the_time_left_is_counted_from_the_given_instant() {
    let deadline = Deadline::from_epoch_ms(10_000);
    assert_eq!(deadline.remaining_at(9_250), Duration::from_millis(750));
    assert_eq!(deadline.remaining_at(10_000), Duration::ZERO);
    assert_eq!(deadline.remaining_at(12_000), Duration::ZERO);
}

#[tokio::test]
async fn when_all_fail_the_response_reports_all_or_errors_by_policy() {
    let log = ran_log();
    let outcome = BatchProcessor::default()
        .process(standard(&["fail-a", "fail-b"]), later(), scripted(log))
        .await;
    let response = outcome.sqs_response(AllFailedPolicy::ReportAll).unwrap();
    assert_eq!(response.batch_item_failures.len(), 2);
    match outcome.sqs_response(AllFailedPolicy::Error) {
        Err(BatchError::AllFailed {
            count, first_id, ..
        }) => {
            assert_eq!(count, 2);
            assert_eq!(first_id, "fail-a");
        }
        other => panic!("expected AllFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn direct_invocations_fail_when_any_record_fails() {
    let log = ran_log();
    let processor = BatchProcessor::default();
    let good = processor
        .process(standard(&["a"]), later(), scripted(log.clone()))
        .await;
    assert!(good.require_all_succeeded().is_ok());
    let bad = processor
        .process(standard(&["a", "fail-b"]), later(), scripted(log))
        .await;
    let error = bad.require_all_succeeded().unwrap_err();
    assert!(error.to_string().contains("fail-b"), "{error}");
}

#[tokio::test]
async fn an_empty_batch_succeeds_with_an_empty_response() {
    let outcome = BatchProcessor::default()
        .process(Vec::new(), later(), scripted(ran_log()))
        .await;
    let response = outcome.sqs_response(AllFailedPolicy::Error).unwrap();
    assert!(response.batch_item_failures.is_empty());
}

fn failed(first_id: &str, first_reason: &str) -> String {
    BatchError::RecordsFailed {
        failed: 1,
        total: 2,
        first_id: first_id.into(),
        first_reason: first_reason.into(),
    }
    .to_string()
}

#[test]
fn a_failure_names_its_record_exactly_once() {
    // The idempotency layer's errors name the record inside the sentence.
    assert_eq!(
        failed("m-1", "handler for record m-1 ran but its unit of work under idempotency key k was not committed; nothing of it happened"),
        "1 of 2 records failed; first: handler for record m-1 ran but its unit of work under idempotency key k was not committed; nothing of it happened"
    );
    assert_eq!(
        failed(
            "m-1",
            "idempotency key k is already in progress (record m-1)"
        ),
        "1 of 2 records failed; first: idempotency key k is already in progress (record m-1)"
    );
    // A decode error's reason starts with it.
    assert_eq!(
        failed("m-1", "record m-1: invalid JSON: EOF"),
        "1 of 2 records failed; first: record m-1: invalid JSON: EOF"
    );
    // A handler's own error does not name it: the prefix does.
    assert_eq!(
        failed("m-1", "card declined"),
        "1 of 2 records failed; first: record m-1: card declined"
    );
    // Another record's id that merely starts with this one's is not this one.
    assert_eq!(
        failed("m-1", "clashes with record m-10"),
        "1 of 2 records failed; first: record m-1: clashes with record m-10"
    );
}
