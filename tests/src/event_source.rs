//! What Lambda's SQS event source mapping does, done by the test: receive a batch, hand it to
//! the function as the `SqsEvent` JSON Lambda would send, and apply the function's
//! `SqsBatchResponse` by deleting every message it did not report failed. Failed messages
//! stay in the queue, come back after the visibility timeout, and move to the DLQ through
//! the queue's RedrivePolicy: all of that is SQS's own behaviour, not the test's.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use serde_json::{json, Map, Value};

use crate::{LocalCloud, Queue, REGION};

impl LocalCloud {
    /// One poll of the event source: up to `batch_size` (at most 10) messages, waiting up
    /// to `wait` for the first. Empty when nothing arrived.
    pub async fn poll_batch(&self, queue: &Queue, batch_size: i32, wait: Duration) -> Vec<Message> {
        self.sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(batch_size)
            .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(20))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default()
    }

    /// Applies a partial batch response: deletes the messages not listed as failed, as
    /// Lambda does, and returns how many were deleted.
    pub async fn apply_batch_response(
        &self,
        queue: &Queue,
        messages: &[Message],
        response: &SqsBatchResponse,
    ) -> usize {
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|failure| failure.item_identifier.as_str())
            .collect();
        let succeeded: Vec<&Message> = messages
            .iter()
            .filter(|message| !failed.contains(&message.message_id().unwrap_or_default()))
            .collect();
        self.delete(queue, &succeeded).await;
        succeeded.len()
    }
}

/// The `SqsEvent` Lambda would deliver for `messages` received from `queue`, built as JSON
/// in Lambda's wire format and parsed the way lambda_runtime parses it.
pub fn sqs_event(queue: &Queue, messages: &[Message]) -> SqsEvent {
    let records: Vec<Value> = messages.iter().map(|m| sqs_record(queue, m)).collect();
    serde_json::from_value(json!({ "Records": records })).expect("SqsEvent from received messages")
}

fn sqs_record(queue: &Queue, message: &Message) -> Value {
    let attributes: Map<String, Value> = message
        .attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.as_str().to_string(), Value::from(value.as_str())))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: Map<String, Value> = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.clone(), message_attribute(value)))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": REGION,
    })
}

fn message_attribute(value: &MessageAttributeValue) -> Value {
    json!({
        "dataType": value.data_type(),
        "stringValue": value.string_value(),
        "stringListValues": [],
        "binaryListValues": [],
    })
}
