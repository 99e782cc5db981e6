//! Sending to an SQS queue with SendMessageBatch.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};

use super::batch::{publish_all, BatchSender, EntryFailure, RequestFailure};
use super::contract::ContractCheck;
use super::{OutgoingEvent, PublishFailure, RetryPolicy};
use crate::events::Carrier;

/// Sends events to one SQS queue, with their attributes as message attributes and their
/// X-Ray trace as the `AWSTraceHeader` system attribute. For a FIFO queue (URL ending in
/// `.fifo`) each event needs a group id; the deduplication id defaults to the event id.
#[derive(Clone, Debug)]
pub struct SqsPublisher {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    retry: RetryPolicy,
    check: ContractCheck,
}

impl SqsPublisher {
    /// A publisher to `queue_url` with the default retry policy.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
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

    /// Sends `events`; returns those that finally failed.
    #[must_use = "the events in the returned list were not published"]
    pub async fn publish(&self, events: &[OutgoingEvent]) -> Vec<PublishFailure> {
        publish_all(self, events, &self.retry, &self.check).await
    }

    fn entry(
        &self,
        position: usize,
        event: &OutgoingEvent,
    ) -> Result<SendMessageBatchRequestEntry, String> {
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(position.to_string())
            .message_body(&event.body)
            .set_message_group_id(event.group_id.clone());
        if self.queue_url.ends_with(".fifo") {
            entry = entry.message_deduplication_id(event.fifo_deduplication_id());
        }
        for (name, value) in &event.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|error| error.to_string())?;
            entry = entry.message_attributes(name, attribute);
        }
        if let Some(trace) = event.xray_trace_header() {
            let header = MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(trace)
                .build()
                .map_err(|error| error.to_string())?;
            entry = entry.message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                header,
            );
        }
        entry.build().map_err(|error| error.to_string())
    }
}

impl BatchSender for SqsPublisher {
    const CARRIER: Carrier = Carrier::Sqs;
    const SYSTEM: &'static str = "aws_sqs";

    fn destination(&self) -> &str {
        &self.queue_url
    }

    async fn send_batch(
        &self,
        batch: &[&OutgoingEvent],
    ) -> Result<Vec<EntryFailure>, RequestFailure> {
        let mut failures = Vec::new();
        let mut entries = Vec::new();
        for (position, event) in batch.iter().enumerate() {
            match self.entry(position, event) {
                Ok(entry) => entries.push(entry),
                Err(message) => failures.push(EntryFailure::invalid(position, message)),
            }
        }
        if entries.is_empty() {
            return Ok(failures);
        }
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
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
        failures.extend(output.failed().iter().map(|failed| {
            EntryFailure::reported(
                failed.id(),
                failed.code(),
                failed.message(),
                failed.sender_fault(),
            )
        }));
        Ok(failures)
    }
}
