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
use super::record::{IdempotencyRecord, Status, MAX_ITEM_BYTES, MAX_PARTITION_KEY_BYTES};
use super::store::{ClaimOutcome, Completion, IdempotencyStore, Release};

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
    a_resent_release_is_not_a_takeover(store, &key("release-resent"), now_ms).await?;
    refuses_what_dynamodb_refuses(store, &key("limits"), now_ms).await?;
    never_releases_a_completed_record(store, &key("release-completed"), now_ms).await?;
    expired_records_are_replaced(store, &key("expired"), now_ms).await?;
    expired_windows_are_taken_over_and_fence_the_old_owner(store, &key("takeover"), now_ms).await?;
    batch_claims_decide_each_key_alone(store, &key, now_ms).await?;
    batch_completions_and_releases_are_fenced_per_key(store, &key, now_ms).await
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
    Ok(())
}

async fn a_resent_release_is_not_a_takeover<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a release sent again after its answer was lost finds its claim gone and succeeds (it is not fenced: nobody took the key over)";
    store
        .claim(&claim(key, "owner-a", now, 30_000), now)
        .await
        .map_err(|error| broke(CHECK, error))?;
    store
        .release(key, "owner-a")
        .await
        .map_err(|error| broke(CHECK, error))?;
    match store.release(key, "owner-a").await {
        Ok(()) => {}
        other => return Err(broke(CHECK, other)),
    }
    let many = [Release {
        key: key.to_string(),
        owner: "owner-a".into(),
    }];
    match store.release_many(&many).await.as_slice() {
        [Ok(())] => Ok(()),
        other => Err(broke(CHECK, other)),
    }
}

async fn refuses_what_dynamodb_refuses<S: IdempotencyStore>(
    store: &S,
    key: &str,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a key over DynamoDB's 2,048 bytes, or a result over its 400 KB item limit, is refused with LimitExceeded";
    let long_key = format!("{key}#{}", "k".repeat(MAX_PARTITION_KEY_BYTES));
    match store
        .claim(&claim(&long_key, "owner-a", now, 30_000), now)
        .await
    {
        Err(StoreError::LimitExceeded { .. }) => {}
        other => return Err(broke(CHECK, other)),
    }
    let long_claims = [
        claim(&long_key, "owner-a", now, 30_000),
        claim(key, "owner-a", now, 30_000),
    ];
    match store.claim_many(&long_claims, now).await.as_slice() {
        // The record within the limits is claimed all the same.
        [Err(StoreError::LimitExceeded { .. }), Ok(ClaimOutcome::Claimed { .. })] => {}
        other => return Err(broke(CHECK, other)),
    }
    let big = "x".repeat(MAX_ITEM_BYTES);
    match store
        .complete(key, "owner-a", &big, now / 1000 + 3600)
        .await
    {
        Err(StoreError::LimitExceeded { .. }) => {}
        other => return Err(broke(CHECK, other)),
    }
    let completion = Completion {
        key: key.to_string(),
        owner: "owner-a".into(),
        result: big,
        expiration: now / 1000 + 3600,
    };
    match store.complete_many(&[completion]).await.as_slice() {
        [Err(StoreError::LimitExceeded { .. })] => {}
        other => return Err(broke(CHECK, other)),
    }
    // Nothing of the refused completions was written: the claim is still in progress.
    match store.get(key).await {
        Ok(Some(record)) if record.status == Status::InProgress => Ok(()),
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

/// More keys than one DynamoDB batch request holds (25), so that chunking is exercised.
const BATCH: usize = 30;

async fn batch_claims_decide_each_key_alone<S: IdempotencyStore>(
    store: &S,
    key: &impl Fn(&str) -> String,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "a batch claim decides each key as a single claim would: absent keys are \
                         claimed, live records returned, expired ones replaced, ended windows \
                         taken over, and a key given twice claimed once";
    // The batch runs two hours from now on the caller's clock, so that the record expired by
    // then is still live in real time: DynamoDB's TTL must not delete it before the claim.
    let later = now + 7_200_000;
    let live = claim(&key("batch-live"), "owner-a", later, 30_000);
    let expired = claim(&key("batch-expired"), "owner-a", now, 1_000);
    let ended = claim(&key("batch-ended"), "owner-a", later - 2_000, 1_000);
    for (record, at) in [(&live, later), (&expired, now), (&ended, later - 2_000)] {
        store
            .claim(record, at)
            .await
            .map_err(|error| broke(CHECK, error))?;
    }
    store
        .complete(&expired.key, "owner-a", "1", now / 1000 + 600)
        .await
        .map_err(|error| broke(CHECK, error))?;
    let fresh: Vec<IdempotencyRecord> = (0..BATCH)
        .map(|n| claim(&key(&format!("batch-{n}")), "owner-b", later, 30_000))
        .collect();
    let mut batch = fresh.clone();
    batch.extend([
        claim(&live.key, "owner-b", later, 30_000),
        claim(&expired.key, "owner-b", later, 30_000),
        claim(&ended.key, "owner-b", later, 30_000),
        // The first fresh key again, from another delivery.
        claim(&fresh[0].key, "owner-c", later, 30_000),
    ]);
    let outcomes = store.claim_many(&batch, later).await;
    if outcomes.len() != batch.len() {
        return Err(broke(
            CHECK,
            format!("{} outcomes for {} records", outcomes.len(), batch.len()),
        ));
    }
    let (news, rest) = outcomes.split_at(BATCH);
    for outcome in news {
        if !matches!(outcome, Ok(ClaimOutcome::Claimed { replaced: None })) {
            return Err(broke(CHECK, outcome));
        }
    }
    match &rest[0] {
        Ok(ClaimOutcome::Exists(existing)) if *existing == live => {}
        other => return Err(broke(CHECK, ("live record", other))),
    }
    match &rest[1] {
        Ok(ClaimOutcome::Claimed {
            replaced: Some(old),
        }) if old.status == Status::Completed => {}
        other => return Err(broke(CHECK, ("expired record", other))),
    }
    match &rest[2] {
        Ok(ClaimOutcome::Claimed {
            replaced: Some(old),
        }) if old.owner.as_deref() == Some("owner-a") => {}
        other => return Err(broke(CHECK, ("ended window", other))),
    }
    match &rest[3] {
        Ok(ClaimOutcome::Exists(existing)) if existing.owner.as_deref() == Some("owner-b") => {}
        other => return Err(broke(CHECK, ("key given twice", other))),
    }
    for record in fresh.iter().chain([&batch[BATCH + 1], &batch[BATCH + 2]]) {
        match store.get(&record.key).await {
            Ok(Some(stored)) if stored == *record => {}
            other => return Err(broke(CHECK, (&record.key, other))),
        }
    }
    Ok(())
}

async fn batch_completions_and_releases_are_fenced_per_key<S: IdempotencyStore>(
    store: &S,
    key: &impl Fn(&str) -> String,
    now: u64,
) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "batch completions and releases succeed for their owner and are fenced \
                         for anyone else, key by key";
    let claims: Vec<IdempotencyRecord> = (0..BATCH)
        .map(|n| claim(&key(&format!("batch-fence-{n}")), "owner-a", now, 30_000))
        .collect();
    for outcome in store.claim_many(&claims, now).await {
        outcome.map_err(|error| broke(CHECK, error))?;
    }
    let expiration = now / 1000 + 60;
    // Even positions complete, odd ones are released; every third write names the wrong owner.
    let owner = |n: usize| {
        if n.is_multiple_of(3) {
            "owner-x"
        } else {
            "owner-a"
        }
    };
    let completions: Vec<Completion> = (0..BATCH)
        .step_by(2)
        .map(|n| Completion {
            key: claims[n].key.clone(),
            owner: owner(n).into(),
            result: format!("{n}"),
            expiration,
        })
        .chain([Completion {
            key: key("batch-fence-absent"),
            owner: "owner-a".into(),
            result: "0".into(),
            expiration,
        }])
        .collect();
    let completed = store.complete_many(&completions).await;
    let releases: Vec<Release> = (1..BATCH)
        .step_by(2)
        .map(|n| Release {
            key: claims[n].key.clone(),
            owner: owner(n).into(),
        })
        // A completed record is never released, even by its owner.
        .chain([Release {
            key: claims[2].key.clone(),
            owner: "owner-a".into(),
        }])
        .collect();
    let released = store.release_many(&releases).await;
    let expect =
        |results: &[Result<(), StoreError>], writes: usize, owners: &dyn Fn(usize) -> bool| {
            if results.len() != writes {
                return Err(broke(
                    CHECK,
                    format!("{} results for {writes} writes", results.len()),
                ));
            }
            for (position, result) in results.iter().enumerate() {
                match (owners(position), result) {
                    (true, Ok(())) | (false, Err(StoreError::Fenced)) => {}
                    other => return Err(broke(CHECK, (position, format!("{other:?}")))),
                }
            }
            Ok(())
        };
    expect(&completed, completions.len(), &|position| {
        position < BATCH / 2 && owner(position * 2) == "owner-a"
    })?;
    expect(&released, releases.len(), &|position| {
        position < BATCH / 2 && owner(position * 2 + 1) == "owner-a"
    })?;
    for (n, record) in claims.iter().enumerate() {
        let stored = store
            .get(&record.key)
            .await
            .map_err(|error| broke(CHECK, error))?;
        let fenced = owner(n) != "owner-a";
        let right = match (n % 2, fenced, &stored) {
            (_, true, Some(stored)) => *stored == *record,
            (0, false, Some(stored)) => {
                stored.status == Status::Completed
                    && stored.result.as_deref() == Some(n.to_string().as_str())
                    && stored.expiration == expiration
                    && stored.owner.as_deref() == Some("owner-a")
            }
            (1, false, None) => true,
            _ => false,
        };
        if !right {
            return Err(broke(CHECK, (n, stored)));
        }
    }
    match store.get(&key("batch-fence-absent")).await {
        // A fenced completion never creates a record.
        Ok(None) => Ok(()),
        other => Err(broke(CHECK, ("absent key", other))),
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
