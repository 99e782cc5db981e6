//! The semantics every [`IdempotencyStore`] must have, as a check a store's own tests run
//! (feature `testing`): eventkit runs it against the in-memory store and DynamoDB Local; a
//! third-party store (Redis, another table layout) runs it against its own backend.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use eventkit::idempotency::{conformance, InMemoryStore};
//!
//! conformance::check_store(&InMemoryStore::new()).await.unwrap();
//! # }
//! ```

use super::clock::{Clock, SystemClock};
use super::error::StoreError;
use super::record::{IdempotencyRecord, Status};
use super::store::{ClaimOutcome, IdempotencyStore};

/// A rule the store broke: which check, and what it did instead.
#[derive(Debug, thiserror::Error)]
#[error("{check}: {detail}")]
pub struct ConformanceFailure {
    /// The rule.
    pub check: &'static str,
    /// What the store did.
    pub detail: String,
}

/// Runs every check against `store`, on keys of its own (a fresh random prefix), so one
/// store or table can be checked again and again. Stops at the first rule broken.
pub async fn check_store<S: IdempotencyStore>(store: &S) -> Result<(), ConformanceFailure> {
    let run = uuid::Uuid::new_v4();
    let now_ms = SystemClock.now_ms();
    let key = |name: &str| format!("conformance-{run}#{name}");
    claims_once(store, &key("claim"), now_ms).await?;
    completes_only_for_its_owner(store, &key("complete"), now_ms).await?;
    releases_only_for_its_owner(store, &key("release"), now_ms).await?;
    never_releases_a_completed_record(store, &key("release-completed"), now_ms).await?;
    expired_records_are_replaced(store, &key("expired"), now_ms).await?;
    expired_windows_are_taken_over_and_fence_the_old_owner(store, &key("takeover"), now_ms).await
}

fn claim(key: &str, owner: &str, now_ms: u64, window_ms: u64) -> IdempotencyRecord {
    let in_progress_expiry_ms = now_ms + window_ms;
    IdempotencyRecord {
        key: key.into(),
        status: Status::InProgress,
        expiration: in_progress_expiry_ms.div_ceil(1000) + 3600,
        in_progress_expiry_ms: Some(in_progress_expiry_ms),
        result: None,
        payload_hash: None,
        owner: Some(owner.into()),
    }
}

fn broke(check: &'static str, detail: impl std::fmt::Debug) -> ConformanceFailure {
    ConformanceFailure {
        check,
        detail: format!("{detail:?}"),
    }
}

async fn claims_once<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a claim on an absent key is taken, a second one sees the first";
    let first = claim(key, "owner-a", now, 30_000);
    match store.claim(&first, now).await {
        Ok(ClaimOutcome::Claimed { replaced: None }) => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.claim(&claim(key, "owner-b", now, 30_000), now).await {
        Ok(ClaimOutcome::Exists(existing)) if existing == first => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.get(key).await {
        Ok(Some(stored)) if stored == first => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn completes_only_for_its_owner<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "completion is fenced on the owner and stores the result";
    let record = claim(key, "owner-a", now, 30_000);
    store
        .claim(&record, now)
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.complete(key, "owner-b", "1", now / 1000 + 60).await {
        Err(StoreError::Fenced) => {}
        other => return Err(broke(CHECK, other)),
    }
    store
        .complete(key, "owner-a", r#"{"ok":true}"#, now / 1000 + 60)
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.get(key).await {
        Ok(Some(stored))
            if stored.status == Status::Completed
                && stored.result.as_deref() == Some(r#"{"ok":true}"#)
                && stored.expiration == now / 1000 + 60 => {}
        other => return Err(broke(CHECK, other)),
    }
    // A live completed record is returned, not replaced.
    match store.claim(&claim(key, "owner-c", now, 30_000), now).await {
        Ok(ClaimOutcome::Exists(existing)) if existing.status == Status::Completed => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn releases_only_for_its_owner<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "release is fenced on the owner and removes the claim";
    store
        .claim(&claim(key, "owner-a", now, 30_000), now)
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.release(key, "owner-b").await {
        Err(StoreError::Fenced) => {}
        other => return Err(broke(CHECK, other)),
    }
    store
        .release(key, "owner-a")
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.get(key).await {
        Ok(None) => {}
        other => return Err(broke(CHECK, other)),
    }
    // Releasing what is gone is fenced too: nothing is owned any more.
    match store.release(key, "owner-a").await {
        Err(StoreError::Fenced) => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn never_releases_a_completed_record<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    // A commit whose answer was lost is followed by a release: if the commit had landed,
    // deleting its record would let a redelivery run the handler a second time.
    const CHECK: &str = "release never removes a completed record, even its owner's";
    store
        .claim(&claim(key, "owner-a", now, 30_000), now)
        .await
        .map_err(|error| broke(CHECK, error))?;
    store
        .complete(key, "owner-a", "1", now / 1000 + 3600)
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.release(key, "owner-a").await {
        Err(StoreError::Fenced) => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.get(key).await {
        Ok(Some(stored)) if stored.status == Status::Completed => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn expired_records_are_replaced<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a record past its expiration is replaced by a new claim";
    let old = IdempotencyRecord {
        status: Status::Completed,
        result: Some("1".into()),
        ..claim(key, "owner-a", now, 1_000)
    };
    store
        .claim(&claim(key, "owner-a", now, 1_000), now)
        .await
        .map_err(|error| broke(CHECK, error))?;
    store
        .complete(key, "owner-a", "1", old.expiration)
        .await
        .map_err(|error| broke(CHECK, error))?;
    // Later than the record's expiration (seconds), as the caller's clock says.
    let later = (old.expiration + 1) * 1000;
    match store
        .claim(&claim(key, "owner-b", later, 30_000), later)
        .await
    {
        Ok(ClaimOutcome::Claimed {
            replaced: Some(replaced),
        }) if replaced.status == Status::Completed => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn expired_windows_are_taken_over_and_fence_the_old_owner<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str =
        "an in-progress claim whose window ended is taken over, and fences its old owner";
    store
        .claim(&claim(key, "owner-a", now, 1_000), now)
        .await
        .map_err(|error| broke(CHECK, error))?;
    let later = now + 2_000;
    match store
        .claim(&claim(key, "owner-b", later, 30_000), later)
        .await
    {
        Ok(ClaimOutcome::Claimed {
            replaced: Some(replaced),
        }) if replaced.owner.as_deref() == Some("owner-a") => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.complete(key, "owner-a", "1", later / 1000 + 60).await {
        Err(StoreError::Fenced) => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.release(key, "owner-a").await {
        Err(StoreError::Fenced) => {}
        other => return Err(broke(CHECK, other)),
    }
    match store.get(key).await {
        Ok(Some(stored)) if stored.owner.as_deref() == Some("owner-b") => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::InMemoryStore;

    #[tokio::test]
    async fn the_in_memory_store_conforms() {
        check_store(&InMemoryStore::new()).await.unwrap();
    }
}
