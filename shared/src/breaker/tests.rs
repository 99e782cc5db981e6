//! The breaker's behaviour on the in-memory store and a manual clock: several breakers on one
//! shared store play several execution environments.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::store::ErasedStore;
use super::*;
use crate::batch::{BatchConfig, BatchProcessor, Deadline, ErrorClass, FailureKind, RecordError};
use crate::clock::{Clock, ManualClock};
use crate::events::{EventRecord, Source};
use crate::handler::{Handler, Invocation, Json, RecordHandler, RecordHandlerExt};

const T0: u64 = 1_700_000_000_000;
const NAME: &str = "payment-provider";

fn config() -> BreakerConfig {
    BreakerConfig::new(NAME)
        .with_threshold(3)
        .with_probe_interval(Duration::from_secs(60), Duration::from_secs(600))
        .with_probe_lease(Duration::from_secs(20))
        .with_retry_spread(Duration::from_secs(10))
}

/// An environment: a breaker on `store`, its clock `clock`, its coin seeded with `seed`.
fn environment(store: &Arc<InMemoryBreakerStore>, clock: &ManualClock, seed: u64) -> Breaker {
    Breaker::new(config(), store.clone())
        .with_clock(clock.clone())
        .with_rng_seed(seed)
}

fn down() -> io::Error {
    io::Error::other("connection refused")
}

/// A call that counts itself and returns `result`.
async fn call(
    breaker: &Breaker,
    calls: &AtomicUsize,
    result: Result<(), io::Error>,
) -> Result<(), BreakerError<io::Error>> {
    breaker
        .call(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            result
        })
        .await
}

async fn fail_times(breaker: &Breaker, times: usize) {
    let calls = AtomicUsize::new(0);
    for _ in 0..times {
        let _ = call(breaker, &calls, Err(down())).await;
    }
}

fn open_error(result: Result<(), BreakerError<io::Error>>) -> BreakerOpen {
    match result {
        Err(BreakerError::Open(open)) => open,
        other => panic!("expected the circuit open, got {other:?}"),
    }
}

async fn stored(store: &InMemoryBreakerStore) -> BreakerRecord {
    BreakerStore::get(store, NAME).await.unwrap().unwrap()
}

#[tokio::test]
async fn opens_after_the_threshold_and_then_makes_no_call() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let breaker = environment(&store, &clock, 1);
    fail_times(&breaker, 2).await;
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert!(store.is_empty(), "a closed circuit writes nothing");
    fail_times(&breaker, 1).await;
    assert_eq!(breaker.state(), CircuitState::Open);
    let record = stored(&store).await;
    assert_eq!(record.state, CircuitState::Open);
    let next_probe = record.next_probe_ms.unwrap();
    // Equal jitter below the interval: 30 to 60 s after opening.
    assert!(
        (T0 + 30_000..=T0 + 60_000).contains(&next_probe),
        "{next_probe}"
    );

    let calls = AtomicUsize::new(0);
    let open = open_error(call(&breaker, &calls, Ok(())).await);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "an open circuit calls nothing"
    );
    assert_eq!(open.breaker, NAME);
    // Past the probe, by at most the retry spread.
    assert!(
        (next_probe..=next_probe + 10_000).contains(&open.retry_at_ms),
        "{} vs {next_probe}",
        open.retry_at_ms
    );
    let metrics = breaker.take_metrics();
    assert_eq!((metrics.opened, metrics.rejected), (1, 1));
}

#[tokio::test]
async fn permanent_errors_do_not_count_and_a_success_resets_the_count() {
    let clock = ManualClock::new(T0);
    let breaker = Breaker::in_memory(config()).with_clock(clock.clone());
    let calls = AtomicUsize::new(0);
    for _ in 0..10 {
        let poison = breaker
            .call(|| async { Err::<(), _>(serde_json::from_str::<u32>("x").unwrap_err()) })
            .await;
        assert!(matches!(poison, Err(BreakerError::Inner(_))));
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail_times(&breaker, 2).await;
    call(&breaker, &calls, Ok(())).await.unwrap();
    fail_times(&breaker, 2).await;
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "the success reset the count"
    );
    fail_times(&breaker, 1).await;
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test]
async fn failures_further_apart_than_the_window_start_the_count_again() {
    let clock = ManualClock::new(T0);
    let breaker = Breaker::new(
        config().with_failure_window(Duration::from_secs(10)),
        InMemoryBreakerStore::new(),
    )
    .with_clock(clock.clone());
    for _ in 0..5 {
        fail_times(&breaker, 2).await;
        clock.advance(Duration::from_secs(11));
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail_times(&breaker, 3).await;
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test]
async fn the_same_seed_draws_the_same_probe_and_retry_times() {
    let draw = |seed| async move {
        let store = Arc::new(InMemoryBreakerStore::new());
        let breaker = environment(&store, &ManualClock::new(T0), seed);
        fail_times(&breaker, 3).await;
        let calls = AtomicUsize::new(0);
        let open = open_error(call(&breaker, &calls, Ok(())).await);
        (stored(&store).await.next_probe_ms, open.retry_at_ms)
    };
    assert_eq!(draw(7).await, draw(7).await);
    assert_ne!(draw(7).await, draw(8).await);
}

#[tokio::test]
async fn a_new_environment_adopts_an_open_circuit_after_one_failure() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let first = environment(&store, &clock, 1);
    fail_times(&first, 3).await;
    let second = environment(&store, &clock, 2);
    fail_times(&second, 1).await;
    assert_eq!(second.state(), CircuitState::Open);
    assert_eq!(
        second.take_metrics().opened,
        0,
        "the first environment opened it"
    );
}

#[tokio::test]
async fn a_closed_environment_reads_the_shared_state_at_most_once_per_interval() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let (first, second) = (
        environment(&store, &clock, 1),
        environment(&store, &clock, 2),
    );
    let calls = AtomicUsize::new(0);
    fail_times(&second, 1).await; // read: nothing there
    call(&second, &calls, Ok(())).await.unwrap();
    fail_times(&first, 3).await;
    fail_times(&second, 1).await;
    assert_eq!(
        second.state(),
        CircuitState::Closed,
        "read less than 10 s ago"
    );
    clock.advance(Duration::from_secs(10));
    fail_times(&second, 1).await;
    assert_eq!(second.state(), CircuitState::Open);
}

/// Opens the circuit in `environments[0]`, makes the others adopt it, and moves the clock
/// past the probe time.
async fn open_everywhere(store: &InMemoryBreakerStore, clock: &ManualClock, all: &[Breaker]) {
    fail_times(&all[0], 3).await;
    for environment in &all[1..] {
        fail_times(environment, 1).await;
        assert_eq!(environment.state(), CircuitState::Open);
    }
    clock.set(stored(store).await.next_probe_ms.unwrap());
}

#[tokio::test]
async fn exactly_one_of_many_environments_wins_the_probe() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let all: Vec<Breaker> = (0..8)
        .map(|seed| environment(&store, &clock, seed))
        .collect();
    open_everywhere(&store, &clock, &all).await;

    let calls = AtomicUsize::new(0);
    let results = futures::future::join_all(all.iter().map(|environment| {
        environment.call(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, io::Error>(())
        })
    }))
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one probe call in all");
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 1);
    let probed: u64 = all.iter().map(|e| e.take_metrics().probed).sum();
    assert_eq!(probed, 1);
}

#[tokio::test]
async fn a_successful_probe_closes_the_circuit_everywhere() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let all: Vec<Breaker> = (0..3)
        .map(|seed| environment(&store, &clock, seed))
        .collect();
    open_everywhere(&store, &clock, &all).await;
    let calls = AtomicUsize::new(0);
    // While the probe is in flight, another environment's claim loses to its lease.
    let (release, released) = futures::channel::oneshot::channel::<()>();
    let probe = all[1].call(|| async {
        calls.fetch_add(1, Ordering::SeqCst);
        let _ = released.await;
        Ok::<_, io::Error>(())
    });
    let loser = async {
        let lost = call(&all[2], &calls, Ok(())).await;
        let _ = release.send(());
        lost
    };
    let (probed, lost) = futures::join!(probe, loser);
    probed.unwrap();
    assert!(lost.is_err());
    assert_eq!(all[1].state(), CircuitState::Closed);
    assert_eq!(stored(&store).await.state, CircuitState::Closed);
    // The loser learns the outcome on its next check, when the lease has lapsed.
    assert!(all[2].check().is_err());
    clock.advance(Duration::from_secs(20));
    call(&all[2], &calls, Ok(())).await.unwrap();
    call(&all[0], &calls, Ok(())).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(all.iter().all(|e| e.state() == CircuitState::Closed));
    assert_eq!(all[1].take_metrics().closed, 1);
}

#[tokio::test]
async fn a_failed_probe_reopens_until_a_later_probe() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let all: Vec<Breaker> = (0..2)
        .map(|seed| environment(&store, &clock, seed))
        .collect();
    open_everywhere(&store, &clock, &all).await;
    let probe_at = clock.now_ms();
    let calls = AtomicUsize::new(0);
    assert!(matches!(
        call(&all[0], &calls, Err(down())).await,
        Err(BreakerError::Inner(_))
    ));
    let record = stored(&store).await;
    assert_eq!(
        (record.state, record.failed_probes),
        (CircuitState::Open, 1)
    );
    // The second wait is drawn below twice the interval: 60 to 120 s.
    let next = record.next_probe_ms.unwrap();
    assert!(
        (probe_at + 60_000..=probe_at + 120_000).contains(&next),
        "{next}"
    );
    // The other environment, at the end of the lease, finds the circuit open again.
    clock.advance(Duration::from_secs(20));
    let open = open_error(call(&all[1], &calls, Ok(())).await);
    assert!(open.retry_at_ms >= next);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(all[0].take_metrics().reopened, 1);
}

#[tokio::test]
async fn a_lapsed_probe_lease_is_taken_over() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let all: Vec<Breaker> = (0..2)
        .map(|seed| environment(&store, &clock, seed))
        .collect();
    open_everywhere(&store, &clock, &all).await;
    // The probe's environment dies mid-call: its claim is written, its outcome never.
    let killed = all[0]
        .call(futures::future::pending::<Result<(), io::Error>>)
        .now_or_never();
    assert!(killed.is_none());
    assert_eq!(stored(&store).await.state, CircuitState::HalfOpen);
    let calls = AtomicUsize::new(0);
    assert!(
        call(&all[1], &calls, Ok(())).await.is_err(),
        "the lease is live"
    );
    clock.advance(Duration::from_secs(20));
    call(&all[1], &calls, Ok(())).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(stored(&store).await.state, CircuitState::Closed);
}

#[tokio::test]
async fn a_probe_that_fails_permanently_is_handed_back() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let breaker = environment(&store, &clock, 1);
    fail_times(&breaker, 3).await;
    clock.set(stored(&store).await.next_probe_ms.unwrap());
    let poison = breaker
        .call(|| async { Err::<(), _>(serde_json::from_str::<u32>("x").unwrap_err()) })
        .await;
    assert!(matches!(poison, Err(BreakerError::Inner(_))));
    let record = stored(&store).await;
    assert_eq!(
        (record.state, record.failed_probes),
        (CircuitState::Open, 0)
    );
    let calls = AtomicUsize::new(0);
    call(&breaker, &calls, Ok(())).await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// A store whose every request fails, as DynamoDB does when it is down.
struct Unreachable {
    requests: AtomicUsize,
}

impl Unreachable {
    fn fail<T>(&self) -> Result<T, BreakerStoreError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Err(BreakerStoreError::Unavailable {
            message: "dispatch failure: connection refused".into(),
            source: None,
        })
    }
}

impl BreakerStore for Unreachable {
    async fn get(&self, _: &str) -> Result<Option<BreakerRecord>, BreakerStoreError> {
        self.fail()
    }
    async fn open(&self, _: &BreakerRecord) -> Result<OpenOutcome, BreakerStoreError> {
        self.fail()
    }
    async fn claim_probe(
        &self,
        _: &str,
        _: &str,
        _: u64,
        _: u64,
    ) -> Result<ProbeClaim, BreakerStoreError> {
        self.fail()
    }
    async fn resolve_probe(&self, _: &BreakerRecord, _: &str) -> Result<(), BreakerStoreError> {
        self.fail()
    }
}

#[tokio::test]
async fn an_unreachable_store_leaves_the_decision_to_this_environment() {
    let store = Arc::new(Unreachable {
        requests: AtomicUsize::new(0),
    });
    let clock = ManualClock::new(T0);
    let breaker = Breaker::new(config(), store.clone()).with_clock(clock.clone());
    let calls = AtomicUsize::new(0);
    // The failed shared read after the first failure blocks nothing.
    let _ = call(&breaker, &calls, Err(down())).await;
    call(&breaker, &calls, Ok(())).await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
    // Its own failures open it, and it refuses calls on its own.
    fail_times(&breaker, 3).await;
    assert_eq!(breaker.state(), CircuitState::Open);
    let open = open_error(call(&breaker, &calls, Ok(())).await);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Its own timer admits the probe, whose success closes it.
    clock.set(open.retry_at_ms);
    call(&breaker, &calls, Ok(())).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(breaker.state(), CircuitState::Closed);
    let metrics = breaker.take_metrics();
    assert_eq!((metrics.opened, metrics.probed, metrics.closed), (1, 0, 1));
    assert!(metrics.fail_open >= 3, "{metrics:?}");
    assert!(store.requests.load(Ordering::SeqCst) >= 3);
}

fn records(count: usize) -> Vec<EventRecord> {
    (1..=count)
        .map(|n| EventRecord::new(format!("m-{n}"), Source::Sqs, format!("{{\"n\": {n}}}")))
        .collect()
}

fn invocation() -> Invocation {
    Invocation::new(Deadline::after(Duration::from_secs(30)))
}

#[tokio::test]
async fn the_gate_stops_the_rest_of_a_batch_once_the_circuit_opens() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let breaker = environment(&store, &clock, 1);
    let calls = Arc::new(AtomicUsize::new(0));
    let (guarded, counted) = (breaker.clone(), calls.clone());
    let handler = Handler::new(move |Json(_): Json<serde_json::Value>| {
        let (breaker, calls) = (guarded.clone(), counted.clone());
        async move {
            breaker
                .call(|| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(down())
                })
                .await
        }
    })
    .layer(BreakerLayer::new([breaker.clone()]));
    // One record at a time, so that "the rest of the batch" is well defined.
    let processor = BatchProcessor::new(BatchConfig::default().with_max_concurrency(1))
        .with_clock(clock.clone());

    let outcome = handler
        .handle_batch(records(6), &invocation(), &processor)
        .await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "records 4 to 6 were not attempted"
    );
    let next_probe = stored(&store).await.next_probe_ms.unwrap();
    let failures: Vec<_> = outcome.failures().collect();
    assert_eq!(failures.len(), 6);
    for (id, failure) in &failures[..3] {
        assert_eq!(failure.kind, FailureKind::Error, "{id}");
    }
    for (id, failure) in &failures[3..] {
        assert_eq!(failure.class, ErrorClass::Transient, "{id}");
        assert_eq!(failure.kind, FailureKind::DependencyUnavailable, "{id}");
        let retry_at = failure.retry_at_ms.unwrap();
        assert!(
            (next_probe..=next_probe + 10_000).contains(&retry_at),
            "{id}: {retry_at}"
        );
        assert!(failure.reason.contains(NAME), "{id}: {}", failure.reason);
    }

    // A batch that arrives while the circuit is open: no record is attempted.
    let outcome = handler
        .handle_batch(records(4), &invocation(), &processor)
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(outcome
        .failures()
        .all(|(_, failure)| failure.kind == FailureKind::DependencyUnavailable));
    assert_eq!(outcome.failed(), 4);
    assert_eq!(breaker.take_metrics().rejected, 7);

    // A single record is gated too.
    let refused = handler.handle(&records(1)[0], &invocation()).await;
    assert!(matches!(refused, Err(error) if error.retry_at_ms().is_some()));
}

#[tokio::test]
async fn the_gate_lets_records_through_once_the_probe_is_due() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let breaker = environment(&store, &clock, 1);
    fail_times(&breaker, 3).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let (guarded, counted) = (breaker.clone(), calls.clone());
    let handler = Handler::new(move |Json(_): Json<serde_json::Value>| {
        let (breaker, calls) = (guarded.clone(), counted.clone());
        async move {
            breaker
                .call(|| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, io::Error>(())
                })
                .await
        }
    })
    .layer(BreakerLayer::new([breaker.clone()]));
    clock.set(stored(&store).await.next_probe_ms.unwrap());
    let processor = BatchProcessor::new(BatchConfig::default().with_max_concurrency(1))
        .with_clock(clock.clone());
    let outcome = handler
        .handle_batch(records(3), &invocation(), &processor)
        .await;
    assert_eq!(outcome.succeeded(), 3, "{:?}", outcome.failed_ids());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test]
async fn the_record_error_of_an_open_circuit_carries_its_retry_instant() {
    let breaker = Breaker::in_memory(config()).with_clock(ManualClock::new(T0));
    fail_times(&breaker, 3).await;
    let handled: Result<(), RecordError> = async {
        breaker.call(|| async { Ok::<_, io::Error>(()) }).await?;
        Ok(())
    }
    .await;
    let error = handled.unwrap_err();
    assert_eq!(error.kind(), FailureKind::DependencyUnavailable);
    assert!(error.retry_at_ms().is_some_and(|at| at > T0 + 30_000));
}

#[tokio::test]
async fn both_stores_pass_the_conformance_checks() {
    conformance::check_store(&InMemoryBreakerStore::new())
        .await
        .unwrap();
    conformance::check_store(&Arc::new(InMemoryBreakerStore::new()))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_claims_on_one_store_have_one_winner() {
    let store = InMemoryBreakerStore::new();
    BreakerStore::open(&store, &BreakerRecord::open(NAME, T0, 0, T0))
        .await
        .unwrap();
    let erased: &dyn ErasedStore = &store;
    let owners: Vec<String> = (0..16).map(|n| format!("env-{n}")).collect();
    let claims = futures::future::join_all(
        owners
            .iter()
            .map(|owner| erased.claim_probe(NAME, owner, T0 + 20_000, T0)),
    )
    .await;
    let won = claims
        .iter()
        .filter(|claim| matches!(claim, Ok(ProbeClaim::Won(_))))
        .count();
    assert_eq!(won, 1);
}

#[tokio::test]
async fn a_step_failing_with_record_errors_counts_its_transient_ones_and_is_refused_when_open() {
    let store = Arc::new(InMemoryBreakerStore::new());
    let clock = ManualClock::new(T0);
    let breaker = environment(&store, &clock, 3);
    let calls = AtomicUsize::new(0);
    let step = |error: RecordError| {
        let calls = &calls;
        breaker.call_record(move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(error)
        })
    };
    // Poison does not count; three transient failures open the circuit.
    for _ in 0..3 {
        let _ = step(RecordError::permanent("event too large")).await;
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    for _ in 0..3 {
        let _ = step(RecordError::transient("bus unavailable")).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(calls.load(Ordering::SeqCst), 6);

    let refused = step(RecordError::transient("never called"))
        .await
        .expect_err("refused");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        6,
        "an open circuit calls nothing"
    );
    assert_eq!(refused.kind(), FailureKind::DependencyUnavailable);
    assert_eq!(refused.class(), ErrorClass::Transient);
    let next_probe = stored(&store).await.next_probe_ms.unwrap();
    assert!(refused.retry_at_ms().is_some_and(|at| at >= next_probe));
}
