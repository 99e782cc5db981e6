//! What every scenario uses: the layer on a manual clock, sample events, handlers that
//! count their runs, deliveries held mid-flight, and a store wrapper that counts and fails.

pub use std::collections::HashMap;
pub use std::fmt::Debug;
pub use std::future::Future;
pub use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
pub use std::sync::Arc;
pub use std::time::Duration;

pub use eventkit::idempotency::{
    BatchEntry, ClaimOutcome, Clock, DynamoDbStore, Idempotency, IdempotencyConfig,
    IdempotencyError, IdempotencyRecord, IdempotencyStore, InMemoryStore, ManualClock,
    MissingKeyPolicy, Outcome, Status, StoreError, SystemClock, DEFAULT_RECORD_TTL,
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

/// How a scenario's deliveries reach the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One by one: `Idempotency::execute`.
    PerRecord,
    /// Each as a batch of one through the batched mode: `Idempotency::execute_batch`.
    Batched,
}

tokio::task_local! {
    /// The mode of the scenario running on this task (set by `for_both_stores!`).
    pub static MODE: Mode;
}

/// The layer under test: an `Idempotency` (it derefs to it) whose `execute` and `run`
/// deliver in the scenario's mode, read when the layer is made, so that the deliveries of
/// tasks it spawns keep it.
pub struct Layer<S> {
    inner: Idempotency<S>,
    mode: Mode,
}

impl<S> std::ops::Deref for Layer<S> {
    type Target = Idempotency<S>;

    fn deref(&self) -> &Idempotency<S> {
        &self.inner
    }
}

impl<S: IdempotencyStore> Layer<S> {
    /// `Idempotency::execute`, or the same delivery as a batch of one.
    pub async fn execute<F, Fut, T, E>(
        &self,
        payload: &Value,
        record_id: &str,
        remaining: Duration,
        handler: F,
    ) -> Result<Outcome<T>, IdempotencyError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned,
    {
        match self.mode {
            Mode::PerRecord => {
                self.inner
                    .execute(payload, record_id, remaining, handler)
                    .await
            }
            Mode::Batched => {
                let handler = std::sync::Mutex::new(Some(handler));
                let entries = [BatchEntry {
                    payload,
                    record_id,
                    remaining,
                }];
                let mut results = self
                    .inner
                    .execute_batch(&entries, |_| {
                        let handler = handler.lock().unwrap().take();
                        handler.expect("a batch of one runs its handler once")()
                    })
                    .await;
                results.remove(0)
            }
        }
    }

    /// `Idempotency::run`, in the scenario's mode.
    pub async fn run<F, Fut, T, E>(
        &self,
        payload: &Value,
        record_id: &str,
        remaining: Duration,
        handler: F,
    ) -> Result<T, IdempotencyError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned,
    {
        self.execute(payload, record_id, remaining, handler)
            .await
            .map(Outcome::into_inner)
    }
}

pub fn layer<S: IdempotencyStore>(
    store: S,
    config: IdempotencyConfig,
) -> (Arc<Layer<S>>, ManualClock) {
    let clock = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let inner = Idempotency::new(store, config).with_clock(clock.clone());
    let mode = MODE.try_with(|mode| *mode).unwrap_or(Mode::PerRecord);
    (Arc::new(Layer { inner, mode }), clock)
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
        layer: &Arc<Layer<S>>,
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
