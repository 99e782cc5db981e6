//! Publishing to an SNS topic with PublishBatch.

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use super::batch::{publish_all, BatchSender, EntryFailure, RequestFailure};
use super::contract::ContractCheck;
use super::{OutgoingEvent, PublishFailure, RetryPolicy};
use crate::events::Carrier;

/// Publishes events to one SNS topic, with their attributes as SNS message attributes (for
/// subscription filter policies). For a FIFO topic (ARN ending in `.fifo`) each event needs
/// a group id; the deduplication id defaults to the event id.
#[derive(Clone, Debug)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    retry: RetryPolicy,
    check: ContractCheck,
}

impl SnsPublisher {
    /// A publisher to `topic_arn` with the default retry policy.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
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

    /// Publishes `events`; returns those that finally failed.
    #[must_use = "the events in the returned list were not published"]
    pub async fn publish(&self, events: &[OutgoingEvent]) -> Vec<PublishFailure> {
        publish_all(self, events, &self.retry, &self.check).await
    }

    fn entry(
        &self,
        position: usize,
        event: &OutgoingEvent,
    ) -> Result<PublishBatchRequestEntry, String> {
        let mut entry = PublishBatchRequestEntry::builder()
            .id(position.to_string())
            .message(&event.body)
            .set_message_group_id(event.group_id.clone());
        if self.topic_arn.ends_with(".fifo") {
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
        entry.build().map_err(|error| error.to_string())
    }
}

impl BatchSender for SnsPublisher {
    const CARRIER: Carrier = Carrier::Sns;
    const SYSTEM: &'static str = "aws.sns";

    fn destination(&self) -> &str {
        &self.topic_arn
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
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
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
