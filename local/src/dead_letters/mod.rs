//! Dead-letter queues: how many messages each holds, why each message failed (its
//! attributes, the function's log file locally, CloudWatch Logs on AWS), whether its effect
//! happened anyway (its idempotency record is `COMPLETED`), and sending messages back where
//! they failed. Everything here speaks plain SQS, DynamoDB, Lambda and CloudWatch Logs, so
//! it works on the local cloud and on AWS alike.
//!
//! Sending back: all of a redrive target's messages go with SQS's own message-move task
//! (`StartMessageMoveTask`, which returns each message to the queue it came from).
//! Otherwise each chosen message goes the way its kind says ([`Routes::way_back`]): its
//! source queue, its rule's target, or its function invoked again. It is received, sent on
//! and only then deleted: a crash in between leaves a duplicate (which an idempotent
//! consumer absorbs), never a lost message.

mod idempotency;
mod on_aws;
mod reasons;
mod redrive;
mod routes;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

use crate::resources::{hand_back, QueueInfo};

pub use idempotency::{key_state, key_value, IdempotencyLookup, KeyState};
pub use on_aws::{
    functions_by_dead_letter_queue, functions_reading, log_group_of, reason_in_log_groups,
    subscribers_by_dead_letter_queue,
};
pub use reasons::{reason_in_attributes, reason_in_logs, reason_of_line, LoggedReason};
pub use redrive::{redrive_all, redrive_chosen, Destination, Moved, RedriveMethod, Redriven};
pub use routes::{function_name, is_stream_failure, unqualified, Invoker, Routes, WayBack};

/// How long a message read by [`read_all`] stays hidden from other readers before it is
/// handed back.
const READ_VISIBILITY: i32 = 60;

/// Messages in a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Visible (or delayed): waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted nor visible again.
    pub in_flight: u64,
}

impl Depth {
    /// Every message, visible or not.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight
    }
}

/// How many messages `queue` holds.
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue: &QueueInfo) -> Result<Depth> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .with_context(|| format!("reading the depth of {}", queue.name))?;
    let count = |name: QueueAttributeName| {
        output
            .attributes()
            .and_then(|attributes| attributes.get(&name))
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Depth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    })
}

/// Every visible message of `queue` with its attributes, handed back (visible again) before
/// this returns, so reading changes nothing but the receive counts.
pub async fn read_all(sqs: &aws_sdk_sqs::Client, queue: &QueueInfo) -> Result<Vec<Message>> {
    let messages = receive_all(sqs, queue).await?;
    hand_back(sqs, queue, &messages).await;
    Ok(messages)
}

/// Receives until nothing more is visible; what was received stays hidden for
/// [`READ_VISIBILITY`] seconds.
pub(crate) async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    queue: &QueueInfo,
) -> Result<Vec<Message>> {
    let mut seen: Vec<Message> = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .visibility_timeout(READ_VISIBILITY)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .with_context(|| format!("reading {}", queue.name))?;
        let fresh: Vec<Message> = output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter(|m| !seen.iter().any(|s| s.message_id() == m.message_id()))
            .collect();
        if fresh.is_empty() {
            return Ok(seen);
        }
        seen.extend(fresh);
    }
}

/// Messages per dead-letter queue, counted.
pub async fn depths(
    sqs: &aws_sdk_sqs::Client,
    queues: &BTreeMap<String, QueueInfo>,
) -> Result<BTreeMap<String, Depth>> {
    let mut found = BTreeMap::new();
    for (logical, queue) in queues {
        found.insert(logical.clone(), depth(sqs, queue).await?);
    }
    Ok(found)
}
