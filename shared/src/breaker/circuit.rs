//! [`Breaker`]: one dependency's circuit in this execution environment, over the shared
//! record in its store. The local state machine is here; the rules on the shared record are
//! on [`BreakerRecord`]; the requests are the store's.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::config::BreakerConfig;
use super::error::{BreakerError, BreakerOpen};
use super::metrics::{BreakerMetrics, Counters};
use super::record::{BreakerRecord, CircuitState};
use super::store::{
    BreakerStore, BreakerStoreError, ErasedStore, InMemoryBreakerStore, OpenOutcome, ProbeClaim,
};
use crate::batch::{Classify, ErrorClass, RecordError};
use crate::clock::{saturating_millis, Clock, SystemClock};

/// A circuit breaker for one dependency: a cheap handle (clones share the circuit) to give
/// both to the handler, which guards its calls with [`call`](Self::call), and to a
/// [`BreakerLayer`](super::BreakerLayer), which refuses records while the circuit is open.
///
/// ```
/// use eventkit::breaker::{Breaker, BreakerConfig, BreakerError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let payments = Breaker::in_memory(BreakerConfig::new("payment-provider"));
/// let charged: Result<u32, BreakerError<std::io::Error>> =
///     payments.call(|| async { Ok(4200) }).await;
/// assert_eq!(charged.unwrap(), 4200);
/// # }
/// ```
#[derive(Clone)]
pub struct Breaker {
    config: Arc<BreakerConfig>,
    store: Arc<dyn ErasedStore>,
    clock: Arc<dyn Clock>,
    local: Arc<Mutex<Local>>,
    rng: Arc<Mutex<fastrand::Rng>>,
    counters: Arc<Counters>,
    metrics_service: Option<Arc<str>>,
}

/// This environment's view of the circuit.
#[derive(Debug)]
struct Local {
    circuit: Circuit,
    /// Bumped by every transition, so that a store's answer that comes back after another
    /// transition (records run concurrently) is not applied over it.
    epoch: u64,
    /// When this environment last read the shared record after a failure.
    last_shared_check_ms: Option<u64>,
    /// Failed probes since the circuit opened (the next probe waits longer).
    failed_probes: u32,
}

#[derive(Debug)]
enum Circuit {
    Closed {
        failures: u32,
        last_failure_ms: u64,
    },
    /// Calls refused until `until_ms`; then the next call tries to claim the probe.
    Open {
        until_ms: u64,
    },
    /// This environment holds the probe (or is claiming it); other calls are refused until
    /// the lease lapses. `shared`: the probe was claimed in the store (false: fail-open).
    Probing {
        owner: String,
        lease_expiry_ms: u64,
        shared: bool,
    },
}

impl Local {
    fn transition(&mut self, circuit: Circuit) {
        self.circuit = circuit;
        self.epoch += 1;
    }

    fn closed() -> Circuit {
        Circuit::Closed {
            failures: 0,
            last_failure_ms: 0,
        }
    }
}

/// What a call was admitted as.
#[derive(Debug)]
enum Permit {
    Call,
    Probe { owner: String, shared: bool },
}

/// What a call said about its dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Success,
    /// A transient failure: the dependency's fault.
    Failure,
    /// A permanent failure: the input's fault, which says nothing of the dependency.
    Inconclusive,
}

/// What to ask the store after a call, decided under the lock and done after it.
enum Then {
    Nothing,
    Open {
        record: BreakerRecord,
        epoch: u64,
        failures: u32,
    },
    CheckShared {
        epoch: u64,
    },
}

impl Breaker {
    /// A breaker configured by `config` whose open state is shared through `store`, on the
    /// system clock.
    pub fn new(config: BreakerConfig, store: impl BreakerStore + 'static) -> Self {
        Self {
            config: Arc::new(config),
            store: Arc::new(store),
            clock: Arc::new(SystemClock),
            local: Arc::new(Mutex::new(Local {
                circuit: Local::closed(),
                epoch: 0,
                last_shared_check_ms: None,
                failed_probes: 0,
            })),
            rng: Arc::new(Mutex::new(fastrand::Rng::new())),
            counters: Arc::new(Counters::default()),
            metrics_service: None,
        }
    }

    /// A breaker whose state is this environment's alone (an [`InMemoryBreakerStore`] of
    /// its own): for local runs, tests, and dependencies not worth a shared record.
    pub fn in_memory(config: BreakerConfig) -> Self {
        Self::new(config, InMemoryBreakerStore::new())
    }

    /// Reads the time from `clock` (tests move a `ManualClock` instead of sleeping). Set it
    /// before cloning: clones made earlier keep their clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Draws the jitter (probe times, retry instants) from a coin seeded with `seed`, so
    /// that a test's draws are reproducible.
    #[must_use]
    pub fn with_rng_seed(mut self, seed: u64) -> Self {
        self.rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
        self
    }

    /// Writes this breaker's EMF line (see [`metrics`](super::metrics)) with `service` as a
    /// dimension: at once after each transition, and on [`flush_metrics`](Self::flush_metrics).
    /// Off by default, so that tests print nothing.
    #[must_use]
    pub fn with_metrics(mut self, service: impl Into<String>) -> Self {
        self.metrics_service = Some(service.into().into());
        self
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        self.config.name()
    }

    /// Its settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The circuit as this environment sees it (half-open while it holds the probe).
    pub fn state(&self) -> CircuitState {
        match self.local().circuit {
            Circuit::Closed { .. } => CircuitState::Closed,
            Circuit::Open { .. } => CircuitState::Open,
            Circuit::Probing { .. } => CircuitState::HalfOpen,
        }
    }

    /// Whether a call may be attempted now, from memory alone (no request): `Err` while the
    /// circuit is open and its probe not due, or while this environment's probe is in
    /// flight. Counted as a refusal ([`BREAKER_REJECTED`](super::BREAKER_REJECTED)). A due
    /// probe passes: the next [`call`](Self::call) claims it.
    pub fn check(&self) -> Result<(), BreakerOpen> {
        let now = self.now();
        let blocked = match &self.local().circuit {
            Circuit::Closed { .. } => None,
            Circuit::Open { until_ms } => Some(*until_ms).filter(|until| now < *until),
            Circuit::Probing {
                lease_expiry_ms, ..
            } => Some(*lease_expiry_ms).filter(|until| now < *until),
        };
        blocked.map_or(Ok(()), |until| Err(self.reject(until)))
    }

    /// Calls the dependency through the breaker. Closed: the call is made (no request to
    /// the store) and its outcome counted: a transient error counts as the dependency
    /// failing, a permanent one not at all, a success resets the count. Open:
    /// [`BreakerError::Open`], and the call is not made. Probe due: this environment tries
    /// to claim the probe (one conditional write); the winner makes the call, whose outcome
    /// closes or reopens the circuit for every environment.
    ///
    /// ```
    /// use eventkit::batch::RecordError;
    /// use eventkit::breaker::{Breaker, BreakerConfig};
    ///
    /// async fn charge(payments: &Breaker, cents: u64) -> Result<String, RecordError> {
    ///     // An open circuit: `?` fails the record transiently, retried after the probe.
    ///     let receipt = payments
    ///         .call(|| async { Ok::<_, std::io::Error>(format!("charged {cents}")) })
    ///         .await?;
    ///     Ok(receipt)
    /// }
    /// # let _ = charge;
    /// ```
    pub async fn call<T, E, F, Fut>(&self, call: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let permit = self.admit().await?;
        let result = call().await;
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(error) if error.class() == ErrorClass::Transient => Outcome::Failure,
            Err(_) => Outcome::Inconclusive,
        };
        self.settle(permit, outcome).await;
        result.map_err(BreakerError::Inner)
    }

    /// [`call`](Self::call) for a step that already fails with a [`RecordError`] (the
    /// outbox relay's publish): the error's class decides whether it counts against the
    /// dependency, and a refusal is a transient
    /// [`DependencyUnavailable`](crate::batch::FailureKind::DependencyUnavailable) record
    /// error with the probe's time.
    pub async fn call_record<T, F, Fut>(&self, call: F) -> Result<T, RecordError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, RecordError>>,
    {
        let permit = self
            .admit()
            .await
            .map_err(|open| RecordError::dependency_unavailable(open.retry_at_ms, open))?;
        let result = call().await;
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(error) if error.class() == ErrorClass::Transient => Outcome::Failure,
            Err(_) => Outcome::Inconclusive,
        };
        self.settle(permit, outcome).await;
        result
    }

    /// What happened since the last take (or flush): transitions and refusals. Taking
    /// resets the counts, so a dropped result loses them.
    #[must_use]
    pub fn take_metrics(&self) -> BreakerMetrics {
        self.counters.take()
    }

    /// With metrics on ([`with_metrics`](Self::with_metrics)), writes what happened since
    /// the last line as one EMF line, if anything did. Off, does nothing.
    pub fn flush_metrics(&self) {
        if let Some(service) = &self.metrics_service {
            let metrics = self.counters.take();
            if !metrics.is_empty() {
                println!("{}", metrics.to_emf(self.name(), Some(service)));
            }
        }
    }

    async fn admit(&self) -> Result<Permit, BreakerOpen> {
        let now = self.now();
        let (owner, lease_expiry_ms, epoch) = {
            let mut local = self.local();
            let blocked = match &local.circuit {
                Circuit::Closed { .. } => return Ok(Permit::Call),
                Circuit::Open { until_ms } => Some(*until_ms).filter(|until| now < *until),
                Circuit::Probing {
                    lease_expiry_ms, ..
                } => Some(*lease_expiry_ms).filter(|until| now < *until),
            };
            if let Some(until) = blocked {
                drop(local);
                return Err(self.reject(until));
            }
            // Due: marked as probing before the claim is sent, so that the records running
            // concurrently in this environment are refused instead of claiming too.
            let owner = uuid::Uuid::new_v4().to_string();
            let lease_expiry_ms = now.saturating_add(saturating_millis(self.config.probe_lease()));
            local.transition(Circuit::Probing {
                owner: owner.clone(),
                lease_expiry_ms,
                shared: true,
            });
            (owner, lease_expiry_ms, local.epoch)
        };
        let claimed = self
            .store
            .claim_probe(self.name(), &owner, lease_expiry_ms, now)
            .await;
        match claimed {
            Ok(ProbeClaim::Won(record)) => {
                self.local().failed_probes = record.failed_probes;
                Counters::add(&self.counters.probed);
                tracing::info!(breaker = %self.name(), transition = "open_to_half_open", failed_probes = record.failed_probes, lease_expiry_ms, "probe won: this environment makes the one call that decides the circuit");
                self.flush_metrics();
                Ok(Permit::Probe {
                    owner,
                    shared: true,
                })
            }
            Ok(ProbeClaim::Lost(record)) => {
                self.adopt(&record, epoch);
                match record.blocked_until_ms() {
                    None => {
                        tracing::info!(breaker = %self.name(), transition = "open_to_closed", adopted = true, "closed by another environment's probe: calls go through");
                        Ok(Permit::Call)
                    }
                    Some(until) => Err(self.reject(until)),
                }
            }
            Err(error) => {
                // Fail-open: the store cannot say who probes, so this environment probes on
                // its own timer rather than refusing calls for as long as its store is down.
                if let Circuit::Probing { shared, .. } = &mut self.local().circuit {
                    *shared = false;
                }
                self.fail_open("claim_probe", &error);
                Ok(Permit::Probe {
                    owner,
                    shared: false,
                })
            }
        }
    }

    async fn settle(&self, permit: Permit, outcome: Outcome) {
        match permit {
            Permit::Call => self.settle_call(outcome).await,
            Permit::Probe { owner, shared } => self.settle_probe(&owner, shared, outcome).await,
        }
    }

    async fn settle_call(&self, outcome: Outcome) {
        let now = self.now();
        let then = {
            let mut guard = self.local();
            let local = &mut *guard;
            match (&mut local.circuit, outcome) {
                (Circuit::Closed { failures, .. }, Outcome::Success) => {
                    *failures = 0;
                    Then::Nothing
                }
                (
                    Circuit::Closed {
                        failures,
                        last_failure_ms,
                    },
                    Outcome::Failure,
                ) => {
                    let window = saturating_millis(self.config.failure_window());
                    let consecutive = now.saturating_sub(*last_failure_ms) <= window;
                    *failures = if consecutive { *failures + 1 } else { 1 };
                    *last_failure_ms = now;
                    let failures = *failures;
                    if failures >= self.config.threshold() {
                        let next_probe_ms = now.saturating_add(self.probe_wait(1));
                        local.failed_probes = 0;
                        local.transition(Circuit::Open {
                            until_ms: next_probe_ms,
                        });
                        Then::Open {
                            record: BreakerRecord::open(self.name(), next_probe_ms, 0, now),
                            epoch: local.epoch,
                            failures,
                        }
                    } else if local.last_shared_check_ms.is_none_or(|at| {
                        now.saturating_sub(at)
                            >= saturating_millis(self.config.shared_check_interval())
                    }) {
                        local.last_shared_check_ms = Some(now);
                        Then::CheckShared { epoch: local.epoch }
                    } else {
                        Then::Nothing
                    }
                }
                // A permanent error says nothing of the dependency; a call admitted before the
                // circuit opened and ending after says nothing the probe will not.
                _ => Then::Nothing,
            }
        };
        match then {
            Then::Nothing => {}
            Then::Open {
                record,
                epoch,
                failures,
            } => self.open(record, epoch, failures).await,
            Then::CheckShared { epoch } => self.check_shared(epoch).await,
        }
    }

    async fn open(&self, record: BreakerRecord, epoch: u64, failures: u32) {
        match self.store.open(&record).await {
            Ok(OpenOutcome::Opened) => {
                Counters::add(&self.counters.opened);
                tracing::warn!(breaker = %self.name(), transition = "closed_to_open", failures, next_probe_ms = record.next_probe_ms, "circuit opened: calls refused until the probe");
            }
            Ok(OpenOutcome::AlreadyOpen(existing)) => {
                self.adopt(&existing, epoch);
                tracing::info!(breaker = %self.name(), transition = "closed_to_open", adopted = true, failures, blocked_until_ms = existing.blocked_until_ms(), "circuit already open in the shared state: adopted");
            }
            Err(error) => {
                Counters::add(&self.counters.opened);
                tracing::warn!(breaker = %self.name(), transition = "closed_to_open", shared = false, failures, next_probe_ms = record.next_probe_ms, "circuit opened in this environment only");
                self.fail_open("open", &error);
            }
        }
        self.flush_metrics();
    }

    async fn check_shared(&self, epoch: u64) {
        match self.store.get(self.name()).await {
            Ok(Some(record)) => {
                if let Some(until) = record.blocked_until_ms() {
                    if self.adopt(&record, epoch) {
                        tracing::info!(breaker = %self.name(), transition = "closed_to_open", adopted = true, blocked_until_ms = until, "circuit open in the shared state: adopted after a failure");
                    }
                }
            }
            Ok(None) => {}
            Err(error) => self.fail_open("get", &error),
        }
    }

    async fn settle_probe(&self, owner: &str, shared: bool, outcome: Outcome) {
        let now = self.now();
        let record = {
            let mut local = self.local();
            let mine =
                matches!(&local.circuit, Circuit::Probing { owner: held, .. } if held == owner);
            match outcome {
                Outcome::Success => {
                    if mine {
                        local.failed_probes = 0;
                        local.transition(Local::closed());
                    }
                    BreakerRecord::closed(self.name(), now)
                }
                Outcome::Failure => {
                    let failed = local.failed_probes.saturating_add(1);
                    let next_probe_ms = now.saturating_add(self.probe_wait(failed + 1));
                    if mine {
                        local.failed_probes = failed;
                        local.transition(Circuit::Open {
                            until_ms: next_probe_ms,
                        });
                    }
                    BreakerRecord::open(self.name(), next_probe_ms, failed, now)
                }
                // The probe is handed back at once: the next call probes again.
                Outcome::Inconclusive => {
                    if mine {
                        local.transition(Circuit::Open { until_ms: now });
                    }
                    BreakerRecord::open(self.name(), now, local.failed_probes, now)
                }
            }
        };
        let name = self.name();
        match outcome {
            Outcome::Success => {
                Counters::add(&self.counters.closed);
                tracing::info!(breaker = %name, transition = "half_open_to_closed", shared, "probe succeeded: circuit closed");
            }
            Outcome::Failure => {
                Counters::add(&self.counters.reopened);
                tracing::warn!(breaker = %name, transition = "half_open_to_open", shared, failed_probes = record.failed_probes, next_probe_ms = record.next_probe_ms, "probe failed: circuit open until the next probe");
            }
            Outcome::Inconclusive => {
                tracing::info!(breaker = %name, transition = "half_open_to_open", shared, "probe failed permanently, which says nothing of the dependency: the probe is handed back");
            }
        }
        if shared {
            match self.store.resolve_probe(&record, owner).await {
                Ok(()) => {}
                Err(error @ BreakerStoreError::Fenced { .. }) => {
                    tracing::warn!(breaker = %name, %error, "the probe's lease lapsed before its outcome was written: another environment probes");
                }
                Err(error) => self.fail_open("resolve_probe", &error),
            }
        }
        self.flush_metrics();
    }

    /// Takes `record`'s state as this environment's, unless a transition happened here since
    /// `epoch`. Returns whether it did.
    fn adopt(&self, record: &BreakerRecord, epoch: u64) -> bool {
        let mut local = self.local();
        if local.epoch != epoch {
            return false;
        }
        match record.blocked_until_ms() {
            None => {
                local.failed_probes = 0;
                local.transition(Local::closed());
            }
            Some(until_ms) => {
                local.failed_probes = record.failed_probes;
                local.transition(Circuit::Open { until_ms });
            }
        }
        true
    }

    /// A refusal until `until_ms`: counted, and retried at a random instant up to the retry
    /// spread after it.
    fn reject(&self, until_ms: u64) -> BreakerOpen {
        Counters::add(&self.counters.rejected);
        let spread = self.config.retry_backoff().delay_with(1, &mut self.rng());
        BreakerOpen {
            breaker: self.name().to_string(),
            retry_at_ms: until_ms.saturating_add(saturating_millis(spread)),
        }
    }

    fn fail_open(&self, operation: &'static str, error: &BreakerStoreError) {
        Counters::add(&self.counters.fail_open);
        tracing::warn!(breaker = %self.name(), transition = "fail_open", operation, %error, "breaker store unreachable: deciding on this environment's state alone");
        self.flush_metrics();
    }

    /// The wait before probe `n` (1 for the first), in ms.
    fn probe_wait(&self, n: u32) -> u64 {
        saturating_millis(self.config.probe_backoff().delay_with(n, &mut self.rng()))
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        // Every update is a few assignments under the lock, never across an await: a
        // poisoned state is still consistent.
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rng(&self) -> MutexGuard<'_, fastrand::Rng> {
        self.rng.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("config", &self.config)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}
