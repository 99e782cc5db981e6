//! The invocation's deadline, as Lambda gives it (epoch milliseconds), and the time left.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When the invocation will be stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    epoch_ms: u64,
}

impl Deadline {
    /// The deadline Lambda reports (`Context::deadline`, epoch milliseconds).
    pub fn from_epoch_ms(epoch_ms: u64) -> Self {
        Self { epoch_ms }
    }

    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        Self::from_epoch_ms(
            now_ms().saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The deadline in epoch milliseconds.
    pub fn epoch_ms(self) -> u64 {
        self.epoch_ms
    }

    /// Time left until the deadline (zero once it has passed).
    pub fn remaining(self) -> Duration {
        self.remaining_at(now_ms())
    }

    /// Time left at `now_ms` (epoch milliseconds, from a [`Clock`](crate::idempotency::Clock)).
    pub fn remaining_at(self, now_ms: u64) -> Duration {
        Duration::from_millis(self.epoch_ms.saturating_sub(now_ms))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
