//! The batched mode, [`Idempotency::execute_batch`]: the same semantics as
//! [`Idempotency::execute`] for every record of a batch, in fewer requests. Every record's
//! claim goes to the store in one [`claim_many`](IdempotencyStore::claim_many), the handlers
//! of the claimed records run concurrently, and their completions and releases are group
//! committed (see [`group_commit`](super::group_commit)): a batch of ten new records costs
//! two DynamoDB requests, a batch of ten duplicates one or two.
//!
//! Records of one batch that share a key run once: the first is the leader, the others wait
//! for it and are answered from the record the leader ended with, each with its own payload,
//! as per-record mode answers them whatever their order: a completed record is replayed (or
//! refused with [`PayloadValidation`](IdempotencyError::PayloadValidation), or
//! [`StoredResultUnreadable`](IdempotencyError::StoredResultUnreadable)); a claim that did
//! not complete, the leader's or another delivery's, is
//! [`AlreadyInProgress`](IdempotencyError::AlreadyInProgress) with its window (or
//! `PayloadValidation` for a payload that differs from the claim's), to be retried instead
//! of racing it for the claim.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::clock::saturating_millis;
use super::error::{IdempotencyError, StoreError};
use super::group_commit::{group_commit, Committer, Writes};
use super::key::{idempotency_key, is_blank};
use super::record::{IdempotencyRecord, Status};
use super::run::{
    check_payload, claim_outcome, log_replaced, Commit, Idempotency, NoWork, Outcome,
};
use super::store::{ClaimOutcome, IdempotencyStore, Release};
use crate::faults::CrashPoint;
use crate::telemetry::steps;
use tracing::Instrument;

/// One record of a batch for [`Idempotency::execute_batch`]: what
/// [`execute`](Idempotency::execute) takes for it.
#[derive(Clone, Copy, Debug)]
pub struct BatchEntry<'a> {
    /// The record's payload (the key and validation hash are taken from it).
    pub payload: &'a Value,
    /// The record's id, for logs.
    pub record_id: &'a str,
    /// The time left before the invocation's deadline.
    pub remaining: Duration,
}

/// What happened to one record of a batch.
pub type BatchResult<T, E> = Result<Outcome<T>, IdempotencyError<E>>;

/// What one record of a batch does once the batch's claims are in. Nothing is logged while
/// planning: each step logs when its record runs, inside the record's own span.
pub(crate) enum Step {
    /// Claimed: run the handler, then complete or release.
    Run {
        claim: IdempotencyRecord,
        replaced: Option<IdempotencyRecord>,
    },
    /// The key was already in the store (or in the cache): replay, in progress, or a
    /// payload that differs.
    Exists {
        record: IdempotencyRecord,
        payload_hash: Option<String>,
        from_cache: bool,
    },
    /// The claim request failed.
    ClaimFailed { key: String, source: StoreError },
    /// An earlier record of the batch has the same key: it replays that record's result.
    Follow {
        leader: usize,
        key: String,
        payload_hash: Option<String>,
    },
    /// The key is blank.
    BlankKey,
    /// No key: the missing-key policy applies.
    Keyless,
}

impl Step {
    /// The claim this step holds, to release if its record never runs.
    pub(crate) fn claim(&self) -> Option<Release> {
        match self {
            Self::Run { claim, .. } => Some(Release {
                key: claim.key.clone(),
                owner: claim.owner.clone().unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

/// A record's step after it ran.
pub(crate) struct Ran<T, E> {
    pub(crate) result: BatchResult<T, E>,
    /// The record the later copies of its key in the batch are answered from: the completed
    /// record (stored or replayed), the live record the claim found, or the leader's own
    /// claim when its handler did not complete. `None` when the claim itself failed.
    pub(crate) record: Option<IdempotencyRecord>,
    /// A panic of the handler, to resume once its claim is released.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
}

impl<T, E> Ran<T, E> {
    fn result(result: BatchResult<T, E>) -> Self {
        Self {
            result,
            record: None,
            panic: None,
        }
    }
}

impl<S: IdempotencyStore> Idempotency<S> {
    /// Runs `handler(i)` for each record `entries[i]` whose key has not been processed, with
    /// the semantics of [`execute`](Self::execute) per record, and returns each record's
    /// result in order. Claims, completions and releases are batched (see
    /// [`IdempotencyStore::claim_many`]); a key given twice runs once and its other records
    /// replay the result.
    ///
    /// The handlers of claimed records run concurrently. A handler that panics has its
    /// claim released like a failing one; the panic resumes once every other record's
    /// result is written.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use eventkit::idempotency::{BatchEntry, Idempotency, IdempotencyConfig, InMemoryStore};
    ///
    /// let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("orders"));
    /// let payloads = [serde_json::json!({"eventId": "e-1"}), serde_json::json!({"eventId": "e-1"})];
    /// let entries: Vec<BatchEntry> = payloads
    ///     .iter()
    ///     .map(|payload| BatchEntry { payload, record_id: "m", remaining: Duration::from_secs(30) })
    ///     .collect();
    /// let results = idempotency
    ///     .execute_batch(&entries, |_| async { Ok::<_, std::io::Error>(42) })
    ///     .await;
    /// assert!(!results[0].as_ref().unwrap().is_replayed());
    /// assert!(results[1].as_ref().unwrap().is_replayed()); // the same key: run once
    /// # }
    /// ```
    pub async fn execute_batch<F, Fut, T, E>(
        &self,
        entries: &[BatchEntry<'_>],
        handler: F,
    ) -> Vec<BatchResult<T, E>>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned,
    {
        let steps = self.plan_batch(entries).await;
        let running = AtomicUsize::new(steps.iter().filter(|s| s.claim().is_some()).count());
        let (committer, writer) = group_commit(&self.store, &running);
        let mut followers = Vec::new();
        let mut leaders = Vec::new();
        for (index, step) in steps.into_iter().enumerate() {
            match step {
                Step::Follow {
                    leader,
                    key,
                    payload_hash,
                } => followers.push((index, leader, key, payload_hash)),
                step => leaders.push((index, step)),
            }
        }
        let handler = &handler;
        // The writer ends once the committer is dropped, after the last handler's write.
        let runs = async move {
            let committer = committer;
            futures::future::join_all(leaders.into_iter().map(|(index, step)| {
                let committer = &committer;
                async move {
                    let record_id = entries[index].record_id;
                    let ran = self
                        .run_step(step, record_id, committer, || async move {
                            handler(index).await.map(|value| (value, NoWork))
                        })
                        .await;
                    (index, ran)
                }
            }))
            .await
        };
        let (ran, ()) = futures::join!(runs, writer);

        let mut results: Vec<Option<BatchResult<T, E>>> = entries.iter().map(|_| None).collect();
        let mut settled: HashMap<usize, IdempotencyRecord> = HashMap::new();
        let mut panic = None;
        for (index, ran) in ran {
            results[index] = Some(ran.result);
            if let Some(record) = ran.record {
                settled.insert(index, record);
            }
            panic = panic.or(ran.panic);
        }
        for (index, leader, key, payload_hash) in followers {
            let record_id = entries[index].record_id;
            results[index] = Some(self.follow(
                settled.get(&leader),
                key,
                payload_hash.as_deref(),
                record_id,
            ));
        }
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(IdempotencyError::Store {
                        key: String::new(),
                        record_id: String::new(),
                        source: StoreError::other("record left without a result"),
                    })
                })
            })
            .collect()
    }

    /// Every record's key, the cache, and one [`claim_many`](IdempotencyStore::claim_many)
    /// for the rest: what each record does next.
    pub(crate) async fn plan_batch(&self, entries: &[BatchEntry<'_>]) -> Vec<Step> {
        let now_ms = self.clock.now_ms();
        let mut steps: Vec<Option<Step>> = entries.iter().map(|_| None).collect();
        let mut leaders: HashMap<String, usize> = HashMap::new();
        let mut claims: Vec<(usize, IdempotencyRecord)> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let Some(key_value) = self.config.key_source().extract(entry.payload) else {
                steps[index] = Some(Step::Keyless);
                continue;
            };
            if is_blank(&key_value) {
                steps[index] = Some(Step::BlankKey);
                continue;
            }
            let key = idempotency_key(self.config.name(), &key_value);
            let payload_hash = self.payload_hash(entry.payload);
            if let Some(&leader) = leaders.get(&key) {
                steps[index] = Some(Step::Follow {
                    leader,
                    key,
                    payload_hash,
                });
                continue;
            }
            leaders.insert(key.clone(), index);
            if let Some(cached) = self
                .cache
                .as_ref()
                .and_then(|cache| cache.get(&key, now_ms))
            {
                steps[index] = Some(Step::Exists {
                    record: cached,
                    payload_hash,
                    from_cache: true,
                });
                continue;
            }
            let in_progress_expiry_ms = now_ms.saturating_add(saturating_millis(entry.remaining));
            claims.push((
                index,
                IdempotencyRecord {
                    key,
                    status: Status::InProgress,
                    expiration: self.claim_expiration(now_ms, in_progress_expiry_ms),
                    in_progress_expiry_ms: Some(in_progress_expiry_ms),
                    result: None,
                    payload_hash,
                    owner: Some(uuid::Uuid::new_v4().to_string()),
                },
            ));
        }

        if !claims.is_empty() {
            let records: Vec<IdempotencyRecord> =
                claims.iter().map(|(_, claim)| claim.clone()).collect();
            let outcomes = self
                .store
                .claim_many(&records, now_ms)
                .instrument(steps::claim_batch(records.len()))
                .await;
            for ((index, claim), outcome) in claims.into_iter().zip(outcomes) {
                steps[index] = Some(match outcome.map(|outcome| outcome.seen_by(&claim)) {
                    Ok(ClaimOutcome::Claimed { replaced }) => Step::Run { claim, replaced },
                    Ok(ClaimOutcome::Exists(record)) => Step::Exists {
                        record,
                        payload_hash: claim.payload_hash,
                        from_cache: false,
                    },
                    Err(source) => Step::ClaimFailed {
                        key: claim.key,
                        source,
                    },
                });
            }
        }
        steps
            .into_iter()
            .map(|step| {
                step.unwrap_or_else(|| Step::ClaimFailed {
                    key: String::new(),
                    source: StoreError::other("the store answered for fewer claims than asked"),
                })
            })
            .collect()
    }

    /// Runs one record's step (every step but [`Step::Follow`]): the handler for a claimed
    /// record, its completion or release through `committer`; the replay, error or policy
    /// for the others.
    pub(crate) async fn run_step<F, Fut, T, E, W>(
        &self,
        step: Step,
        record_id: &str,
        committer: &Committer<'_, W>,
        handler: F,
    ) -> Ran<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, W), E>>,
        T: Serialize + DeserializeOwned,
        W: Commit<S>,
    {
        match step {
            Step::Run { claim, replaced } => {
                // Claimed with the batch's request: the record's span says what it found, the
                // batch's claim span how long it took.
                steps::claimed_in_batch(&claim.key, steps::ClaimOutcome::CLAIMED);
                log_replaced(&claim.key, record_id, replaced);
                self.run_claimed(claim, record_id, Writes::Grouped(committer), handler)
                    .await
            }
            Step::Exists {
                record,
                payload_hash,
                from_cache,
            } => {
                // The followers answer from the record itself, each with its own payload,
                // whatever this record's own answer was.
                let for_followers = record.clone();
                let result = if from_cache {
                    self.replay(&record, payload_hash.as_deref(), record_id, "cache")
                } else {
                    self.handle_existing(record, payload_hash.as_deref(), record_id)
                };
                steps::claimed_in_batch(&for_followers.key, claim_outcome(&result));
                Ran {
                    record: Some(for_followers),
                    ..Ran::result(result.map(Outcome::Replayed))
                }
            }
            Step::ClaimFailed { key, source } => {
                steps::claimed_in_batch(&key, steps::ClaimOutcome::FAILED);
                tracing::error!(idempotency_key = %key, record_id, outcome = "store_error", error = %source, "idempotency claim failed; handler not run");
                Ran::result(Err(IdempotencyError::Store {
                    key,
                    record_id: record_id.to_string(),
                    source,
                }))
            }
            Step::BlankKey => {
                let source_description = self.config.key_source().to_string();
                tracing::warn!(record_id, outcome = "blank_key", key_source = %source_description, "record has a blank idempotency key; failing it");
                Ran::result(Err(IdempotencyError::BlankKey {
                    record_id: record_id.to_string(),
                    source_description,
                }))
            }
            Step::Keyless => Ran::result(self.run_without_key(record_id, handler).await),
            Step::Follow { key, .. } => Ran::result(Err(IdempotencyError::AlreadyInProgress {
                key,
                record_id: record_id.to_string(),
                in_progress_expiry_ms: None,
            })),
        }
    }

    /// A record whose key an earlier record of its batch had, answered from the `leader`'s
    /// record as per-record mode would answer it: a completed record replayed (this record's
    /// payload validated against it), a claim still in progress (the leader's own, when its
    /// handler did not complete, or another delivery's)
    /// [`AlreadyInProgress`](IdempotencyError::AlreadyInProgress) with its window, unless
    /// this payload differs from the claim's. Without a record (the leader's claim failed),
    /// `AlreadyInProgress` to be retried.
    pub(crate) fn follow<T: DeserializeOwned, E>(
        &self,
        leader: Option<&IdempotencyRecord>,
        key: String,
        payload_hash: Option<&str>,
        record_id: &str,
    ) -> BatchResult<T, E> {
        match leader {
            Some(record) if record.status == Status::Completed => self
                .replay(record, payload_hash, record_id, "batch")
                .map(Outcome::Replayed),
            Some(claim) => {
                check_payload(claim, payload_hash, record_id)?;
                tracing::info!(idempotency_key = %key, record_id, outcome = "in_progress", in_progress_expiry_ms = claim.in_progress_expiry_ms, "an earlier record of the batch with this key did not complete; retry later");
                Err(IdempotencyError::AlreadyInProgress {
                    key,
                    record_id: record_id.to_string(),
                    in_progress_expiry_ms: claim.in_progress_expiry_ms,
                })
            }
            None => {
                tracing::info!(idempotency_key = %key, record_id, outcome = "in_progress", "an earlier record of the batch with this key was not answered (its claim failed, or it did not run); retry later");
                Err(IdempotencyError::AlreadyInProgress {
                    key,
                    record_id: record_id.to_string(),
                    in_progress_expiry_ms: None,
                })
            }
        }
    }

    /// A claimed record's handler and its one write (completion or release).
    pub(super) async fn run_claimed<F, Fut, T, E, W>(
        &self,
        claim: IdempotencyRecord,
        record_id: &str,
        writes: Writes<'_, '_, W>,
        handler: F,
    ) -> Ran<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, W), E>>,
        T: Serialize + DeserializeOwned,
        W: Commit<S>,
    {
        let key = claim.key.clone();
        let owner = claim.owner.clone().unwrap_or_default();
        // Unless it completes, the later copies of the key are answered from the claim.
        let uncompleted = Some(claim.clone());
        let guarded = AssertUnwindSafe(async { handler().await }).catch_unwind();
        match guarded.await {
            Ok(Ok((value, work))) => {
                crate::faults::crash_point(CrashPoint::BeforeCompletion, record_id);
                match self.complete(claim, value, work, record_id, writes).await {
                    Ok((value, record)) => Ran {
                        record: Some(record),
                        ..Ran::result(Ok(Outcome::Computed(value)))
                    },
                    Err(error) => Ran {
                        record: uncompleted,
                        ..Ran::result(Err(error))
                    },
                }
            }
            Ok(Err(handler_error)) => Ran {
                record: uncompleted,
                ..Ran::result(
                    self.release(&key, &owner, record_id, handler_error, writes)
                        .await,
                )
            },
            Err(panic) => {
                let release = Release {
                    key: key.clone(),
                    owner,
                };
                match writes.release(&self.store, release).await {
                    Ok(()) => {
                        tracing::warn!(idempotency_key = %key, record_id, outcome = "handler_panicked", "handler panicked; claim removed so a retry runs it again");
                    }
                    Err(error) => {
                        tracing::error!(idempotency_key = %key, record_id, outcome = "release_failed", %error, "handler panicked and removing its claim failed");
                    }
                }
                Ran {
                    panic: Some(panic),
                    record: uncompleted,
                    ..Ran::result(Err(IdempotencyError::Store {
                        key,
                        record_id: record_id.to_string(),
                        source: StoreError::other("handler panicked"),
                    }))
                }
            }
        }
    }
}
