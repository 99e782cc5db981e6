//! Exponential backoff with full jitter, capped: the waits between retries that every retry
//! loop of the toolkit uses (the publishers' failed entries, the DynamoDB store's failed
//! statements).
//!
//! Without jitter, callers that failed together retry together, in waves that keep a
//! recovering dependency down; with *full* jitter each wait is drawn uniformly between zero
//! and the exponential ceiling, which spreads the retries and, per the AWS Builders' Library
//! article "Timeouts, retries and backoff with jitter", does the least work for the same
//! completion time.

use std::time::Duration;

/// The waits before the retries of one operation: retry `n` (1 for the first retry) waits a
/// random time up to `base × 2^(n−1)`, and never more than `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Waits that start below `base` and double per retry, up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The longest wait before retry `retry` (1 for the first): `base × 2^(retry−1)`,
    /// capped.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// A wait before retry `retry`: uniformly random between zero and its
    /// [`ceiling`](Self::ceiling).
    pub fn delay(&self, retry: u32) -> Duration {
        self.ceiling(retry).mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let ceilings: Vec<u128> = (1..=5).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 500, 500]);
        assert_eq!(backoff.ceiling(0).as_millis(), 100);
        assert_eq!(backoff.ceiling(u32::MAX).as_millis(), 500);
    }

    #[test]
    fn delays_spread_over_the_whole_range_below_the_ceiling() {
        fastrand::seed(7);
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let delays: Vec<Duration> = (0..1_000).map(|_| backoff.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter: a quarter of the draws in each quarter of the range, give or take.
        for quarter in 0..4u32 {
            let (low, high) = (
                Duration::from_millis(100) * quarter,
                Duration::from_millis(100) * (quarter + 1),
            );
            let count = delays.iter().filter(|d| **d >= low && **d < high).count();
            assert!((180..=320).contains(&count), "quarter {quarter}: {count}");
        }
    }
}
