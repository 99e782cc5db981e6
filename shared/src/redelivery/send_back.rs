//! [`Redelivery`]: failed SQS records sent back to their queues with a delay, through
//! `ChangeMessageVisibilityBatch` (one request per queue and ten records).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;

use super::queue::QueueUrls;
use super::{RecordBackoff, RedeliveryError};
use crate::batch::BatchOutcome;

/// One received SQS message to make visible again after `delay`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelayedRecord {
    /// Its queue's ARN (the record's `eventSourceARN`).
    pub queue_arn: String,
    /// Its `messageId`, for the logs.
    pub message_id: String,
    /// The receipt handle of the receive being answered.
    pub receipt_handle: String,
    /// How long it stays invisible from now (whole seconds, rounded up; at most 12 hours).
    pub delay: Duration,
}

/// Sends an SQS batch's transiently failed records back to their queues with the delay its
/// [`RecordBackoff`] gives each, before the batch response returns. Given to a function with
/// [`EventFunction::with_redelivery`](crate::runtime::EventFunction::with_redelivery);
/// needs `sqs:GetQueueUrl` and `sqs:ChangeMessageVisibility` on the function's queues.
///
/// Costs per batch with failures: one `ChangeMessageVisibilityBatch` per queue and ten
/// failed records, and one `GetQueueUrl` per queue in the life of the process. A batch
/// without failures, or [`RecordBackoff::off`], makes no request.
#[derive(Debug)]
pub struct Redelivery {
    sqs: aws_sdk_sqs::Client,
    backoff: RecordBackoff,
    urls: QueueUrls,
}

impl Redelivery {
    /// Sends records back through `sqs` with the [default](RecordBackoff::default) backoff.
    pub fn new(sqs: aws_sdk_sqs::Client) -> Self {
        Self {
            sqs,
            backoff: RecordBackoff::default(),
            urls: QueueUrls::default(),
        }
    }

    /// With `backoff` instead of the default.
    pub fn with_backoff(mut self, backoff: RecordBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The backoff it applies.
    pub fn backoff(&self) -> RecordBackoff {
        self.backoff
    }

    /// Sends the failed records of `event` that the backoff delays back with their delays;
    /// returns what could not be done (already logged).
    pub async fn back_off<O>(
        &self,
        event: &SqsEvent,
        outcome: &BatchOutcome<O>,
    ) -> Vec<RedeliveryError> {
        if self.backoff.backoff().is_none() || outcome.failed() == 0 {
            return Vec::new();
        }
        let mut rng = fastrand::Rng::new();
        let delayed = delays(&self.backoff, event, outcome, now_ms(), &mut rng);
        self.send_back(delayed).await
    }

    /// Makes each record visible again after its delay: the step any reason to hold a
    /// record back (the backoff, a circuit breaker's next probe) goes through. Best effort:
    /// each record it could not delay is logged and returned, and comes back after its
    /// queue's visibility timeout.
    pub async fn send_back(&self, records: Vec<DelayedRecord>) -> Vec<RedeliveryError> {
        let mut by_queue: BTreeMap<String, Vec<DelayedRecord>> = BTreeMap::new();
        for record in records {
            by_queue
                .entry(record.queue_arn.clone())
                .or_default()
                .push(record);
        }
        let mut requests = Vec::new();
        let mut errors = Vec::new();
        for (arn, records) in &by_queue {
            match self.urls.url(&self.sqs, arn).await {
                Ok(url) => {
                    for chunk in records.chunks(10) {
                        requests.push(self.change_visibility(url.clone(), chunk));
                    }
                }
                Err(error) => errors.push(error),
            }
        }
        errors.extend(
            futures::future::join_all(requests)
                .await
                .into_iter()
                .flatten(),
        );
        for error in &errors {
            tracing::warn!(error = %chain(error), "a failed record keeps its queue's visibility timeout");
        }
        errors
    }

    /// One `ChangeMessageVisibilityBatch` of up to ten records of the queue at `url`.
    async fn change_visibility(
        &self,
        url: String,
        records: &[DelayedRecord],
    ) -> Vec<RedeliveryError> {
        let entries = records.iter().enumerate().filter_map(|(index, record)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(index.to_string())
                .receipt_handle(&record.receipt_handle)
                .visibility_timeout(whole_seconds(record.delay))
                .build()
                .ok()
        });
        let sent = self
            .sqs
            .change_message_visibility_batch()
            .queue_url(&url)
            .set_entries(Some(entries.collect()))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(error) => {
                return vec![RedeliveryError::Request {
                    queue_url: url,
                    count: records.len(),
                    source: Box::new(error),
                }]
            }
        };
        for record in records {
            tracing::debug!(record_id = %record.message_id, delay_s = whole_seconds(record.delay), "record sent back with a delay");
        }
        output
            .failed()
            .iter()
            .map(|failed| RedeliveryError::Refused {
                queue_url: url.clone(),
                message_id: failed
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| records.get(index))
                    .map(|record| record.message_id.clone())
                    .unwrap_or_default(),
                code: failed.code().to_string(),
                message: failed.message().unwrap_or_default().to_string(),
            })
            .collect()
    }
}

/// The failed records of `event` the backoff holds back, with their delays.
pub(crate) fn delays<O>(
    backoff: &RecordBackoff,
    event: &SqsEvent,
    outcome: &BatchOutcome<O>,
    now_ms: u64,
    rng: &mut fastrand::Rng,
) -> Vec<DelayedRecord> {
    let failures: BTreeMap<&str, _> = outcome.failures().collect();
    event
        .records
        .iter()
        .filter_map(|message| {
            let message_id = message.message_id.as_deref()?;
            let failure = failures.get(message_id)?;
            let receive_count = message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|count| count.parse().ok());
            let delay = backoff.delay(failure, receive_count, now_ms, rng)?;
            Some(DelayedRecord {
                queue_arn: message.event_source_arn.clone()?,
                message_id: message_id.to_string(),
                receipt_handle: message.receipt_handle.clone()?,
                delay,
            })
        })
        .collect()
}

/// A delay as SQS takes it: whole seconds, rounded up, within 0..=43,200.
fn whole_seconds(delay: Duration) -> i32 {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    i32::try_from(seconds.min(super::SQS_MAX_VISIBILITY.as_secs())).unwrap_or(43_200)
}

/// The error with its causes, `: `-separated (an SDK error's own message says little).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
