//! Exponential backoff with jitter, capped: the waits between retries that every retry loop
//! of the toolkit uses (the publishers' failed entries, the DynamoDB store's failed
//! statements, a failed SQS record's way back to its queue).
//!
//! Without jitter, callers that failed together retry together, in waves that keep a
//! recovering dependency down; with *full* jitter each wait is drawn uniformly between zero
//! and the exponential ceiling, which spreads the retries and, per the AWS Builders' Library
//! article "Timeouts, retries and backoff with jitter", does the least work for the same
//! completion time. *Equal* jitter draws between half the ceiling and the ceiling: a little
//! less spread, but a guaranteed floor, which a schedule that must span a given time (a
//! record's receives spanning an outage) needs.

use std::time::Duration;

/// How a wait is drawn below its ceiling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// Uniformly between zero and the ceiling: the most spread; no floor.
    #[default]
    Full,
    /// Uniformly between half the ceiling and the ceiling: half the spread, and never less
    /// than half the ceiling.
    Equal,
}

/// The waits before the retries of one operation: retry `n` (1 for the first retry) waits a
/// random time up to `base × 2^(n−1)`, and never more than `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// Waits that start below `base` and double per retry, up to `cap`, with full jitter.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            jitter: Jitter::Full,
        }
    }

    /// The same ceilings, with waits drawn as `jitter` says.
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The first retry's ceiling.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The longest wait of any retry.
    pub const fn cap(&self) -> Duration {
        self.cap
    }

    /// How waits are drawn.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The longest wait before retry `retry` (1 for the first): `base × 2^(retry−1)`,
    /// capped.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// The shortest wait before retry `retry` whatever the draw: zero with full jitter, half
    /// the ceiling with equal jitter.
    pub fn floor(&self, retry: u32) -> Duration {
        match self.jitter {
            Jitter::Full => Duration::ZERO,
            Jitter::Equal => self.ceiling(retry) / 2,
        }
    }

    /// A wait before retry `retry`: uniformly random between its [`floor`](Self::floor)
    /// and its [`ceiling`](Self::ceiling).
    pub fn delay(&self, retry: u32) -> Duration {
        self.draw(retry, fastrand::f64())
    }

    /// [`delay`](Self::delay) with the coin of `rng`: a seeded one makes the draws
    /// reproducible (tests, a replayed chaos run).
    pub fn delay_with(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        self.draw(retry, rng.f64())
    }

    /// The wait at `share` (in [0, 1)) of the way from the floor to the ceiling.
    fn draw(&self, retry: u32, share: f64) -> Duration {
        let floor = self.floor(retry);
        floor + (self.ceiling(retry) - floor).mul_f64(share)
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

    #[test]
    fn equal_jitter_never_goes_below_half_the_ceiling() {
        let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(60))
            .with_jitter(Jitter::Equal);
        let mut rng = fastrand::Rng::with_seed(3);
        for retry in 1..=6 {
            let (floor, ceiling) = (backoff.floor(retry), backoff.ceiling(retry));
            assert_eq!(floor * 2, ceiling, "retry {retry}");
            let delays: Vec<Duration> = (0..500)
                .map(|_| backoff.delay_with(retry, &mut rng))
                .collect();
            assert!(
                delays.iter().all(|d| *d >= floor && *d <= ceiling),
                "retry {retry}"
            );
            // Spread over the whole upper half, not stuck at one end.
            let mid = floor + (ceiling - floor) / 2;
            let low = delays.iter().filter(|d| **d < mid).count();
            assert!(
                (200..=300).contains(&low),
                "retry {retry}: {low} of 500 below the middle"
            );
        }
        assert_eq!(
            Backoff::new(Duration::from_secs(1), Duration::from_secs(8)).floor(3),
            Duration::ZERO
        );
    }

    #[test]
    fn a_seeded_coin_draws_the_same_waits() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let draws = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..=5)
                .map(|n| backoff.delay_with(n, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(9), draws(9));
        assert_ne!(draws(9), draws(10));
    }
}
