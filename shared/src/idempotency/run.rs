//! The orchestrator, [`Idempotency`]: key, cache, claim, handler, fenced completion or
//! release, in that order, with one tracing event per outcome.

use std::future::Future;

use crate::faults::CrashPoint;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::cache::RecordCache;
use super::clock::{saturating_millis, Clock, SystemClock};
use super::config::{IdempotencyConfig, MissingKeyPolicy};
use super::error::{IdempotencyError, StoreError};
use super::group_commit::{Write, Writes};
use super::key::{hash_value, idempotency_key, is_blank};
use super::record::{IdempotencyRecord, Status};
use super::store::{ClaimOutcome, Completion, IdempotencyStore, Release};
use crate::telemetry::steps;
use tracing::Instrument;

/// What [`Idempotency::execute`] returned: the handler's result computed now, or the
/// result an earlier delivery stored, replayed without running the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Outcome<T> {
    /// The handler ran now.
    Computed(T),
    /// A duplicate: the stored result, the handler not run.
    Replayed(T),
}

impl<T> Outcome<T> {
    /// The result, however it was obtained.
    pub fn into_inner(self) -> T {
        match self {
            Self::Computed(value) | Self::Replayed(value) => value,
        }
    }

    /// Whether the result was replayed.
    pub fn is_replayed(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }
}

/// Runs handlers at most once per idempotency key (see the [module docs](super)).
pub struct Idempotency<S> {
    pub(super) store: S,
    pub(super) config: IdempotencyConfig,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) cache: Option<RecordCache>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: IdempotencyStore> Idempotency<S> {
    /// An idempotency layer over `store`, configured by `config`, on the system clock.
    pub fn new(store: S, config: IdempotencyConfig) -> Self {
        let cache = NonZeroUsize::new(config.cache_capacity()).map(RecordCache::new);
        Self {
            store,
            config,
            clock: Arc::new(SystemClock),
            cache,
        }
    }

    /// Uses `clock` instead of the system clock (tests, simulations).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    /// The idempotency key of `payload` (`"{name}#{sha256 hex}"`), or `None` when it has none.
    pub fn key_for(&self, payload: &Value) -> Option<String> {
        self.config
            .key_source()
            .extract(payload)
            .map(|value| idempotency_key(self.config.name(), &value))
    }

    /// The payload validation hash of `payload`, or `None` when validation is off. Missing
    /// validated values hash as `null`.
    pub fn payload_hash(&self, payload: &Value) -> Option<String> {
        match self.config.payload_validation() {
            [] => None,
            [path] => Some(hash_value(path.select(payload).unwrap_or(&Value::Null))),
            paths => Some(hash_value(&Value::Array(
                paths
                    .iter()
                    .map(|path| path.select(payload).cloned().unwrap_or(Value::Null))
                    .collect(),
            ))),
        }
    }

    /// The time left until `deadline_ms` (epoch milliseconds, as in the Lambda context),
    /// zero when it has passed: the `remaining` to pass to [`run`](Self::run).
    pub fn remaining_until(&self, deadline_ms: u64) -> Duration {
        Duration::from_millis(deadline_ms.saturating_sub(self.clock.now_ms()))
    }

    /// Runs `handler` unless this payload's key has already been processed, and returns its
    /// result, or the stored result of the earlier run.
    ///
    /// - `payload`: the record (or whole event) the key and validation hash are taken from.
    ///   Both are computed once, before the handler runs, so nothing the handler does can
    ///   change the key its result is stored under.
    /// - `record_id`: identifies the record in logs (an SQS `messageId`, a request id).
    /// - `remaining`: time left before the invocation's deadline. The claim can be taken over
    ///   by another delivery once it has passed, because by then this invocation has been
    ///   stopped. Zero is valid and means exactly that: the claim is immediately takeable
    ///   (Powertools TypeScript treats zero as "unknown" and blocks the key for the whole
    ///   record TTL instead).
    ///
    /// The handler's result must survive a JSON round trip (`T: Serialize +
    /// DeserializeOwned`); falsy values (`0`, `""`, `{}`, `null`, `false`) replay exactly.
    pub async fn run<F, Fut, T, E>(
        &self,
        payload: &Value,
        record_id: &str,
        remaining: Duration,
        handler: F,
    ) -> Result<T, IdempotencyError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned,
    {
        self.execute(payload, record_id, remaining, handler)
            .await
            .map(Outcome::into_inner)
    }

    /// [`run`](Self::run), saying whether the result was computed now or replayed.
    pub async fn execute<F, Fut, T, E>(
        &self,
        payload: &Value,
        record_id: &str,
        remaining: Duration,
        handler: F,
    ) -> Result<Outcome<T>, IdempotencyError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned,
    {
        self.execute_with(payload, record_id, remaining, || async {
            handler().await.map(|value| (value, NoWork))
        })
        .await
    }

    /// [`execute`](Self::execute) for a handler whose result comes with work to commit in
    /// the same step as its completion (`W`: a unit of work, or nothing).
    pub(crate) async fn execute_with<F, Fut, T, E, W>(
        &self,
        payload: &Value,
        record_id: &str,
        remaining: Duration,
        handler: F,
    ) -> Result<Outcome<T>, IdempotencyError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, W), E>>,
        T: Serialize + DeserializeOwned,
        W: Commit<S>,
    {
        let Some(key_value) = self.config.key_source().extract(payload) else {
            return self.run_without_key(record_id, handler).await;
        };
        if is_blank(&key_value) {
            let source_description = self.config.key_source().to_string();
            tracing::warn!(record_id, outcome = "blank_key", key_source = %source_description, "record has a blank idempotency key; failing it");
            return Err(IdempotencyError::BlankKey {
                record_id: record_id.to_string(),
                source_description,
            });
        }
        let key = idempotency_key(self.config.name(), &key_value);
        let payload_hash = self.payload_hash(payload);
        let now_ms = self.clock.now_ms();

        let claim_span = steps::claim(&key);
        if let Some(cached) = self
            .cache
            .as_ref()
            .and_then(|cache| cache.get(&key, now_ms))
        {
            let replayed = claim_span
                .in_scope(|| self.replay(&cached, payload_hash.as_deref(), record_id, "cache"));
            steps::claimed(&claim_span, claim_outcome(&replayed));
            return replayed.map(Outcome::Replayed);
        }

        let owner = uuid::Uuid::new_v4().to_string();
        let in_progress_expiry_ms = now_ms.saturating_add(saturating_millis(remaining));
        let claim = IdempotencyRecord {
            key: key.clone(),
            status: Status::InProgress,
            expiration: self.claim_expiration(now_ms, in_progress_expiry_ms),
            in_progress_expiry_ms: Some(in_progress_expiry_ms),
            result: None,
            payload_hash: payload_hash.clone(),
            owner: Some(owner.clone()),
        };
        let claimed = self
            .store
            .claim(&claim, now_ms)
            .instrument(claim_span.clone())
            .await
            .map(|outcome| outcome.seen_by(&claim));
        let _claim_span = claim_span.enter();
        match claimed {
            Ok(ClaimOutcome::Claimed { replaced }) => {
                steps::claimed(&claim_span, steps::ClaimOutcome::CLAIMED);
                log_replaced(&key, record_id, replaced);
            }
            Ok(ClaimOutcome::Exists(existing)) => {
                let replayed = self.handle_existing(existing, payload_hash.as_deref(), record_id);
                steps::claimed(&claim_span, claim_outcome(&replayed));
                return replayed.map(Outcome::Replayed);
            }
            Err(source) => {
                steps::claimed(&claim_span, steps::ClaimOutcome::FAILED);
                tracing::error!(idempotency_key = %key, record_id, outcome = "store_error", error = %source, "idempotency claim failed; handler not run");
                return Err(IdempotencyError::Store {
                    key,
                    record_id: record_id.to_string(),
                    source,
                });
            }
        }

        drop(_claim_span);
        drop(claim_span);
        // A panicking handler releases its claim like a failing one: left in progress, the
        // key would block every retry until the window ends (both of an asynchronous
        // invocation's retries land inside it), and the event would be dead-lettered
        // without ever having run to completion. The panic then goes on unwinding.
        let ran = self
            .run_claimed(claim, record_id, Writes::Direct, handler)
            .await;
        if let Some(panic) = ran.panic {
            std::panic::resume_unwind(panic);
        }
        ran.result
    }

    pub(super) async fn run_without_key<F, Fut, T, E, W>(
        &self,
        record_id: &str,
        handler: F,
    ) -> Result<Outcome<T>, IdempotencyError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, W), E>>,
        W: Commit<S>,
    {
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
                let (value, work) = handler().await.map_err(IdempotencyError::Handler)?;
                match work.commit_alone(&self.store, record_id).await {
                    Ok(()) => Ok(Outcome::Computed(value)),
                    Err(source) => Err(IdempotencyError::NotCommitted {
                        key: String::new(),
                        record_id: record_id.to_string(),
                        source,
                    }),
                }
            }
        }
    }

    pub(super) fn expiration(&self, now_ms: u64) -> u64 {
        (now_ms / 1000).saturating_add(self.config.record_ttl().as_secs())
    }

    /// The expiration of a claim: the record TTL, but never before the in-progress window
    /// ends (rounded up to the second). With a TTL shorter than the time left, an expired
    /// record would otherwise let a duplicate claim the key, and DynamoDB's TTL delete it,
    /// while the claimant's handler is still running.
    pub(super) fn claim_expiration(&self, now_ms: u64, in_progress_expiry_ms: u64) -> u64 {
        self.expiration(now_ms)
            .max(in_progress_expiry_ms.div_ceil(1000))
    }

    pub(super) fn handle_existing<T: DeserializeOwned, E>(
        &self,
        existing: IdempotencyRecord,
        payload_hash: Option<&str>,
        record_id: &str,
    ) -> Result<T, IdempotencyError<E>> {
        match existing.status {
            Status::Completed => {
                let replayed = self.replay(&existing, payload_hash, record_id, "store");
                if replayed.is_ok() {
                    if let Some(cache) = &self.cache {
                        cache.put(existing);
                    }
                }
                replayed
            }
            Status::InProgress => {
                check_payload(&existing, payload_hash, record_id)?;
                tracing::info!(idempotency_key = %existing.key, record_id, outcome = "in_progress", in_progress_expiry_ms = existing.in_progress_expiry_ms, "idempotency key is in progress elsewhere; retry later");
                Err(IdempotencyError::AlreadyInProgress {
                    key: existing.key,
                    record_id: record_id.to_string(),
                    in_progress_expiry_ms: existing.in_progress_expiry_ms,
                })
            }
        }
    }

    pub(super) fn replay<T: DeserializeOwned, E>(
        &self,
        record: &IdempotencyRecord,
        payload_hash: Option<&str>,
        record_id: &str,
        from: &'static str,
    ) -> Result<T, IdempotencyError<E>> {
        check_payload(record, payload_hash, record_id)?;
        let Some(stored) = record.result.as_deref() else {
            return Err(IdempotencyError::Store {
                key: record.key.clone(),
                record_id: record_id.to_string(),
                source: StoreError::CorruptRecord {
                    key: record.key.clone(),
                    reason: "completed record has no result".into(),
                },
            });
        };
        match serde_json::from_str(stored) {
            Ok(value) => {
                tracing::info!(idempotency_key = %record.key, record_id, outcome = "replayed", from, "duplicate delivery; replayed the stored result without running the handler");
                Ok(value)
            }
            Err(source) => {
                tracing::error!(idempotency_key = %record.key, record_id, outcome = "stored_result_unreadable", error = %source, "stored result does not fit the handler's result type");
                Err(IdempotencyError::StoredResultUnreadable {
                    key: record.key.clone(),
                    record_id: record_id.to_string(),
                    source,
                })
            }
        }
    }

    /// Stores `value` as `claim`'s result (with `work`, when it carries any) and returns it
    /// with the completed record.
    pub(super) async fn complete<T: Serialize + DeserializeOwned, E, W: Commit<S>>(
        &self,
        claim: IdempotencyRecord,
        value: T,
        work: W,
        record_id: &str,
        writes: Writes<'_, '_, W>,
    ) -> Result<(T, IdempotencyRecord), IdempotencyError<E>> {
        let key = claim.key.clone();
        let owner = claim.owner.clone().unwrap_or_default();
        // Stored only if it reads back: a result that does not (NaN written as `null`)
        // would make every later duplicate fail when it is replayed.
        let stored = serde_json::to_string(&value).and_then(|result| {
            serde_json::from_str::<T>(&result)?;
            Ok(result)
        });
        let result = match stored {
            Ok(result) => result,
            Err(source) => {
                tracing::error!(idempotency_key = %key, record_id, outcome = "result_not_serializable", error = %source, "handler result cannot be stored; removing the claim");
                self.release_refused(&key, owner, record_id, writes).await;
                return Err(IdempotencyError::ResultSerialization {
                    key,
                    record_id: record_id.to_string(),
                    source,
                });
            }
        };
        // The record lives for the TTL from completion, not from the claim.
        let expiration = self.expiration(self.clock.now_ms());
        let record = IdempotencyRecord {
            status: Status::Completed,
            expiration,
            result: Some(result.clone()),
            ..claim
        };
        // Refused before it is sent: a result no store can keep would fail every retry's
        // completion after running the handler again (a permanent error, as for a result
        // that cannot be serialized).
        if let Err(error) = record.check_limits() {
            let reason = match error {
                StoreError::LimitExceeded { reason, .. } => reason,
                other => other.to_string(),
            };
            tracing::error!(idempotency_key = %key, record_id, outcome = "result_too_large", %reason, "handler result is too large to store; removing the claim");
            self.release_refused(&key, owner, record_id, writes).await;
            return Err(IdempotencyError::ResultTooLarge {
                key,
                record_id: record_id.to_string(),
                reason,
            });
        }
        // A completion that shares its batch's request is told on the record's span (the
        // request has its own span, from the group commit); a direct one has its own span.
        let grouped = matches!(writes, Writes::Grouped(_));
        let complete_span = if grouped {
            tracing::Span::none()
        } else {
            steps::complete(&key, work.events())
        };
        let committed = async {
            match writes {
                // Shares its batch's request (a transaction, for units of work).
                Writes::Grouped(committer) => {
                    let completion = Completion {
                        key: key.clone(),
                        owner: owner.clone(),
                        result: result.clone(),
                        expiration,
                    };
                    committer.write(Write::Complete(completion, work)).await
                }
                Writes::Direct => {
                    work.commit(&self.store, &key, &owner, &result, expiration)
                        .await
                }
            }
        }
        .instrument(complete_span.clone())
        .await;
        let completion = match &committed {
            Ok(()) => "completed",
            Err(StoreError::Fenced) => "fenced",
            Err(_) if W::ATOMIC => "not_committed",
            Err(_) => "failed",
        };
        if grouped {
            steps::completed_in_batch(completion, committed.is_ok());
        } else {
            steps::completed(&complete_span, completion, committed.is_ok());
        }
        drop(complete_span);
        match committed {
            Ok(()) => {
                tracing::info!(idempotency_key = %key, record_id, outcome = "completed", "claimed the idempotency key, ran the handler and stored its result");
                crate::faults::crash_point(CrashPoint::AfterCompletion, record_id);
                if let Some(cache) = &self.cache {
                    cache.put(record.clone());
                }
                Ok((value, record))
            }
            Err(StoreError::Fenced) => {
                tracing::error!(idempotency_key = %key, record_id, outcome = "completion_fenced", "handler ran but its claim was taken over; result not stored");
                Err(IdempotencyError::CompletionFenced {
                    key,
                    record_id: record_id.to_string(),
                })
            }
            Err(source) if W::ATOMIC => {
                // Nothing of the unit of work happened (or, if the answer was lost, all of
                // it did, and the release below is refused: it never removes a completed
                // record). Released, a retry runs the handler again without waiting out
                // the window.
                let released = self.store.release(&key, &owner).await;
                tracing::warn!(idempotency_key = %key, record_id, outcome = "not_committed", error = %source, claim_released = released.is_ok(), "handler ran but its unit of work was not committed");
                Err(IdempotencyError::NotCommitted {
                    key,
                    record_id: record_id.to_string(),
                    source,
                })
            }
            Err(source) => {
                tracing::error!(idempotency_key = %key, record_id, outcome = "completion_failed", error = %source, "handler ran but storing its result failed");
                Err(IdempotencyError::CompletionFailed {
                    key,
                    record_id: record_id.to_string(),
                    source,
                })
            }
        }
    }

    /// Removes the claim of a handler whose result cannot be stored (it cannot be replayed,
    /// so the key must not stay blocked); a failure to remove it is logged, and the claim
    /// then ends with its window.
    async fn release_refused<W>(
        &self,
        key: &str,
        owner: String,
        record_id: &str,
        writes: Writes<'_, '_, W>,
    ) {
        let release = Release {
            key: key.to_string(),
            owner,
        };
        if let Err(error) = writes.release(&self.store, release).await {
            tracing::error!(idempotency_key = %key, record_id, %error, "removing the claim failed too");
        }
    }

    /// Releases the claim of a handler that failed with `handler_error`.
    pub(super) async fn release<T, E, W>(
        &self,
        key: &str,
        owner: &str,
        record_id: &str,
        handler_error: E,
        writes: Writes<'_, '_, W>,
    ) -> Result<T, IdempotencyError<E>> {
        let release = Release {
            key: key.to_string(),
            owner: owner.to_string(),
        };
        match writes.release(&self.store, release).await {
            Ok(()) => {
                tracing::info!(idempotency_key = %key, record_id, outcome = "handler_failed", "handler failed; claim removed so a retry runs it again");
                Err(IdempotencyError::Handler(handler_error))
            }
            Err(StoreError::Fenced) => {
                tracing::warn!(idempotency_key = %key, record_id, outcome = "release_fenced", "handler failed and its claim had been taken over; the new owner's record was left alone");
                Err(IdempotencyError::ReleaseFenced {
                    key: key.to_string(),
                    record_id: record_id.to_string(),
                    handler_error,
                })
            }
            Err(source) => {
                tracing::error!(idempotency_key = %key, record_id, outcome = "release_failed", error = %source, "handler failed and removing its claim failed");
                Err(IdempotencyError::ReleaseFailed {
                    key: key.to_string(),
                    record_id: record_id.to_string(),
                    source,
                    handler_error,
                })
            }
        }
    }
}

/// Compares the payload hash with the stored one. A record stored without a hash (written
/// before validation was turned on) is not compared: there is nothing to compare with.
pub(super) fn check_payload<E>(
    record: &IdempotencyRecord,
    payload_hash: Option<&str>,
    record_id: &str,
) -> Result<(), IdempotencyError<E>> {
    match (record.payload_hash.as_deref(), payload_hash) {
        (Some(stored), Some(current)) if stored != current => {
            tracing::warn!(idempotency_key = %record.key, record_id, outcome = "validation_failed", "payload differs from the one stored under this idempotency key");
            Err(IdempotencyError::PayloadValidation {
                key: record.key.clone(),
                record_id: record_id.to_string(),
            })
        }
        _ => Ok(()),
    }
}

pub(super) fn log_replaced(key: &str, record_id: &str, replaced: Option<IdempotencyRecord>) {
    match replaced {
        Some(old) if old.status == Status::InProgress => {
            tracing::warn!(idempotency_key = %key, record_id, outcome = "takeover", previous_in_progress_expiry_ms = old.in_progress_expiry_ms, "took over an in-progress claim whose window had expired");
        }
        Some(_) => {
            tracing::info!(idempotency_key = %key, record_id, outcome = "expired_record_replaced", "earlier record had expired; running the handler again");
        }
        None => {
            tracing::debug!(idempotency_key = %key, record_id, outcome = "claimed", "claimed the idempotency key");
        }
    }
}

/// What completes a claim: the completion alone ([`NoWork`]) or, for a store that can, the
/// completion and a unit of work in one atomic step.
pub(crate) trait Commit<S> {
    /// Whether a failed commit wrote nothing (so its claim can be released at once).
    const ATOMIC: bool;

    /// How many events the commit stages in the outbox (the completion's span says so).
    fn events(&self) -> usize {
        0
    }

    /// Completes `key` for `owner`, with whatever this carries.
    fn commit(
        self,
        store: &S,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> impl Future<Output = Result<(), StoreError>>;

    /// Commits what this carries without an idempotency record (a record without a key,
    /// processed anyway by policy).
    fn commit_alone(
        self,
        store: &S,
        record_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>>;

    /// Completes each of `completions` with what it carries, as few requests as the store
    /// can: one result per completion, in order (the batched mode's group commit).
    fn commit_many(
        store: &S,
        completions: Vec<(Completion, Self)>,
    ) -> impl Future<Output = Vec<Result<(), StoreError>>>
    where
        Self: Sized;
}

/// Nothing but the completion.
pub(crate) struct NoWork;

impl<S: IdempotencyStore> Commit<S> for NoWork {
    const ATOMIC: bool = false;

    fn commit(
        self,
        store: &S,
        key: &str,
        owner: &str,
        result: &str,
        expiration: u64,
    ) -> impl Future<Output = Result<(), StoreError>> {
        store.complete(key, owner, result, expiration)
    }

    async fn commit_alone(self, _: &S, _: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn commit_many(
        store: &S,
        completions: Vec<(Completion, Self)>,
    ) -> Vec<Result<(), StoreError>> {
        let completions: Vec<Completion> = completions
            .into_iter()
            .map(|(completion, _)| completion)
            .collect();
        store.complete_many(&completions).await
    }
}

/// What a claim found, for its span, from the answer a duplicate was given.
pub(super) fn claim_outcome<T, E>(answer: &Result<T, IdempotencyError<E>>) -> steps::ClaimOutcome {
    match answer {
        Ok(_) => steps::ClaimOutcome::REPLAYED,
        Err(IdempotencyError::AlreadyInProgress { .. }) => steps::ClaimOutcome::IN_PROGRESS,
        Err(_) => steps::ClaimOutcome::FAILED,
    }
}
