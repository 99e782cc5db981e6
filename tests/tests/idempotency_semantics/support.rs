//! What every scenario uses: the layer on a manual clock, sample events, handlers that
//! count their runs, deliveries held mid-flight, and a store wrapper that counts and fails.

pub use std::collections::HashMap;
pub use std::fmt::Debug;
pub use std::future::Future;
pub use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
pub use std::sync::Arc;
pub use std::time::Duration;

pub use eventkit::idempotency::{
    ClaimOutcome, Clock, DynamoDbStore, Idempotency, IdempotencyConfig, IdempotencyError,
    IdempotencyRecord, IdempotencyStore, InMemoryStore, ManualClock, MissingKeyPolicy, Status,
    StoreError, SystemClock,
};
pub use eventkit_tests::LocalCloud;
pub use futures::StreamExt;
pub use serde::de::DeserializeOwned;
pub use serde::Serialize;
pub use serde_json::{json, Value};
pub use tokio::sync::{oneshot, Barrier};
pub use tokio::task::JoinHandle;

pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
pub struct Boom;

pub async fn dynamodb_store() -> DynamoDbStore {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_idempotency_table("idem").await;
    DynamoDbStore::new(cloud.dynamodb.clone(), table)
}

pub fn layer<S: IdempotencyStore>(
    store: S,
    config: IdempotencyConfig,
) -> (Arc<Idempotency<S>>, ManualClock) {
    let clock = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let layer = Idempotency::new(store, config).with_clock(clock.clone());
    (Arc::new(layer), clock)
}

pub fn orders() -> IdempotencyConfig {
    IdempotencyConfig::new("orders")
}

pub fn event(id: &str) -> Value {
    json!({
        "eventId": id, "eventType": "OrderPlaced", "eventVersion": 1,
        "data": {"orderId": "o-7", "amount": 10}
    })
}

/// A handler that counts its runs and returns `value`.
pub fn counted<T>(runs: &AtomicUsize, value: T) -> impl Future<Output = Result<T, Boom>> {
    runs.fetch_add(1, Ordering::SeqCst);
    std::future::ready(Ok(value))
}

pub async fn stored<S: IdempotencyStore>(
    layer: &Idempotency<S>,
    payload: &Value,
) -> Option<IdempotencyRecord> {
    let key = layer.key_for(payload).expect("the payload has a key");
    layer.store().get(&key).await.expect("reading the record")
}

/// A delivery running in its own task, whose handler says when it has started and then
/// holds its claim until told to finish.
pub struct Held<T> {
    pub started: oneshot::Receiver<()>,
    pub finish: oneshot::Sender<()>,
    pub task: JoinHandle<Result<T, IdempotencyError<Boom>>>,
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Held<T> {
    pub fn spawn<S: IdempotencyStore + 'static>(
        layer: &Arc<Idempotency<S>>,
        payload: &Value,
        record_id: &str,
        remaining: Duration,
        outcome: Result<T, Boom>,
    ) -> Self {
        let (started_tx, started) = oneshot::channel();
        let (finish, finish_rx) = oneshot::channel::<()>();
        let (layer, payload, record_id) = (layer.clone(), payload.clone(), record_id.to_string());
        let task = tokio::spawn(async move {
            layer
                .run(&payload, &record_id, remaining, || async move {
                    let _ = started_tx.send(());
                    let _ = finish_rx.await;
                    outcome
                })
                .await
        });
        Self {
            started,
            finish,
            task,
        }
    }

    /// Waits until the handler runs, which means the claim is written.
    pub async fn wait_started(&mut self) {
        (&mut self.started)
            .await
            .expect("the delivery claimed the key and started its handler");
    }

    /// Lets the handler return, and gives the delivery's outcome.
    pub async fn finish(self) -> Result<T, IdempotencyError<Boom>> {
        let _ = self.finish.send(());
        self.task.await.expect("the delivery task")
    }

    /// Stops the delivery mid-handler, as Lambda does at the deadline: its claim stays.
    pub async fn crash(self) {
        self.task.abort();
        assert!(self.task.await.is_err_and(|error| error.is_cancelled()));
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Claim = 0,
    Complete = 1,
    Release = 2,
    Get = 3,
}

/// A store wrapper that counts each operation, and fails the chosen ones the way a
/// throttled DynamoDB does (after the SDK's retries).
pub struct Probe<S> {
    pub inner: S,
    pub calls: [AtomicUsize; 4],
    pub throttled: [AtomicBool; 4],
}

impl<S> Probe<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Default::default(),
            throttled: Default::default(),
        }
    }

    pub fn calls(&self, op: Op) -> usize {
        self.calls[op as usize].load(Ordering::SeqCst)
    }

    pub fn total_calls(&self) -> usize {
        self.calls.iter().map(|n| n.load(Ordering::SeqCst)).sum()
    }

    pub fn throttle(&self, op: Op, throttled: bool) {
        self.throttled[op as usize].store(throttled, Ordering::SeqCst);
    }

    pub fn enter(&self, op: Op) -> Result<(), StoreError> {
        self.calls[op as usize].fetch_add(1, Ordering::SeqCst);
        if self.throttled[op as usize].load(Ordering::SeqCst) {
            return Err(StoreError::Throttled {
                message: format!("{op:?}: rate exceeded"),
            });
        }
        Ok(())
    }
}

impl<S: IdempotencyStore> IdempotencyStore for Probe<S> {
    async fn claim(
        &self,
        record: &IdempotencyRecord,
        now_ms: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.enter(Op::Claim)?;
        self.inner.claim(record, now_ms).await
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> Result<(), StoreError> {
        self.enter(Op::Complete)?;
        self.inner.complete(key, owner, result, expiration).await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.enter(Op::Release)?;
        self.inner.release(key, owner).await
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.enter(Op::Get)?;
        self.inner.get(key).await
    }
}
