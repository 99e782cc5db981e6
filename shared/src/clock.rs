//! Where "now" comes from.
//!
//! Every expiry decision (an idempotency record's TTL and in-progress window, cache
//! freshness, a batch's deadline, a circuit breaker's next probe) is taken against a [`Clock`]
//! so that tests can move time forward instead of sleeping, and so that the same instant is
//! handed to the store: the stores never read the system clock themselves.

#[cfg(any(test, feature = "testing"))]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(any(test, feature = "testing"))]
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// The current time, in epoch milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock, which is what DynamoDB's TTL and every other invocation use.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock before 1970 is a broken host; treating it as the epoch makes every record
        // look fresh rather than panicking inside a handler.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, saturating_millis)
    }
}

/// A clock that only moves when told to: for tests and local runs that exercise expiry
/// without waiting. Clones share the same time. (Feature `testing`.)
#[cfg(any(test, feature = "testing"))]
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

#[cfg(any(test, feature = "testing"))]
impl ManualClock {
    /// A clock stopped at `now_ms` (epoch milliseconds).
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(now_ms)),
        }
    }

    /// A clock stopped at the current system time.
    pub fn at_system_time() -> Self {
        Self::new(SystemClock.now_ms())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(saturating_millis(by), Ordering::SeqCst);
    }

    /// Sets the clock to `now_ms` (epoch milliseconds).
    pub fn set(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "testing"))]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// Milliseconds in `duration`, saturating instead of truncating the `u128`.
pub(crate) fn saturating_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let clock = ManualClock::new(1_000);
        let twin = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        twin.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        clock.set(5);
        assert_eq!(twin.now_ms(), 5);
    }

    fn wall_clock_ms() -> u128 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    }

    #[test]
    fn system_clock_reads_the_wall_clock_in_milliseconds() {
        let before = wall_clock_ms();
        let now = u128::from(SystemClock.now_ms());
        let after = wall_clock_ms();
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
    }

    #[test]
    fn milliseconds_truncate_and_saturate() {
        assert_eq!(saturating_millis(Duration::from_micros(1_999)), 1);
        assert_eq!(saturating_millis(Duration::from_secs(2)), 2_000);
        assert_eq!(saturating_millis(Duration::MAX), u64::MAX);
        assert_eq!(
            saturating_millis(Duration::from_secs(u64::MAX / 10)),
            u64::MAX
        );
    }
}
