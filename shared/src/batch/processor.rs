//! Runs a per-record handler over a batch: concurrently for standard queues, in order per
//! message group for FIFO queues, each record in its own tracing span (with the feature
//! `otel`, a consumer span linked to its producer's context, its failure recorded on it), a
//! panic contained to its record, and nothing started that the deadline would cut off.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use tracing::Instrument;

use super::config::{BatchConfig, FifoPolicy};
use super::deadline::Deadline;
use super::error::FailureKind;
use super::error::{ErrorClass, RecordError};
use super::outcome::{BatchOutcome, RecordFailure, RecordOutcome};
use crate::clock::{Clock, SystemClock};
use crate::events::EventRecord;
#[cfg(not(feature = "otel"))]
use crate::telemetry::record_span;

/// Runs batches with one [`BatchConfig`].
#[derive(Clone)]
pub struct BatchProcessor {
    config: BatchConfig,
    /// What "now" is when a record is about to start, against the deadline.
    clock: Arc<dyn Clock>,
    /// Asked before each record starts: an error fails the record unstarted (a circuit
    /// breaker's gate, set per batch by its layer).
    gate: Option<Gate>,
}

/// A check run before each record starts; its error is the record's failure.
pub(crate) type Gate = Arc<dyn Fn(&EventRecord) -> Result<(), RecordError> + Send + Sync>;

impl Default for BatchProcessor {
    fn default() -> Self {
        Self::new(BatchConfig::default())
    }
}

impl fmt::Debug for BatchProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchProcessor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BatchProcessor {
    /// A processor with `config`.
    pub fn new(config: BatchConfig) -> Self {
        Self {
            config,
            clock: Arc::new(SystemClock),
            gate: None,
        }
    }

    /// The same processor, asking `gate` before each record starts: a record it refuses is
    /// reported failed with the gate's error, its handler never called. (A layer sets it for
    /// the batch it wraps, so that the layers inside, which run their records through this
    /// processor, keep their batch handling.)
    pub(crate) fn with_gate(&self, gate: Gate) -> Self {
        Self {
            gate: Some(gate),
            ..self.clone()
        }
    }

    /// Reads the time left before the deadline from `clock` instead of the system clock, so
    /// that tests can move time instead of sleeping.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Its configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// Runs `handler` for every record and returns each record's outcome in arrival order.
    /// A batch whose records carry a message group id is treated as FIFO.
    pub async fn process<H, Fut, O>(
        &self,
        records: Vec<EventRecord>,
        deadline: Deadline,
        handler: H,
    ) -> BatchOutcome<O>
    where
        H: Fn(EventRecord) -> Fut,
        Fut: Future<Output = Result<O, RecordError>>,
    {
        let started = Instant::now();
        let count = records.len();
        let fifo = records
            .iter()
            .any(|record| record.message_group_id().is_some());
        let run = |record| self.run_one(record, deadline, &handler);
        let mut outcomes: Vec<(usize, RecordOutcome<O>)> = match (fifo, self.config.fifo) {
            (false, _) => {
                futures::stream::iter(records.into_iter().enumerate())
                    .map(|(index, record)| run(record).map(move |outcome| (index, outcome)))
                    .buffer_unordered(self.config.max_concurrency)
                    .collect()
                    .await
            }
            (true, FifoPolicy::StopBatch) => {
                let indexed: Vec<_> = records.into_iter().enumerate().collect();
                in_order(indexed, FailureKind::SkippedAfterBatchStopped, &run).await
            }
            (true, FifoPolicy::SkipGroup) => {
                futures::stream::iter(message_groups(records))
                    .map(|group| in_order(group, FailureKind::SkippedAfterGroupFailure, &run))
                    .buffer_unordered(self.config.max_concurrency)
                    .flat_map(futures::stream::iter)
                    .collect()
                    .await
            }
        };
        outcomes.sort_by_key(|(index, _)| *index);
        debug_assert_eq!(outcomes.len(), count);
        BatchOutcome {
            records: outcomes.into_iter().map(|(_, outcome)| outcome).collect(),
            duration: started.elapsed(),
        }
    }

    async fn run_one<H, Fut, O>(
        &self,
        record: EventRecord,
        deadline: Deadline,
        handler: &H,
    ) -> RecordOutcome<O>
    where
        H: Fn(EventRecord) -> Fut,
        Fut: Future<Output = Result<O, RecordError>>,
    {
        let id = record.id().to_string();
        let span = span_of(&record);
        if deadline.remaining_at(self.clock.now_ms()) <= self.config.deadline_margin {
            let failure = RecordFailure {
                class: ErrorClass::Transient,
                kind: FailureKind::DeadlineReached,
                reason: format!(
                    "not started: less than {:?} left before the invocation's deadline",
                    self.config.deadline_margin
                ),
                retry_at_ms: None,
            };
            return report(id, Err(failure), span);
        }
        if let Some(refused) = self.gate.as_ref().and_then(|gate| gate(&record).err()) {
            return report(id, Err(RecordFailure::from(&refused)), span);
        }
        // The handler is called inside the guarded future, so a panic while building its
        // future is contained as well as one while polling it.
        let guarded = AssertUnwindSafe(async { handler(record).await }).catch_unwind();
        let result = match guarded.instrument(span.clone()).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err(RecordFailure::from(&error)),
            Err(panic) => Err(RecordFailure {
                class: ErrorClass::Transient,
                kind: FailureKind::Panicked,
                reason: format!("handler panicked: {}", panic_message(&*panic)),
                retry_at_ms: None,
            }),
        };
        report(id, result, span)
    }
}

/// Runs records one after another; after the first failure the rest are reported failed
/// with `skipped` and never run, so their order is kept for the redelivery.
async fn in_order<R, Fut, O>(
    records: Vec<(usize, EventRecord)>,
    skipped: FailureKind,
    run: &R,
) -> Vec<(usize, RecordOutcome<O>)>
where
    R: Fn(EventRecord) -> Fut,
    Fut: Future<Output = RecordOutcome<O>>,
{
    let mut outcomes = Vec::with_capacity(records.len());
    let mut failed: Option<String> = None;
    for (index, record) in records {
        let outcome = match &failed {
            Some(first) => {
                let failure = RecordFailure {
                    class: ErrorClass::Transient,
                    kind: skipped.clone(),
                    reason: format!(
                        "not run: earlier record {first} failed and order must be kept"
                    ),
                    retry_at_ms: None,
                };
                report(record.id().to_string(), Err(failure), span_of(&record))
            }
            None => run(record).await,
        };
        if outcome.result.is_err() && failed.is_none() {
            failed = Some(outcome.id.clone());
        }
        outcomes.push((index, outcome));
    }
    outcomes
}

/// Splits a FIFO batch into its message groups, each in arrival order, groups in order of
/// their first record.
fn message_groups(records: Vec<EventRecord>) -> Vec<Vec<(usize, EventRecord)>> {
    let mut positions: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<(usize, EventRecord)>> = Vec::new();
    for (index, record) in records.into_iter().enumerate() {
        let group = record.message_group_id().unwrap_or_default().to_string();
        let position = *positions.entry(group).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[position].push((index, record));
    }
    groups
}

/// A record's outcome decided outside the processor (a duplicate of an earlier record of
/// its batch), logged in the record's span as the processor logs its own.
pub(crate) fn settle<O>(record: &EventRecord, result: Result<O, RecordError>) -> RecordOutcome<O> {
    let result = result.map_err(|error| RecordFailure::from(&error));
    report(record.id().to_string(), result, span_of(record))
}

/// The record's span, with its event's ids when its body is an envelope (read from the JSON
/// the record parsed once, which the handler's decode uses too).
pub(crate) fn span_of(record: &EventRecord) -> tracing::Span {
    let json = record.json().ok();
    let field = |name| {
        json.and_then(|json| json.get(name))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    };
    #[cfg(feature = "otel")]
    return crate::telemetry::spans::record_span(record, field("eventId"), field("correlationId"));
    #[cfg(not(feature = "otel"))]
    record_span(record.id(), field("eventId"), field("correlationId"))
}

/// Logs a failure (with its class, inside the record's span) and wraps the outcome.
fn report<O>(
    id: String,
    result: Result<O, RecordFailure>,
    span: tracing::Span,
) -> RecordOutcome<O> {
    if let Err(failure) = &result {
        #[cfg(feature = "otel")]
        crate::telemetry::spans::record_failure(&span, failure);
        span.in_scope(|| {
            tracing::warn!(
                record_id = %id,
                class = %failure.class,
                kind = ?failure.kind,
                reason = %failure.reason,
                "record failed"
            );
        });
    }
    RecordOutcome { id, result }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}
