//! The semantics every [`BreakerStore`] must have, as a check a store's tests run (feature
//! `testing`): eventkit runs it against the in-memory store and DynamoDB Local.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use eventkit::breaker::{conformance, InMemoryBreakerStore};
//!
//! conformance::check_store(&InMemoryBreakerStore::new()).await.unwrap();
//! # }
//! ```

use super::record::{BreakerRecord, CircuitState};
use super::store::{BreakerStore, BreakerStoreError, OpenOutcome, ProbeClaim};
use crate::clock::{Clock, SystemClock};

/// A rule the store broke: which check, and what it did instead.
#[derive(Debug, thiserror::Error)]
#[error("{check}: {detail}")]
pub struct ConformanceFailure {
    /// The rule.
    pub check: &'static str,
    /// What the store did.
    pub detail: String,
}

/// Runs every check against `store`, on breakers of its own (a fresh random prefix), so one
/// store or table can be checked again and again. Stops at the first rule broken.
pub async fn check_store<S: BreakerStore>(store: &S) -> Result<(), ConformanceFailure> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let now = SystemClock.now_ms();
    let name = |check: &str| format!("conformance-{run}-{check}");
    opens_once_and_keeps_the_first_probe_time(store, &name("open"), now).await?;
    one_probe_at_a_time(store, &name("probe"), now).await?;
    a_lapsed_lease_is_taken_over_and_fences_its_owner(store, &name("lease"), now).await?;
    a_probe_outcome_is_written_by_its_owner_only(store, &name("resolve"), now).await?;
    an_absent_circuit_may_be_probed(store, &name("absent"), now).await
}

fn broke(check: &'static str, detail: impl std::fmt::Debug) -> ConformanceFailure {
    ConformanceFailure {
        check,
        detail: format!("{detail:?}"),
    }
}

async fn opens_once_and_keeps_the_first_probe_time<S: BreakerStore>(
    store: &S,
    name: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "an absent or closed circuit is opened; an open one is kept";
    match store.get(name).await {
        Ok(None) => {}
        other => return Err(broke(CHECK, other)),
    }
    let first = BreakerRecord::open(name, now + 30_000, 0, now);
    match store.open(&first).await {
        Ok(OpenOutcome::Opened) => {}
        other => return Err(broke(CHECK, other)),
    }
    let later = BreakerRecord::open(name, now + 90_000, 0, now + 1);
    match store.open(&later).await {
        Ok(OpenOutcome::AlreadyOpen(existing)) if existing == first => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.get(name).await {
        Ok(Some(stored)) if stored == first => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn one_probe_at_a_time<S: BreakerStore>(
    store: &S,
    name: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "the probe is claimed when due, by one owner, keeping failed probes";
    let open = BreakerRecord::open(name, now + 30_000, 2, now);
    store
        .open(&open)
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.claim_probe(name, "early", now + 40_000, now).await {
        Ok(ProbeClaim::Lost(existing)) if existing == open => {}
        other => return Err(broke(CHECK, other)),
    }
    let due = now + 30_000;
    match store.claim_probe(name, "owner-a", due + 20_000, due).await {
        Ok(ProbeClaim::Won(claimed))
            if claimed.state == CircuitState::HalfOpen
                && claimed.is_probe_owned_by("owner-a")
                && claimed.lease_expiry_ms == Some(due + 20_000)
                && claimed.failed_probes == 2 => {}
        other => return Err(broke(CHECK, other)),
    }
    match store
        .claim_probe(name, "owner-b", due + 20_001, due + 1)
        .await
    {
        Ok(ProbeClaim::Lost(existing)) if existing.is_probe_owned_by("owner-a") => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn a_lapsed_lease_is_taken_over_and_fences_its_owner<S: BreakerStore>(
    store: &S,
    name: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a probe whose lease lapsed is claimed by another, fencing the first";
    store
        .open(&BreakerRecord::open(name, now, 0, now))
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.claim_probe(name, "killed", now + 1_000, now).await {
        Ok(ProbeClaim::Won(_)) => {}
        other => return Err(broke(CHECK, other)),
    }
    match store
        .claim_probe(name, "next", now + 3_000, now + 1_000)
        .await
    {
        Ok(ProbeClaim::Won(claimed)) if claimed.is_probe_owned_by("next") => {}
        other => return Err(broke(CHECK, other)),
    }
    let closed = BreakerRecord::closed(name, now + 1_500);
    match store.resolve_probe(&closed, "killed").await {
        Err(BreakerStoreError::Fenced { .. }) => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn a_probe_outcome_is_written_by_its_owner_only<S: BreakerStore>(
    store: &S,
    name: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str =
        "the probe's owner closes or reopens the circuit; a closed one is not probed";
    store
        .open(&BreakerRecord::open(name, now, 0, now))
        .await
        .map_err(|error| broke(CHECK, error))?;
    store
        .claim_probe(name, "owner", now + 5_000, now)
        .await
        .map_err(|error| broke(CHECK, error))?;
    let reopened = BreakerRecord::open(name, now + 60_000, 1, now + 10);
    store
        .resolve_probe(&reopened, "owner")
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.get(name).await {
        Ok(Some(stored)) if stored == reopened => {}
        other => return Err(broke(CHECK, other)),
    }
    // Reopened: its owner's token no longer holds anything.
    match store.resolve_probe(&reopened, "owner").await {
        Err(BreakerStoreError::Fenced { .. }) => {}
        other => return Err(broke(CHECK, other)),
    }
    let due = now + 60_000;
    store
        .claim_probe(name, "second", due + 5_000, due)
        .await
        .map_err(|error| broke(CHECK, error))?;
    let closed = BreakerRecord::closed(name, due + 20);
    store
        .resolve_probe(&closed, "second")
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store
        .claim_probe(name, "third", u64::MAX, u64::MAX - 1)
        .await
    {
        Ok(ProbeClaim::Lost(existing)) if existing == closed => {}
        other => return Err(broke(CHECK, other)),
    }
    // A closed circuit is opened over.
    match store
        .open(&BreakerRecord::open(name, due + 99, 0, due + 30))
        .await
    {
        Ok(OpenOutcome::Opened) => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn an_absent_circuit_may_be_probed<S: BreakerStore>(
    store: &S,
    name: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "an absent circuit's probe is claimable (an environment that opened alone)";
    match store.claim_probe(name, "alone", now + 5_000, now).await {
        Ok(ProbeClaim::Won(claimed))
            if claimed.is_probe_owned_by("alone") && claimed.failed_probes == 0 => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.claim_probe(name, "other", now + 5_000, now).await {
        Ok(ProbeClaim::Lost(existing)) if existing.is_probe_owned_by("alone") => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}
