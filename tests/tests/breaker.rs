//! Circuit breakers sharing their state through DynamoDB Local, with the real SDK: each
//! breaker has its own client, as each execution environment does. Times come from a
//! `ManualClock` started at the system time (the store is given every instant, so DynamoDB
//! sees the same conditions it would in real time), so probes fall due without sleeping.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use eventkit::breaker::{
    conformance, Breaker, BreakerConfig, BreakerError, BreakerStore, CircuitState,
    DynamoDbBreakerStore,
};
use eventkit::idempotency::ManualClock;
use eventkit_tests::LocalCloud;

const NAME: &str = "payment-provider";

fn config() -> BreakerConfig {
    BreakerConfig::new(NAME)
        .with_threshold(3)
        .with_probe_interval(Duration::from_secs(30), Duration::from_secs(300))
        .with_probe_lease(Duration::from_secs(20))
}

/// An execution environment: a breaker with a client of its own on `table`.
async fn environment(table: &str, clock: &ManualClock) -> Breaker {
    let client = LocalCloud::connect().await.dynamodb;
    Breaker::new(config(), DynamoDbBreakerStore::new(client, table)).with_clock(clock.clone())
}

async fn fail(breaker: &Breaker, times: usize) {
    for _ in 0..times {
        let result = breaker
            .call(|| async { Err::<(), _>(io::Error::other("provider timed out")) })
            .await;
        assert!(result.is_err());
    }
}

async fn item_count(cloud: &LocalCloud, table: &str) -> i32 {
    cloud
        .dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("Scan")
        .count()
}

async fn stored_state(table: &str) -> Option<eventkit::breaker::BreakerRecord> {
    let store = DynamoDbBreakerStore::new(LocalCloud::connect().await.dynamodb, table);
    store.get(NAME).await.expect("GetItem")
}

#[tokio::test]
async fn the_dynamodb_store_passes_the_conformance_checks() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_breaker_table("breaker-conformance").await;
    let store = DynamoDbBreakerStore::new(cloud.dynamodb.clone(), &table);
    conformance::check_store(&store).await.unwrap();
    // Run again on the same table: the checks use breakers of their own.
    conformance::check_store(&store).await.unwrap();
}

#[tokio::test]
async fn a_closed_circuit_makes_no_request_to_its_table() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_breaker_table("breaker-closed").await;
    let clock = ManualClock::at_system_time();
    let breaker = environment(&table, &clock).await;
    for _ in 0..200 {
        breaker
            .call(|| async { Ok::<_, io::Error>(()) })
            .await
            .unwrap();
    }
    // Failures below the threshold read the table, and write nothing either.
    fail(&breaker, 2).await;
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(item_count(&cloud, &table).await, 0);
}

#[tokio::test]
async fn an_open_circuit_is_seen_by_another_environment_after_one_failure() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_breaker_table("breaker-shared").await;
    let clock = ManualClock::at_system_time();
    let first = environment(&table, &clock).await;
    fail(&first, 3).await;
    assert_eq!(first.state(), CircuitState::Open);
    let record = stored_state(&table)
        .await
        .expect("the open state is stored");
    assert_eq!(record.state, CircuitState::Open);
    let next_probe = record
        .next_probe_ms
        .expect("an open circuit has a probe time");

    let second = environment(&table, &clock).await;
    fail(&second, 1).await;
    assert_eq!(second.state(), CircuitState::Open);
    let calls = AtomicUsize::new(0);
    let refused = second
        .call(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, io::Error>(())
        })
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    match refused {
        Err(BreakerError::Open(open)) => assert!(open.retry_at_ms >= next_probe),
        other => panic!("expected the circuit open, got {other:?}"),
    }
    assert_eq!(second.take_metrics().opened, 0, "adopted, not opened again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_eight_concurrent_environments_wins_the_probe() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_breaker_table("breaker-probe").await;
    let clock = ManualClock::at_system_time();
    let mut environments = Vec::new();
    for _ in 0..8 {
        environments.push(environment(&table, &clock).await);
    }
    fail(&environments[0], 3).await;
    for environment in &environments[1..] {
        fail(environment, 1).await;
        assert_eq!(environment.state(), CircuitState::Open);
    }
    let next_probe = stored_state(&table)
        .await
        .and_then(|record| record.next_probe_ms)
        .expect("open");
    clock.set(next_probe);

    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = environments
        .iter()
        .cloned()
        .map(|breaker| {
            let calls = calls.clone();
            tokio::spawn(async move {
                breaker
                    .call(|| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // Long enough for every other claim to meet this one's lease.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Ok::<_, io::Error>(())
                    })
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.expect("task"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one probe call in all");
    assert_eq!(admitted, 1);
    let record = stored_state(&table).await.expect("stored");
    assert_eq!(record.state, CircuitState::Closed, "the probe succeeded");
    let probed: u64 = environments.iter().map(|e| e.take_metrics().probed).sum();
    assert_eq!(probed, 1);

    // The losers learn it when the lease has lapsed: their calls go through again.
    clock.advance(Duration::from_secs(20));
    for environment in &environments {
        environment
            .call(|| async { Ok::<_, io::Error>(()) })
            .await
            .unwrap();
        assert_eq!(environment.state(), CircuitState::Closed);
    }
}

#[tokio::test]
async fn a_failed_probe_reopens_for_every_environment_and_a_lapsed_lease_is_taken_over() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_breaker_table("breaker-reopen").await;
    let clock = ManualClock::at_system_time();
    let (first, second) = (
        environment(&table, &clock).await,
        environment(&table, &clock).await,
    );
    fail(&first, 3).await;
    fail(&second, 1).await;
    let due = stored_state(&table)
        .await
        .and_then(|r| r.next_probe_ms)
        .expect("open");
    clock.set(due);
    fail(&first, 1).await; // the probe, failed
    let reopened = stored_state(&table).await.expect("stored");
    assert_eq!(
        (reopened.state, reopened.failed_probes),
        (CircuitState::Open, 1)
    );
    let next = reopened.next_probe_ms.expect("a later probe");
    assert!(
        next >= due + 30_000,
        "the second wait is at least the interval"
    );

    // The second environment's probe claim, once due, wins; it dies mid-call.
    clock.set(next);
    let killed = tokio::time::timeout(
        Duration::from_millis(500),
        second.call(futures::future::pending::<Result<(), io::Error>>),
    )
    .await;
    assert!(killed.is_err());
    assert_eq!(
        stored_state(&table).await.map(|r| r.state),
        Some(CircuitState::HalfOpen)
    );
    // The first takes the probe over once the lease lapsed, and closes the circuit.
    clock.advance(Duration::from_secs(20));
    first
        .call(|| async { Ok::<_, io::Error>(()) })
        .await
        .unwrap();
    assert_eq!(
        stored_state(&table).await.map(|r| r.state),
        Some(CircuitState::Closed)
    );
}

/// A DynamoDB client for an endpoint where nothing listens, failing fast (no retries).
fn unreachable_client(cloud: &LocalCloud) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&cloud.config)
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build(),
    )
}

#[tokio::test]
async fn a_breaker_whose_table_is_unreachable_still_opens_refuses_and_probes_on_its_own() {
    let cloud = LocalCloud::connect().await;
    let clock = ManualClock::at_system_time();
    let breaker = Breaker::new(
        config(),
        DynamoDbBreakerStore::new(unreachable_client(&cloud), "breakers"),
    )
    .with_clock(clock.clone());
    let calls = AtomicUsize::new(0);
    let counted = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, io::Error>(())
    };
    fail(&breaker, 1).await;
    breaker
        .call(counted)
        .await
        .expect("the failed read refuses nothing");
    fail(&breaker, 3).await;
    assert_eq!(breaker.state(), CircuitState::Open);
    let retry_at = match breaker.call(counted).await {
        Err(BreakerError::Open(open)) => open.retry_at_ms,
        other => panic!("expected the circuit open, got {other:?}"),
    };
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    clock.set(retry_at);
    breaker
        .call(counted)
        .await
        .expect("its own timer admits the probe");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(breaker.state(), CircuitState::Closed);
    let metrics = breaker.take_metrics();
    assert_eq!((metrics.opened, metrics.closed), (1, 1));
    assert!(metrics.fail_open >= 3, "{metrics:?}");
}
