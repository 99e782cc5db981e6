//! A whole batch through an idempotency layer (batched claims, the default for batches of
//! more than one record): every record's claim in one request, then the records run by the
//! [`BatchProcessor`] as always (concurrency, FIFO order, deadline, one span each), their
//! completions group committed. A record of the batch whose key an earlier record has waits
//! for nothing: it is settled after the others, replaying the earlier one's result.
//!
//! If the process dies after the claims and before a record's completion, that record's
//! claim stays in progress until the invocation's deadline, exactly as a claim of the
//! per-record mode does when the process dies inside its handler: the redelivery, which
//! comes after the visibility timeout, finds the window over and takes it over.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::batched::{BatchEntry, Step};
use super::group_commit::group_commit;
use super::record::IdempotencyRecord;
use super::run::{claim_outcome, Commit, Idempotency, Outcome};
use super::store::{IdempotencyStore, Release};
use crate::batch::{settle, span_of, BatchOutcome, BatchProcessor, RecordError};
use crate::events::EventRecord;
use crate::handler::{Handled, Invocation};
use crate::telemetry::steps;

/// Whether `idempotency` claims `records` together rather than one by one.
pub(crate) fn batches<S>(idempotency: &Idempotency<S>, records: &[EventRecord]) -> bool {
    idempotency.config.batched_claims() && records.len() > 1
}

/// Runs `records` through `processor`, each with `handle`, under `idempotency` with
/// batched claims. `handle` returns the record's result and the work its completion
/// commits.
pub(crate) async fn process_batch<S, T, W, H, Fut>(
    idempotency: &Idempotency<S>,
    records: Vec<EventRecord>,
    invocation: &Invocation,
    processor: &BatchProcessor,
    handle: H,
) -> BatchOutcome<Handled<T>>
where
    S: IdempotencyStore,
    T: Serialize + DeserializeOwned,
    W: Commit<S>,
    H: Fn(EventRecord) -> Fut,
    Fut: Future<Output = Result<(T, W), RecordError>>,
{
    let remaining = idempotency.remaining_until(invocation.deadline().epoch_ms());
    // A body that is not JSON has no key: it fails as the poison it is, unclaimed.
    let entries: Vec<(usize, BatchEntry<'_>)> = records
        .iter()
        .enumerate()
        .filter_map(|(index, record)| {
            let payload = record.json().ok()?;
            Some((
                index,
                BatchEntry {
                    payload,
                    record_id: record.id(),
                    remaining,
                },
            ))
        })
        .collect();
    let planned = idempotency
        .plan_batch(&entries.iter().map(|(_, entry)| *entry).collect::<Vec<_>>())
        .await;
    let mut steps: Vec<Option<Step>> = records.iter().map(|_| None).collect();
    for ((index, _), step) in entries.iter().zip(planned) {
        steps[*index] = Some(step);
    }

    // The followers are settled afterwards; the others go to the processor, which hands
    // each record back by value, so its step is found by its id (in arrival order, should
    // two records share one).
    let mut followers = Vec::new();
    let mut queued: HashMap<String, VecDeque<(usize, Option<Step>)>> = HashMap::new();
    let mut to_run = Vec::new();
    let mut order = Vec::new();
    for (index, (record, step)) in records.iter().zip(steps).enumerate() {
        match step {
            Some(Step::Follow {
                leader,
                key,
                payload_hash,
            }) => followers.push((index, leader, key, payload_hash)),
            step => {
                queued
                    .entry(record.id().to_string())
                    .or_default()
                    .push_back((index, step));
                to_run.push(record.clone());
                order.push(index);
            }
        }
    }
    let claims: HashMap<usize, Release> = queued
        .values()
        .flatten()
        .filter_map(|(index, step)| Some((*index, step.as_ref()?.claim()?)))
        .collect();
    let queued = Mutex::new(queued);
    let started: Mutex<HashSet<usize>> = Mutex::new(HashSet::new());
    // The record each leader ended with, which its key's later copies are answered from.
    let ended: Mutex<HashMap<usize, IdempotencyRecord>> = Mutex::new(HashMap::new());

    let running = AtomicUsize::new(claims.len());
    let (committer, writer) = group_commit(idempotency.store(), &running);
    let handle = &handle;
    let (queued, started, ended) = (&queued, &started, &ended);
    // The writer ends once the committer is dropped, after the last record's write.
    let processed = async move {
        let committer = committer;
        let committer = &committer;
        processor
            .process(to_run, invocation.deadline(), |record| async move {
                let taken = queued
                    .lock()
                    .ok()
                    .and_then(|mut queued| queued.get_mut(record.id())?.pop_front());
                let Some((index, step)) = taken else {
                    return Err(RecordError::transient(std::io::Error::other(
                        "record missing from its batch's claims",
                    )));
                };
                let Some(step) = step else {
                    return Err(match record.json() {
                        Err(error) => RecordError::permanent(error),
                        Ok(_) => RecordError::transient(std::io::Error::other(
                            "record left out of its batch's claims",
                        )),
                    });
                };
                if let Ok(mut started) = started.lock() {
                    started.insert(index);
                }
                let record_id = record.id().to_string();
                let ran = idempotency
                    .run_step(step, &record_id, committer, move || handle(record))
                    .await;
                if let Some(record) = ran.record {
                    if let Ok(mut ended) = ended.lock() {
                        ended.insert(index, record);
                    }
                }
                if let Some(panic) = ran.panic {
                    // Its claim is released; the processor contains the panic to the record.
                    std::panic::resume_unwind(panic);
                }
                Ok(handled(ran.result?))
            })
            .await
    };
    let (outcome, ()) = futures::join!(processed, writer);

    // Claims of records the processor never started (after a FIFO failure, or too close
    // to the deadline) are released, so their redelivery runs them at once.
    let started = started.lock().map(|set| set.clone()).unwrap_or_default();
    let unrun: Vec<(usize, Release)> = claims
        .into_iter()
        .filter(|(index, _)| !started.contains(index))
        .collect();
    if !unrun.is_empty() {
        let releases: Vec<Release> = unrun.iter().map(|(_, release)| release.clone()).collect();
        let results = idempotency.store().release_many(&releases).await;
        for ((index, release), result) in unrun.iter().zip(results) {
            // The processor has already reported this record, in its span, and ended it:
            // the release is logged with the record's ids, not in a second span of the
            // record (which would show it twice in its trace).
            let record = &records[*index];
            let record_id = record.id();
            let (event_id, correlation_id) = envelope_ids(record);
            match result {
                Ok(()) => {
                    tracing::info!(idempotency_key = %release.key, record_id, event_id, correlation_id, outcome = "released_unrun", "record not run; its claim released")
                }
                Err(error) => {
                    tracing::warn!(idempotency_key = %release.key, record_id, event_id, correlation_id, outcome = "release_failed", %error, "record not run and releasing its claim failed; it waits for the claim's window to end")
                }
            }
        }
    }

    let ended = ended.lock().map(|map| map.clone()).unwrap_or_default();
    let mut settled: Vec<Option<_>> = records.iter().map(|_| None).collect();
    for (index, outcome) in order.into_iter().zip(outcome.records) {
        settled[index] = Some(outcome);
    }
    for (index, leader, key, payload_hash) in followers {
        let record = &records[index];
        let result = span_of(record).in_scope(|| {
            let claimed = key.clone();
            let followed = idempotency.follow::<T, RecordError>(
                ended.get(&leader),
                key,
                payload_hash.as_deref(),
                record.id(),
            );
            steps::claimed_in_batch(&claimed, claim_outcome(&followed));
            followed.map(handled).map_err(RecordError::from)
        });
        settled[index] = Some(settle(record, result));
    }
    BatchOutcome {
        records: settled.into_iter().flatten().collect(),
        duration: outcome.duration,
    }
}

fn handled<T>(outcome: Outcome<T>) -> Handled<T> {
    match outcome {
        Outcome::Computed(output) => Handled::computed(output),
        Outcome::Replayed(output) => Handled {
            output,
            replayed: true,
        },
    }
}

/// The event id and correlation id of `record`'s envelope (empty when it is none), for a
/// log line outside the record's span.
fn envelope_ids(record: &EventRecord) -> (&str, &str) {
    let json = record.json().ok();
    let field = |name| {
        json.and_then(|json| json.get(name))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    };
    (field("eventId"), field("correlationId"))
}
