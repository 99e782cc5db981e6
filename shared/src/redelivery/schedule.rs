//! [`RecordBackoff`]: how long a failed SQS record stays away from its queue, decided from
//! the failure and the record's receive count. One rule, on the data: the function's
//! redelivery, its tests and the infra checks (tests/tests/infra_checks/outages.rs) all ask
//! it.

use std::time::Duration;

use crate::backoff::{Backoff, Jitter};
use crate::batch::{ErrorClass, FailureKind, RecordFailure};

/// The longest visibility timeout SQS accepts (12 hours): no wait is longer.
pub const SQS_MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// How long past a claim's in-progress expiry a record held by it comes back: enough for
/// clocks of different execution environments to agree the claim has lapsed; a second draw
/// of up to as much again spreads the copies that wait for the same claim.
const IN_PROGRESS_MARGIN: Duration = Duration::from_secs(1);

/// The waits of a transiently failed SQS record before its next receive: exponential in its
/// `ApproximateReceiveCount` (the wait after receive `n` is drawn below `base × 2^(n−1)`,
/// capped), with *equal* jitter, so that every wait is at least half its ceiling.
///
/// Equal rather than full jitter: full jitter may draw a wait near zero on every receive, so
/// a record's receives would guarantee no time at all before its queue dead-letters it; with
/// a floor, `maxReceiveCount` receives span a known minimum ([`guaranteed_before`]), which
/// is what keeps a healthy message out of the DLQ through an outage of that length.
///
/// The defaults (base 60 s, cap 2 h) with the template's `maxReceiveCount: 10` give at least
/// 3 h 3 min before the tenth receive (see RELIABILITY.md, "Outlasting outages"), while a
/// blip costs a record only 30 to 60 s.
///
/// [`guaranteed_before`]: Self::guaranteed_before
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBackoff {
    backoff: Option<Backoff>,
}

impl RecordBackoff {
    /// The first wait's ceiling by default: a blip (a throttle, a deploy) costs 30 to 60 s.
    pub const DEFAULT_BASE: Duration = Duration::from_secs(60);
    /// The longest wait by default: late receives of a long outage come every 1 to 2 h.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(2 * 3600);

    /// Waits below `base`, doubling per receive up to `cap` (at most SQS's 12 hours), never
    /// less than half their ceiling.
    pub fn new(base: Duration, cap: Duration) -> Self {
        let cap = cap.min(SQS_MAX_VISIBILITY);
        Self {
            backoff: Some(Backoff::new(base.min(cap), cap).with_jitter(Jitter::Equal)),
        }
    }

    /// No backoff: a failed record comes back after its queue's visibility timeout, and no
    /// request is made.
    pub const fn off() -> Self {
        Self { backoff: None }
    }

    /// The waits' schedule; `None` when off.
    pub fn backoff(&self) -> Option<Backoff> {
        self.backoff
    }

    /// How long the record that failed with `failure` on its receive `receive_count` stays
    /// away, `now_ms` being the time (epoch ms); `None` where the queue's visibility timeout
    /// applies as it is:
    ///
    /// - a permanent failure (poison): its way to the DLQ is unchanged;
    /// - a record that was not attempted (the deadline came, an earlier record of its FIFO
    ///   group failed): it met no dependency, so nothing says to wait longer;
    /// - backoff off.
    ///
    /// A key in progress elsewhere comes back just after that claim's in-progress expiry
    /// when known (then the claim can be taken over, or the other delivery has completed
    /// and this one replays): waiting longer helps nothing, sooner fails again. A failure
    /// that knows when its dependency is available again
    /// ([`FailureKind::DependencyUnavailable`]: a circuit breaker's next probe) waits the
    /// longer of the backoff and the time until then. Every other transient failure waits
    /// the backoff of its receive count.
    pub fn delay(
        &self,
        failure: &RecordFailure,
        receive_count: Option<u32>,
        now_ms: u64,
        rng: &mut fastrand::Rng,
    ) -> Option<Duration> {
        let backoff = self.backoff?;
        if failure.class == ErrorClass::Permanent {
            return None;
        }
        let wait = match (&failure.kind, failure.retry_at_ms) {
            (
                FailureKind::DeadlineReached
                | FailureKind::SkippedAfterGroupFailure
                | FailureKind::SkippedAfterBatchStopped,
                _,
            ) => return None,
            (FailureKind::InProgress, Some(expiry_ms)) => {
                let until = Duration::from_millis(expiry_ms.saturating_sub(now_ms));
                until + IN_PROGRESS_MARGIN.mul_f64(1.0 + rng.f64())
            }
            // A dependency unavailable until a known instant (a circuit breaker's next probe,
            // already jittered by the breaker): never back before it, and never sooner than
            // the backoff either, so the receives still span an outage as
            // `guaranteed_before` says (each rejection costs the record a receive).
            (_, Some(retry_at_ms)) => {
                let until = Duration::from_millis(retry_at_ms.saturating_sub(now_ms));
                backoff
                    .delay_with(receive_count.unwrap_or(1).max(1), rng)
                    .max(until + IN_PROGRESS_MARGIN.mul_f64(rng.f64()))
            }
            _ => backoff.delay_with(receive_count.unwrap_or(1).max(1), rng),
        };
        Some(wait.min(SQS_MAX_VISIBILITY))
    }

    /// The shortest time from a record's first receive to its receive `receive`, when every
    /// receive before it failed transiently, whatever the draws: each failed receive `n`
    /// waits at least the floor of its wait, or the queue's `visibility` timeout when off.
    /// (Each attempt's own run time only adds to it.)
    pub fn guaranteed_before(&self, receive: u32, visibility: Duration) -> Duration {
        (1..receive)
            .map(|n| self.backoff.map_or(visibility, |b| b.floor(n)))
            .sum()
    }

    /// The longest a record can stay away between two receives: the cap (a permanent
    /// failure, or no backoff, waits the queue's `visibility` timeout).
    pub fn longest_wait(&self, visibility: Duration) -> Duration {
        self.backoff.map_or(visibility, |b| b.cap().max(visibility))
    }
}

impl Default for RecordBackoff {
    /// [`DEFAULT_BASE`](Self::DEFAULT_BASE), [`DEFAULT_CAP`](Self::DEFAULT_CAP).
    fn default() -> Self {
        Self::new(Self::DEFAULT_BASE, Self::DEFAULT_CAP)
    }
}
