//! The shared state of one breaker, as a store keeps it, and the rules of its transitions.
//! Both stores, and every environment reading them, ask the record: one rule, one place.

use std::fmt;
use std::str::FromStr;

/// Where a circuit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; failures are counted in memory.
    Closed,
    /// Calls are refused until the next probe.
    Open,
    /// One environment holds the probe: its one call decides whether the circuit closes.
    HalfOpen,
}

impl CircuitState {
    /// The stored form: `CLOSED`, `OPEN` or `HALF_OPEN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Open => "OPEN",
            Self::HalfOpen => "HALF_OPEN",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CircuitState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "CLOSED" => Ok(Self::Closed),
            "OPEN" => Ok(Self::Open),
            "HALF_OPEN" => Ok(Self::HalfOpen),
            other => Err(format!("unknown circuit state {other:?}")),
        }
    }
}

/// One breaker's shared state. An absent record is a circuit that was never opened (closed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerRecord {
    /// The breaker's name (`payment-provider`).
    pub name: String,
    /// Closed, open, or half-open.
    pub state: CircuitState,
    /// Open: the earliest instant (epoch ms) an environment may claim the probe.
    pub next_probe_ms: Option<u64>,
    /// Half-open: the token of the environment holding the probe.
    pub probe_owner: Option<String>,
    /// Half-open: when the probe lease lapses (epoch ms) and another environment may probe,
    /// should its owner never say how the probe went (killed mid-call).
    pub lease_expiry_ms: Option<u64>,
    /// Probes that failed since the circuit opened: the next probe waits longer for each.
    pub failed_probes: u32,
    /// When the state last changed (epoch ms), for the logs and an operator.
    pub changed_at_ms: u64,
}

impl BreakerRecord {
    /// An open circuit whose probe may be claimed from `next_probe_ms`.
    pub fn open(name: &str, next_probe_ms: u64, failed_probes: u32, now_ms: u64) -> Self {
        Self {
            name: name.to_string(),
            state: CircuitState::Open,
            next_probe_ms: Some(next_probe_ms),
            probe_owner: None,
            lease_expiry_ms: None,
            failed_probes,
            changed_at_ms: now_ms,
        }
    }

    /// A closed circuit (a probe succeeded).
    pub fn closed(name: &str, now_ms: u64) -> Self {
        Self {
            name: name.to_string(),
            state: CircuitState::Closed,
            next_probe_ms: None,
            probe_owner: None,
            lease_expiry_ms: None,
            failed_probes: 0,
            changed_at_ms: now_ms,
        }
    }

    /// This record with the probe held by `owner` until `lease_expiry_ms`.
    pub fn probed_by(&self, owner: &str, lease_expiry_ms: u64, now_ms: u64) -> Self {
        Self {
            state: CircuitState::HalfOpen,
            probe_owner: Some(owner.to_string()),
            lease_expiry_ms: Some(lease_expiry_ms),
            changed_at_ms: now_ms,
            ..self.clone()
        }
    }

    /// Whether an environment that has just seen the dependency fail may write its open
    /// state over this record: only over a closed one (an open or half-open record already
    /// says the dependency is down, with its own probe time, which is kept).
    pub fn is_openable(&self) -> bool {
        self.state == CircuitState::Closed
    }

    /// Whether the probe may be claimed at `now_ms`: open with its probe due, or half-open
    /// with a lapsed lease (its owner never came back). A closed circuit has nothing to
    /// probe. (An absent record may be claimed too: see [`probe_claimable`].)
    pub fn is_probe_claimable(&self, now_ms: u64) -> bool {
        match self.state {
            CircuitState::Closed => false,
            CircuitState::Open => self.next_probe_ms.is_none_or(|due| due <= now_ms),
            CircuitState::HalfOpen => self.lease_expiry_ms.is_none_or(|lapse| lapse <= now_ms),
        }
    }

    /// Whether `owner` holds the probe (so may write its outcome).
    pub fn is_probe_owned_by(&self, owner: &str) -> bool {
        self.state == CircuitState::HalfOpen && self.probe_owner.as_deref() == Some(owner)
    }

    /// Until when (epoch ms) an environment that reads this record refuses calls: the next
    /// probe of an open circuit, the lease of a half-open one; `None` when closed. At that
    /// instant it tries to claim the probe, which also tells it how the last one went.
    pub fn blocked_until_ms(&self) -> Option<u64> {
        match self.state {
            CircuitState::Closed => None,
            CircuitState::Open => Some(self.next_probe_ms.unwrap_or(0)),
            CircuitState::HalfOpen => Some(self.lease_expiry_ms.unwrap_or(0)),
        }
    }
}

/// Whether the probe of a breaker whose stored record is `record` may be claimed at
/// `now_ms`. An absent record may: it is what an environment that opened while the store was
/// unreachable finds when the store is back, and its probe goes through the store like any.
pub fn probe_claimable(record: Option<&BreakerRecord>, now_ms: u64) -> bool {
    record.is_none_or(|record| record.is_probe_claimable(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_stored_form() {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ] {
            assert_eq!(state.as_str().parse::<CircuitState>(), Ok(state));
        }
        assert!("open".parse::<CircuitState>().is_err());
    }

    #[test]
    fn the_probe_is_claimable_when_due_or_when_its_lease_lapsed() {
        let open = BreakerRecord::open("b", 1_000, 0, 0);
        assert!(!open.is_probe_claimable(999));
        assert!(open.is_probe_claimable(1_000));
        let probing = open.probed_by("env-a", 5_000, 1_000);
        assert!(!probing.is_probe_claimable(4_999));
        assert!(probing.is_probe_claimable(5_000));
        assert!(probing.is_probe_owned_by("env-a") && !probing.is_probe_owned_by("env-b"));
        assert!(!open.is_probe_owned_by("env-a"));
        let closed = BreakerRecord::closed("b", 6_000);
        assert!(!closed.is_probe_claimable(u64::MAX));
        assert!(probe_claimable(None, 0));
        assert!(!probe_claimable(Some(&closed), 0));
    }

    #[test]
    fn only_a_closed_circuit_is_opened_over_and_blocks_nothing() {
        let open = BreakerRecord::open("b", 1_000, 2, 0);
        assert!(!open.is_openable());
        assert!(!open.probed_by("a", 9, 0).is_openable());
        assert!(BreakerRecord::closed("b", 0).is_openable());
        assert_eq!(open.blocked_until_ms(), Some(1_000));
        assert_eq!(open.probed_by("a", 9, 0).blocked_until_ms(), Some(9));
        assert_eq!(BreakerRecord::closed("b", 0).blocked_until_ms(), None);
    }
}
