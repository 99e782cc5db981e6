//! How one breaker behaves: when it opens, how often it probes, how long a probe may take.

use std::time::Duration;

use crate::backoff::{Backoff, Jitter};

/// Settings of one [`Breaker`](super::Breaker), named after its dependency.
///
/// ```
/// use std::time::Duration;
/// use eventkit::breaker::BreakerConfig;
///
/// let config = BreakerConfig::new("payment-provider")
///     .with_threshold(3)
///     .with_probe_interval(Duration::from_secs(30), Duration::from_secs(300));
/// assert_eq!(config.name(), "payment-provider");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    name: String,
    threshold: u32,
    failure_window: Duration,
    probe_interval: Duration,
    max_probe_interval: Duration,
    probe_lease: Duration,
    shared_check_interval: Duration,
    retry_spread: Duration,
}

impl BreakerConfig {
    /// Consecutive transient failures that open the circuit by default.
    pub const DEFAULT_THRESHOLD: u32 = 5;
    /// How far apart two failures may be and still count as consecutive, by default.
    pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);
    /// The first probe's ceiling by default: it comes 30 to 60 s after the circuit opens.
    pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(60);
    /// The longest wait between two probes by default, however many failed.
    pub const DEFAULT_MAX_PROBE_INTERVAL: Duration = Duration::from_secs(300);
    /// How long a probe may take by default before another environment may probe.
    pub const DEFAULT_PROBE_LEASE: Duration = Duration::from_secs(30);
    /// How often, at most, a closed environment that sees failures reads the shared state.
    pub const DEFAULT_SHARED_CHECK_INTERVAL: Duration = Duration::from_secs(10);
    /// How far past the next probe the records refused by an open circuit are spread.
    pub const DEFAULT_RETRY_SPREAD: Duration = Duration::from_secs(15);

    /// The defaults, for the dependency `name` (`"payment-provider"`, `"orders-bus"`): the
    /// name of its shared record, of its logs' `breaker` field and of its metrics' `Breaker`
    /// dimension.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            threshold: Self::DEFAULT_THRESHOLD,
            failure_window: Self::DEFAULT_FAILURE_WINDOW,
            probe_interval: Self::DEFAULT_PROBE_INTERVAL,
            max_probe_interval: Self::DEFAULT_MAX_PROBE_INTERVAL,
            probe_lease: Self::DEFAULT_PROBE_LEASE,
            shared_check_interval: Self::DEFAULT_SHARED_CHECK_INTERVAL,
            retry_spread: Self::DEFAULT_RETRY_SPREAD,
        }
    }

    /// Opens after `threshold` consecutive transient failures (at least 1).
    #[must_use]
    pub fn with_threshold(mut self, threshold: u32) -> Self {
        self.threshold = threshold.max(1);
        self
    }

    /// Failures further apart than `window` are not consecutive: the count starts again.
    #[must_use]
    pub fn with_failure_window(mut self, window: Duration) -> Self {
        self.failure_window = window;
        self
    }

    /// The wait before probe `n` (1 for the first) is drawn between half and all of
    /// `interval × 2^(n−1)`, at most `max`: probes of a long outage thin out, and
    /// environments that opened together do not probe together.
    #[must_use]
    pub fn with_probe_interval(mut self, interval: Duration, max: Duration) -> Self {
        self.probe_interval = interval.min(max);
        self.max_probe_interval = max;
        self
    }

    /// A probe not resolved within `lease` (its environment was killed, its call hung) may
    /// be claimed by another environment. Longer than the probe call may take.
    #[must_use]
    pub fn with_probe_lease(mut self, lease: Duration) -> Self {
        self.probe_lease = lease;
        self
    }

    /// A closed environment that sees a failure reads the shared state at most once per
    /// `interval`, so that it adopts a circuit another environment opened.
    #[must_use]
    pub fn with_shared_check_interval(mut self, interval: Duration) -> Self {
        self.shared_check_interval = interval;
        self
    }

    /// The records refused by an open circuit are retried at a random instant up to
    /// `spread` after the next probe, so that a recovered dependency is not met by all of
    /// them at once.
    #[must_use]
    pub fn with_retry_spread(mut self, spread: Duration) -> Self {
        self.retry_spread = spread;
        self
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Consecutive transient failures that open the circuit.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// How far apart failures may be and still be consecutive.
    pub fn failure_window(&self) -> Duration {
        self.failure_window
    }

    /// The waits between probes: equal jitter, doubling per failed probe, capped.
    pub fn probe_backoff(&self) -> Backoff {
        Backoff::new(self.probe_interval, self.max_probe_interval).with_jitter(Jitter::Equal)
    }

    /// How long a probe holds its lease.
    pub fn probe_lease(&self) -> Duration {
        self.probe_lease
    }

    /// How often, at most, a closed environment reads the shared state after failures.
    pub fn shared_check_interval(&self) -> Duration {
        self.shared_check_interval
    }

    /// How far past the next probe refused records are spread (full jitter).
    pub fn retry_backoff(&self) -> Backoff {
        Backoff::new(self.retry_spread, self.retry_spread)
    }
}
