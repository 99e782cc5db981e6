//! The batched mode, [`Idempotency::execute_batch`]: the same semantics as
//! [`Idempotency::execute`] for every record of a batch, in fewer requests. Every record's
//! claim goes to the store in one [`claim_many`](IdempotencyStore::claim_many), the handlers
//! of the claimed records run concurrently, and their completions and releases are group
//! committed (see [`group_commit`](super::group_commit)): a batch of ten new records costs
//! two DynamoDB requests, a batch of ten duplicates one or two.
//!
//! Records of one batch that share a key run once: the first is the leader, the others wait
//! for it and replay its result (its payload validated against theirs); when the leader did
//! not produce a result they fail as [`AlreadyInProgress`](IdempotencyError::AlreadyInProgress),
//! to be retried, instead of racing it for the claim.

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
use super::config::MissingKeyPolicy;
use super::error::{IdempotencyError, StoreError};
use super::group_commit::{group_commit, Committer, Write};
use super::key::{idempotency_key, is_blank};
use super::record::{IdempotencyRecord, Status};
use super::run::{log_replaced, Idempotency, Outcome};
use super::store::{ClaimOutcome, Completion, IdempotencyStore, Release};
use crate::faults::CrashPoint;

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

/// A record whose handler runs under a claim.
struct Claimed {
    index: usize,
    claim: IdempotencyRecord,
}

/// A claimed record after its handler and write.
struct Ran<T, E> {
    index: usize,
    result: BatchResult<T, E>,
    /// The completed record, for the followers of its key.
    completed: Option<IdempotencyRecord>,
    panic: Option<Box<dyn Any + Send>>,
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
        let now_ms = self.clock.now_ms();
        let mut results: Vec<Option<BatchResult<T, E>>> = entries.iter().map(|_| None).collect();
        // The completed record of each key's leader, for its followers.
        let mut completed: HashMap<usize, IdempotencyRecord> = HashMap::new();
        let mut leaders: HashMap<String, usize> = HashMap::new();
        let mut followers: Vec<(usize, usize, String, Option<String>)> = Vec::new();
        let mut keyless = Vec::new();
        let mut claims = Vec::new();
        let mut hashes: HashMap<usize, Option<String>> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let Some(key_value) = self.config.key_source().extract(entry.payload) else {
                keyless.push(index);
                continue;
            };
            if is_blank(&key_value) {
                let source_description = self.config.key_source().to_string();
                tracing::warn!(record_id = entry.record_id, outcome = "blank_key", key_source = %source_description, "record has a blank idempotency key; failing it");
                results[index] = Some(Err(IdempotencyError::BlankKey {
                    record_id: entry.record_id.to_string(),
                    source_description,
                }));
                continue;
            }
            let key = idempotency_key(self.config.name(), &key_value);
            let payload_hash = self.payload_hash(entry.payload);
            if let Some(&leader) = leaders.get(&key) {
                followers.push((index, leader, key, payload_hash));
                continue;
            }
            leaders.insert(key.clone(), index);
            if let Some(cached) = self
                .cache
                .as_ref()
                .and_then(|cache| cache.get(&key, now_ms))
            {
                let replayed =
                    self.replay(&cached, payload_hash.as_deref(), entry.record_id, "cache");
                results[index] = Some(replayed.map(Outcome::Replayed));
                completed.insert(index, cached);
                continue;
            }
            let in_progress_expiry_ms = now_ms.saturating_add(saturating_millis(entry.remaining));
            let claim = IdempotencyRecord {
                key,
                status: Status::InProgress,
                expiration: self.claim_expiration(now_ms, in_progress_expiry_ms),
                in_progress_expiry_ms: Some(in_progress_expiry_ms),
                result: None,
                payload_hash: payload_hash.clone(),
                owner: Some(uuid::Uuid::new_v4().to_string()),
            };
            hashes.insert(index, payload_hash);
            claims.push(Claimed { index, claim });
        }

        let records: Vec<IdempotencyRecord> =
            claims.iter().map(|claimed| claimed.claim.clone()).collect();
        let outcomes = if records.is_empty() {
            Vec::new()
        } else {
            self.store.claim_many(&records, now_ms).await
        };
        let mut to_run = Vec::new();
        for (claimed, outcome) in claims.into_iter().zip(outcomes) {
            let entry = &entries[claimed.index];
            let payload_hash = hashes.remove(&claimed.index).flatten();
            match outcome {
                Ok(ClaimOutcome::Claimed { replaced }) => {
                    log_replaced(&claimed.claim.key, entry.record_id, replaced);
                    to_run.push(claimed);
                }
                Ok(ClaimOutcome::Exists(existing)) => {
                    if existing.status == Status::Completed {
                        completed.insert(claimed.index, existing.clone());
                    }
                    let handled =
                        self.handle_existing(existing, payload_hash.as_deref(), entry.record_id);
                    results[claimed.index] = Some(handled.map(Outcome::Replayed));
                }
                Err(source) => {
                    tracing::error!(idempotency_key = %claimed.claim.key, record_id = entry.record_id, outcome = "store_error", error = %source, "idempotency claim failed; handler not run");
                    results[claimed.index] = Some(Err(IdempotencyError::Store {
                        key: claimed.claim.key,
                        record_id: entry.record_id.to_string(),
                        source,
                    }));
                }
            }
        }

        let running = AtomicUsize::new(to_run.len());
        let (committer, writer) = group_commit(&self.store, &running);
        let runs = futures::future::join_all(to_run.into_iter().map(|claimed| {
            let committer = committer.clone();
            let handler = &handler;
            async move {
                let record_id = entries[claimed.index].record_id;
                self.run_claimed(claimed, record_id, committer, handler)
                    .await
            }
        }));
        drop(committer);
        let without_key = futures::future::join_all(keyless.into_iter().map(|index| {
            let handler = &handler;
            async move {
                let record_id = entries[index].record_id;
                (index, self.run_keyless(record_id, handler(index)).await)
            }
        }));
        let (ran, (), keyless_results) = futures::join!(runs, writer, without_key);

        let mut panic = None;
        for ran in ran {
            results[ran.index] = Some(ran.result);
            if let Some(record) = ran.completed {
                completed.insert(ran.index, record);
            }
            panic = panic.or(ran.panic);
        }
        for (index, result) in keyless_results {
            results[index] = Some(result);
        }
        for (index, leader, key, payload_hash) in followers {
            let record_id = entries[index].record_id;
            results[index] = Some(match completed.get(&leader) {
                Some(record) => self
                    .replay(record, payload_hash.as_deref(), record_id, "batch")
                    .map(Outcome::Replayed),
                None => {
                    tracing::info!(idempotency_key = %key, record_id, outcome = "in_progress", "an earlier record of the batch with this key did not complete; retry later");
                    Err(IdempotencyError::AlreadyInProgress {
                        key,
                        record_id: record_id.to_string(),
                        in_progress_expiry_ms: None,
                    })
                }
            });
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

    /// A claimed record's handler and its one write (completion or release).
    async fn run_claimed<F, Fut, T, E>(
        &self,
        claimed: Claimed,
        record_id: &str,
        committer: Committer<'_>,
        handler: &F,
    ) -> Ran<T, E>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned,
    {
        let Claimed { index, claim } = claimed;
        let key = claim.key.clone();
        let owner = claim.owner.clone().unwrap_or_default();
        let release = Write::Release(Release {
            key: key.clone(),
            owner: owner.clone(),
        });
        let ran = |result, completed, panic| Ran {
            index,
            result,
            completed,
            panic,
        };
        let guarded = AssertUnwindSafe(async { handler(index).await }).catch_unwind();
        let value = match guarded.await {
            Ok(Ok(value)) => value,
            Ok(Err(handler_error)) => {
                let result = match committer.write(release).await {
                    Ok(()) => {
                        tracing::info!(idempotency_key = %key, record_id, outcome = "handler_failed", "handler failed; claim removed so a retry runs it again");
                        Err(IdempotencyError::Handler(handler_error))
                    }
                    Err(StoreError::Fenced) => {
                        tracing::warn!(idempotency_key = %key, record_id, outcome = "release_fenced", "handler failed and its claim had been taken over; the new owner's record was left alone");
                        Err(IdempotencyError::ReleaseFenced {
                            key,
                            record_id: record_id.to_string(),
                            handler_error,
                        })
                    }
                    Err(source) => {
                        tracing::error!(idempotency_key = %key, record_id, outcome = "release_failed", error = %source, "handler failed and removing its claim failed");
                        Err(IdempotencyError::ReleaseFailed {
                            key,
                            record_id: record_id.to_string(),
                            source,
                            handler_error,
                        })
                    }
                };
                return ran(result, None, None);
            }
            Err(panic) => {
                match committer.write(release).await {
                    Ok(()) => {
                        tracing::warn!(idempotency_key = %key, record_id, outcome = "handler_panicked", "handler panicked; claim removed so a retry runs it again");
                    }
                    Err(error) => {
                        tracing::error!(idempotency_key = %key, record_id, outcome = "release_failed", %error, "handler panicked and removing its claim failed");
                    }
                }
                let result = Err(IdempotencyError::Store {
                    key,
                    record_id: record_id.to_string(),
                    source: StoreError::other("handler panicked"),
                });
                return ran(result, None, Some(panic));
            }
        };
        crate::faults::crash_point(CrashPoint::BeforeCompletion, record_id);
        // Stored only if it reads back, as in the per-record mode.
        let stored = serde_json::to_string(&value).and_then(|result| {
            serde_json::from_str::<T>(&result)?;
            Ok(result)
        });
        let result = match stored {
            Ok(result) => result,
            Err(source) => {
                tracing::error!(idempotency_key = %key, record_id, outcome = "result_not_serializable", error = %source, "handler result cannot be stored; removing the claim");
                if let Err(error) = committer.write(release).await {
                    tracing::error!(idempotency_key = %key, record_id, %error, "removing the claim failed too");
                }
                let error = IdempotencyError::ResultSerialization {
                    key,
                    record_id: record_id.to_string(),
                    source,
                };
                return ran(Err(error), None, None);
            }
        };
        let expiration = self.expiration(self.clock.now_ms());
        let completion = Completion {
            key: key.clone(),
            owner,
            result: result.clone(),
            expiration,
        };
        match committer.write(Write::Complete(completion)).await {
            Ok(()) => {
                tracing::info!(idempotency_key = %key, record_id, outcome = "completed", "claimed the idempotency key, ran the handler and stored its result");
                crate::faults::crash_point(CrashPoint::AfterCompletion, record_id);
                let record = IdempotencyRecord {
                    status: Status::Completed,
                    expiration,
                    result: Some(result),
                    ..claim
                };
                if let Some(cache) = &self.cache {
                    cache.put(record.clone());
                }
                ran(Ok(Outcome::Computed(value)), Some(record), None)
            }
            Err(StoreError::Fenced) => {
                tracing::error!(idempotency_key = %key, record_id, outcome = "completion_fenced", "handler ran but its claim was taken over; result not stored");
                let error = IdempotencyError::CompletionFenced {
                    key,
                    record_id: record_id.to_string(),
                };
                ran(Err(error), None, None)
            }
            Err(source) => {
                tracing::error!(idempotency_key = %key, record_id, outcome = "completion_failed", error = %source, "handler ran but storing its result failed");
                let error = IdempotencyError::CompletionFailed {
                    key,
                    record_id: record_id.to_string(),
                    source,
                };
                ran(Err(error), None, None)
            }
        }
    }

    /// A record without a key, per the missing-key policy.
    async fn run_keyless<T, E>(
        &self,
        record_id: &str,
        handler: impl Future<Output = Result<T, E>>,
    ) -> BatchResult<T, E> {
        let source_description = self.config.key_source().to_string();
        match self.config.missing_key_policy() {
            MissingKeyPolicy::Fail => {
                tracing::warn!(record_id, outcome = "missing_key", key_source = %source_description, "record has no idempotency key; failing it");
                Err(IdempotencyError::MissingKey {
                    record_id: record_id.to_string(),
                    source_description,
                })
            }
            MissingKeyPolicy::ProcessWithoutIdempotency => {
                tracing::warn!(record_id, outcome = "missing_key", key_source = %source_description, "record has no idempotency key; processing it without idempotency");
                handler
                    .await
                    .map(Outcome::Computed)
                    .map_err(IdempotencyError::Handler)
            }
        }
    }
}
