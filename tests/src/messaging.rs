//! Uniquely named queues, topics and buses in LocalStack, and a receive loop that waits for
//! what a test expects to arrive.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

use crate::{unique_name, LocalCloud};

/// An SQS queue created for one test.
#[derive(Clone, Debug)]
pub struct Queue {
    /// The queue's name.
    pub name: String,
    /// The queue URL, for the SQS API.
    pub url: String,
    /// The queue ARN, for subscriptions, targets and redrive policies.
    pub arn: String,
}

/// An SNS topic created for one test.
#[derive(Clone, Debug)]
pub struct Topic {
    /// The topic ARN.
    pub arn: String,
}

/// An EventBridge custom bus created for one test.
#[derive(Clone, Debug)]
pub struct Bus {
    /// The bus name, used as `EventBusName` in PutEvents and rules.
    pub name: String,
}

impl LocalCloud {
    /// Creates a standard queue; `attributes` are extra queue attributes (for example a
    /// `RedrivePolicy` or `VisibilityTimeout`).
    pub async fn create_queue(
        &self,
        prefix: &str,
        attributes: &[(QueueAttributeName, String)],
    ) -> Queue {
        self.create_queue_named(unique_name(prefix), attributes)
            .await
    }

    /// Creates a FIFO queue (content-based deduplication off: senders give ids).
    pub async fn create_fifo_queue(
        &self,
        prefix: &str,
        attributes: &[(QueueAttributeName, String)],
    ) -> Queue {
        let mut attributes = attributes.to_vec();
        attributes.push((QueueAttributeName::FifoQueue, "true".into()));
        self.create_queue_named(format!("{}.fifo", unique_name(prefix)), &attributes)
            .await
    }

    /// Creates a queue and its dead-letter queue, redriving after `max_receive_count`
    /// receives. Returns `(queue, dlq)`.
    pub async fn create_queue_with_dlq(
        &self,
        prefix: &str,
        max_receive_count: u32,
        visibility_timeout_secs: u32,
    ) -> (Queue, Queue) {
        let dlq = self.create_queue(&format!("{prefix}-dlq"), &[]).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq.arn,
            "maxReceiveCount": max_receive_count.to_string(),
        });
        let queue = self
            .create_queue(
                prefix,
                &[
                    (QueueAttributeName::RedrivePolicy, redrive.to_string()),
                    (
                        QueueAttributeName::VisibilityTimeout,
                        visibility_timeout_secs.to_string(),
                    ),
                ],
            )
            .await;
        (queue, dlq)
    }

    pub async fn create_queue_named(
        &self,
        name: String,
        attributes: &[(QueueAttributeName, String)],
    ) -> Queue {
        let mut request = self.sqs.create_queue().queue_name(&name);
        for (key, value) in attributes {
            request = request.attributes(key.clone(), value);
        }
        let created = request.send().await.expect("CreateQueue");
        let url = created
            .queue_url()
            .expect("CreateQueue returns a URL")
            .to_string();
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes()
            .and_then(|attrs| attrs.get(&QueueAttributeName::QueueArn).cloned())
            .expect("queue has an ARN");
        Queue { name, url, arn }
    }

    /// Creates an SNS topic.
    pub async fn create_topic(&self, prefix: &str) -> Topic {
        let created = self
            .sns
            .create_topic()
            .name(unique_name(prefix))
            .send()
            .await
            .expect("CreateTopic");
        Topic {
            arn: created
                .topic_arn()
                .expect("CreateTopic returns an ARN")
                .to_string(),
        }
    }

    /// Subscribes `queue` to `topic`, with raw message delivery or the SNS envelope, and an
    /// optional filter policy (on message attributes).
    pub async fn subscribe_queue(
        &self,
        topic: &Topic,
        queue: &Queue,
        raw: bool,
        filter_policy: Option<&str>,
    ) {
        let mut request = self
            .sns
            .subscribe()
            .topic_arn(&topic.arn)
            .protocol("sqs")
            .endpoint(&queue.arn)
            .attributes("RawMessageDelivery", raw.to_string());
        if let Some(policy) = filter_policy {
            request = request.attributes("FilterPolicy", policy);
        }
        request.send().await.expect("Subscribe");
    }

    /// Creates a custom EventBridge bus.
    pub async fn create_bus(&self, prefix: &str) -> Bus {
        let name = unique_name(prefix);
        self.eventbridge
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .expect("CreateEventBus");
        Bus { name }
    }

    /// Creates a rule on `bus` matching `event_pattern` (JSON) whose target is `queue`.
    pub async fn route_to_queue(&self, bus: &Bus, event_pattern: &str, queue: &Queue) {
        let rule = unique_name("rule");
        self.eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus.name)
            .event_pattern(event_pattern)
            .send()
            .await
            .expect("PutRule");
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(&queue.arn)
            .build()
            .expect("target has id and arn");
        let response = self
            .eventbridge
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus.name)
            .targets(target)
            .send()
            .await
            .expect("PutTargets");
        assert_eq!(
            response.failed_entry_count(),
            0,
            "PutTargets failed: {response:?}"
        );
    }

    /// Receives until `expected` messages arrived or `timeout` passed, with all system and
    /// message attributes. Messages stay in flight (not deleted), as they would in a Lambda
    /// event source before the batch response.
    pub async fn receive(&self, queue: &Queue, expected: usize, timeout: Duration) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        while received.len() < expected && Instant::now() < deadline {
            let response = self
                .sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("ReceiveMessage");
            received.extend(response.messages.unwrap_or_default());
        }
        received
    }

    /// Receives and deletes until `expected` messages arrived or `timeout` passed, in the
    /// order received. A FIFO queue holds back the rest of a message group while any of it
    /// is in flight, so reading a whole FIFO queue needs each batch deleted before the next.
    pub async fn drain(&self, queue: &Queue, expected: usize, timeout: Duration) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        while received.len() < expected && Instant::now() < deadline {
            let batch = self.receive(queue, 1, Duration::from_secs(1)).await;
            self.delete(queue, &batch.iter().collect::<Vec<_>>()).await;
            received.extend(batch);
        }
        received
    }

    /// Deletes messages by receipt handle (what Lambda does for a batch's successes).
    pub async fn delete(&self, queue: &Queue, messages: &[&Message]) {
        for message in messages {
            self.sqs
                .delete_message()
                .queue_url(&queue.url)
                .receipt_handle(
                    message
                        .receipt_handle()
                        .expect("received message has a handle"),
                )
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}
