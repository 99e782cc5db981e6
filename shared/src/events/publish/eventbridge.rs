//! Putting events on an EventBridge bus with PutEvents.

use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::batch::{publish_all, BatchSender, EntryFailure, RequestFailure};
use super::contract::ContractCheck;
use super::{OutgoingEvent, PublishFailure, RetryPolicy};
use crate::events::Carrier;

/// Entry error codes worth another attempt; the others (malformed detail, access denied,
/// …) fail the same way every time.
const RETRYABLE_CODES: &[&str] = &[
    "InternalFailure",
    "InternalException",
    "ThrottlingException",
];

/// Puts events on one EventBridge bus: `detail-type` is the event type, `source` the
/// envelope's source, `detail` the whole envelope (so a consumer decodes the same JSON as
/// from SNS or SQS), `time` the event time, and the X-Ray trace as trace header.
#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    event_bus_name: String,
    retry: RetryPolicy,
    check: ContractCheck,
}

impl EventBridgePublisher {
    /// A publisher to the bus `event_bus_name` (a name or ARN; `default` for the default
    /// bus) with the default retry policy.
    pub fn new(client: aws_sdk_eventbridge::Client, event_bus_name: impl Into<String>) -> Self {
        Self {
            client,
            event_bus_name: event_bus_name.into(),
            retry: RetryPolicy::default(),
            check: ContractCheck::default(),
        }
    }

    /// Sets the retry policy for failed entries.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Checks every event against its schema before sending (feature `validate`; off
    /// unless set): one that does not match fails with the code
    /// [`SCHEMA_VIOLATION`](crate::events::SCHEMA_VIOLATION) and is not sent.
    #[cfg(feature = "validate")]
    pub fn with_validation(
        mut self,
        validator: std::sync::Arc<crate::events::schema::SchemaValidator>,
    ) -> Self {
        self.check = ContractCheck::new(validator);
        self
    }

    /// Publishes one event, retried as [`publish`](Self::publish) retries: `Err` when it was
    /// still not accepted after the last attempt.
    pub async fn publish_one(&self, event: &OutgoingEvent) -> Result<(), PublishFailure> {
        match self.publish(std::slice::from_ref(event)).await.pop() {
            None => Ok(()),
            Some(failure) => Err(failure),
        }
    }

    /// Puts `events`; returns those that finally failed.
    #[must_use = "the events in the returned list were not published"]
    pub async fn publish(&self, events: &[OutgoingEvent]) -> Vec<PublishFailure> {
        publish_all(self, events, &self.retry, &self.check).await
    }

    fn entry(&self, event: &OutgoingEvent) -> PutEventsRequestEntry {
        let time = DateTime::from_secs_and_nanos(
            event.time.timestamp(),
            event.time.timestamp_subsec_nanos(),
        );
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.event_bus_name)
            .source(&event.source)
            .detail_type(&event.event_type)
            .detail(&event.body)
            .time(time)
            .set_trace_header(event.xray_trace_header().map(str::to_string))
            .build()
    }
}

impl BatchSender for EventBridgePublisher {
    const CARRIER: Carrier = Carrier::EventBridge;
    const SYSTEM: &'static str = "aws.eventbridge";

    fn destination(&self) -> &str {
        &self.event_bus_name
    }

    async fn send_batch(
        &self,
        batch: &[&OutgoingEvent],
    ) -> Result<Vec<EntryFailure>, RequestFailure> {
        let entries: Vec<_> = batch.iter().map(|event| self.entry(event)).collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| {
                RequestFailure::classify(
                    error.code(),
                    error.raw_response().map(|raw| raw.status().as_u16()),
                    DisplayErrorContext(&error).to_string(),
                )
            })?;
        // Result entries are positional: the n-th describes the n-th request entry.
        let results = output.entries();
        let mut failures = Vec::new();
        for position in 0..batch.len() {
            match results.get(position) {
                Some(result) => {
                    if let Some(code) = result.error_code() {
                        failures.push(EntryFailure {
                            position,
                            code: code.to_string(),
                            message: result.error_message().unwrap_or_default().to_string(),
                            retryable: RETRYABLE_CODES.contains(&code),
                        });
                    }
                }
                None => failures.push(EntryFailure {
                    position,
                    code: "MissingResult".into(),
                    message: "PutEvents returned no result for this entry".into(),
                    retryable: true,
                }),
            }
        }
        Ok(failures)
    }
}
