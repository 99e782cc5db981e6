//! [`GuardedStore`]: an idempotency store whose every request goes through a circuit
//! breaker, so that while the table is down the idempotency layer stops calling it (and
//! records fail at once, to come back after the breaker's next probe) instead of every
//! record waiting for the SDK's timeouts and retries.
//!
//! The breaker counts what says the table is down (throttling, a network failure, a
//! missing table) and not what says it answered (a fenced write, a malformed record, an
//! item over the limits). A request refused by the open circuit is
//! [`StoreError::Unavailable`], which the idempotency layer turns into a record error
//! retried after the probe
//! ([`FailureKind::DependencyUnavailable`](crate::batch::FailureKind::DependencyUnavailable)).
//! A batch request counts once: as a failure when every one of its results says the table
//! is down.

use std::future::Future;

use super::{ClaimOutcome, Completion, IdempotencyStore, Release};
use crate::batch::{Classify, ErrorClass};
use crate::breaker::{Breaker, BreakerError};
use crate::idempotency::error::StoreError;
use crate::idempotency::record::IdempotencyRecord;

/// `store` with each request guarded by `breaker` (an `idempotency-store` breaker, whose
/// [`BreakerLayer`](crate::breaker::BreakerLayer) gate can then refuse records before any
/// claim is attempted).
///
/// ```
/// use eventkit::breaker::{Breaker, BreakerConfig};
/// use eventkit::idempotency::{GuardedStore, IdempotencyConfig, IdempotencyLayer, InMemoryStore};
///
/// let table = Breaker::in_memory(BreakerConfig::new("idempotency-store"));
/// let layer = IdempotencyLayer::new(
///     GuardedStore::new(InMemoryStore::new(), table.clone()),
///     IdempotencyConfig::new("orders"),
/// );
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct GuardedStore<S> {
    store: S,
    breaker: Breaker,
}

impl<S> GuardedStore<S> {
    /// Guards `store`'s requests with `breaker`.
    pub fn new(store: S, breaker: Breaker) -> Self {
        Self { store, breaker }
    }

    /// The guarded store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

/// A store error as the breaker counts it.
struct Counted(StoreError);

impl Classify for Counted {
    fn class(&self) -> ErrorClass {
        if says_unavailable(&self.0) {
            ErrorClass::Transient
        } else {
            ErrorClass::Permanent
        }
    }
}

/// Whether `error` says the table is down, rather than that it answered.
fn says_unavailable(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::TableMissing { .. }
            | StoreError::Throttled { .. }
            | StoreError::Other { .. }
            | StoreError::Unavailable { .. }
    )
}

/// The results of a batch request whose every result says the table is down.
struct Outage<T>(Vec<Result<T, StoreError>>);

impl<T> Classify for Outage<T> {}

impl<S: IdempotencyStore> GuardedStore<S> {
    /// One request through the breaker (the outbox's transactional completion uses it too).
    pub(crate) async fn one<T, Fut>(&self, request: impl FnOnce() -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let guarded = self
            .breaker
            .call(|| async { request().await.map_err(Counted) })
            .await;
        match guarded {
            Ok(value) => Ok(value),
            Err(BreakerError::Inner(Counted(error))) => Err(error),
            Err(BreakerError::Open(open)) => Err(StoreError::Unavailable {
                breaker: open.breaker,
                retry_at_ms: open.retry_at_ms,
            }),
        }
    }

    pub(crate) async fn many<T, Fut>(
        &self,
        count: usize,
        request: impl FnOnce() -> Fut,
    ) -> Vec<Result<T, StoreError>>
    where
        Fut: Future<Output = Vec<Result<T, StoreError>>>,
    {
        let guarded = self
            .breaker
            .call(|| async {
                let results = request().await;
                let outage = !results.is_empty()
                    && results
                        .iter()
                        .all(|result| result.as_ref().is_err_and(says_unavailable));
                if outage {
                    Err(Outage(results))
                } else {
                    Ok(results)
                }
            })
            .await;
        match guarded {
            Ok(results) | Err(BreakerError::Inner(Outage(results))) => results,
            Err(BreakerError::Open(open)) => (0..count)
                .map(|_| {
                    Err(StoreError::Unavailable {
                        breaker: open.breaker.clone(),
                        retry_at_ms: open.retry_at_ms,
                    })
                })
                .collect(),
        }
    }
}

impl<S: IdempotencyStore> IdempotencyStore for GuardedStore<S> {
    async fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.one(|| self.store.claim(record, now_ms)).await
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> Result<(), StoreError> {
        self.one(|| self.store.complete(key, owner, result, expiration))
            .await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.one(|| self.store.release(key, owner)).await
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.one(|| self.store.get(key)).await
    }

    async fn claim_many(
        &self,
        records: &[IdempotencyRecord],
        now_ms: u64,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        self.many(records.len(), || self.store.claim_many(records, now_ms))
            .await
    }

    async fn complete_many(&self, completions: &[Completion]) -> Vec<Result<(), StoreError>> {
        self.many(completions.len(), || self.store.complete_many(completions))
            .await
    }

    async fn release_many(&self, releases: &[Release]) -> Vec<Result<(), StoreError>> {
        self.many(releases.len(), || self.store.release_many(releases))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::batch::{FailureKind, RecordError};
    use crate::breaker::{BreakerConfig, CircuitState};
    use crate::clock::ManualClock;
    use crate::idempotency::record::Status;
    use crate::idempotency::{Idempotency, IdempotencyConfig, IdempotencyError, InMemoryStore};

    const T0: u64 = 1_700_000_000_000;

    /// The in-memory store, throttled while `down`, counting the requests that reach it.
    #[derive(Default)]
    struct Table {
        store: InMemoryStore,
        down: AtomicBool,
        requests: AtomicUsize,
    }

    impl Table {
        fn answer<T>(&self, answer: Result<T, StoreError>) -> Result<T, StoreError> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Throttled {
                    message: "rate exceeded".into(),
                });
            }
            answer
        }
    }

    impl IdempotencyStore for Table {
        async fn claim(
            &self,
            record: &IdempotencyRecord,
            now_ms: u64,
        ) -> Result<ClaimOutcome, StoreError> {
            let answer = self.store.claim(record, now_ms).await;
            self.answer(answer)
        }
        async fn complete(
            &self,
            key: &str,
            owner: &str,
            result: &str,
            expiration: u64,
        ) -> Result<(), StoreError> {
            let answer = self.store.complete(key, owner, result, expiration).await;
            self.answer(answer)
        }
        async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
            let answer = self.store.release(key, owner).await;
            self.answer(answer)
        }
        async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
            let answer = self.store.get(key).await;
            self.answer(answer)
        }
    }

    fn claim(key: &str, owner: &str) -> IdempotencyRecord {
        IdempotencyRecord {
            key: key.into(),
            status: Status::InProgress,
            expiration: T0 / 1000 + 3600,
            in_progress_expiry_ms: Some(T0 + 30_000),
            result: None,
            payload_hash: None,
            owner: Some(owner.into()),
        }
    }

    fn guarded(
        table: &std::sync::Arc<Table>,
        clock: &ManualClock,
    ) -> GuardedStore<std::sync::Arc<Table>> {
        let breaker = Breaker::in_memory(BreakerConfig::new("idempotency-store").with_threshold(2))
            .with_clock(clock.clone());
        GuardedStore::new(table.clone(), breaker)
    }

    #[tokio::test]
    async fn a_table_down_opens_the_breaker_and_is_no_longer_called() {
        let table = std::sync::Arc::new(Table::default());
        let clock = ManualClock::new(T0);
        let store = guarded(&table, &clock);
        table.down.store(true, Ordering::SeqCst);
        for n in 0..2 {
            let failed = store.claim(&claim(&format!("k{n}"), "a"), T0).await;
            assert!(matches!(failed, Err(StoreError::Throttled { .. })));
        }
        assert_eq!(store.breaker().state(), CircuitState::Open);
        let refused = store.claim(&claim("k9", "a"), T0).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable { .. })),
            "{refused:?}"
        );
        let batch = store
            .claim_many(&[claim("x", "a"), claim("y", "a")], T0)
            .await;
        assert!(batch
            .iter()
            .all(|r| matches!(r, Err(StoreError::Unavailable { .. }))));
        assert_eq!(
            table.requests.load(Ordering::SeqCst),
            2,
            "the open circuit sent nothing"
        );
    }

    #[tokio::test]
    async fn answers_of_a_live_table_do_not_count() {
        let table = std::sync::Arc::new(Table::default());
        let clock = ManualClock::new(T0);
        let store = guarded(&table, &clock);
        for _ in 0..5 {
            assert!(matches!(store.release("absent", "a").await, Ok(())));
            store.claim(&claim("k", "a"), T0).await.unwrap();
            assert!(matches!(
                store.complete("k", "b", "1", 9).await,
                Err(StoreError::Fenced)
            ));
            store.release("k", "a").await.unwrap();
        }
        assert_eq!(store.breaker().state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn a_record_refused_by_the_open_circuit_comes_back_after_the_probe() {
        let table = std::sync::Arc::new(Table::default());
        let clock = ManualClock::new(T0);
        let store = guarded(&table, &clock);
        table.down.store(true, Ordering::SeqCst);
        let idempotency =
            Idempotency::new(store, IdempotencyConfig::new("orders")).with_clock(clock.clone());
        let payload = serde_json::json!({"eventId": "e-1"});
        for _ in 0..3 {
            let outcome: Result<u32, IdempotencyError<RecordError>> = idempotency
                .run(&payload, "m-1", Duration::from_secs(30), || async { Ok(1) })
                .await;
            let error = RecordError::from(outcome.unwrap_err());
            assert_eq!(error.class(), crate::batch::ErrorClass::Transient);
            if error.kind() == FailureKind::DependencyUnavailable {
                assert!(error.retry_at_ms().is_some_and(|at| at > T0));
                return;
            }
        }
        panic!("the third delivery should have been refused by the open circuit");
    }
}
