//! Moving dead letters back to the queue they failed in: all with SQS's message-move task,
//! chosen ones by receive, send, delete (sent before deleted: a crash duplicates, never
//! loses). A function's own dead-letter queue (what its asynchronous invocations failed)
//! has no source queue: its messages go back as asynchronous invocations.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};

use super::{hand_back, receive_all};
use crate::event_sources::payloads::PAYLOAD_AS_IS;
use crate::resources::QueueInfo;

/// How messages went back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedriveMethod {
    /// SQS's own message-move task.
    MessageMoveTask,
    /// Received, sent to the source queue, then deleted, one by one.
    ReceiveSendDelete,
}

impl std::fmt::Display for RedriveMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MessageMoveTask => "SQS message-move task",
            Self::ReceiveSendDelete => "receive, send, delete",
        })
    }
}

/// Moves every message of `dead_letter` back to the queue it failed in with a message-move
/// task, and waits for it. `None` when the endpoint has no message-move task (then move
/// them one by one with [`redrive_chosen`]).
pub async fn redrive_all(
    sqs: &aws_sdk_sqs::Client,
    dead_letter: &QueueInfo,
    timeout: Duration,
) -> Result<Option<u64>> {
    let started = sqs
        .start_message_move_task()
        .source_arn(&dead_letter.arn)
        .send()
        .await;
    if let Err(error) = started {
        let code = error.code().unwrap_or_default().to_string();
        if is_unsupported(&code) {
            return Ok(None);
        }
        return Err(error)
            .with_context(|| format!("starting a message-move task from {}", dead_letter.name));
    }
    let begun = Instant::now();
    loop {
        let tasks = sqs
            .list_message_move_tasks()
            .source_arn(&dead_letter.arn)
            .max_results(1)
            .send()
            .await
            .with_context(|| format!("reading the message-move task of {}", dead_letter.name))?;
        if let Some(task) = tasks.results().first() {
            match task.status() {
                Some("COMPLETED") => {
                    return Ok(Some(task.approximate_number_of_messages_moved() as u64))
                }
                Some(status @ ("FAILED" | "CANCELLED")) => bail!(
                    "the message-move task from {} ended {status}: {}",
                    dead_letter.name,
                    task.failure_reason().unwrap_or("no reason given")
                ),
                _ => {}
            }
        }
        if begun.elapsed() > timeout {
            bail!(
                "the message-move task from {} did not finish within {}s (it goes on)",
                dead_letter.name,
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Error codes of an endpoint that does not know message-move tasks.
fn is_unsupported(code: &str) -> bool {
    [
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "InvalidAction",
        "UnknownOperationException",
        "NotImplemented",
        "InternalFailure",
    ]
    .contains(&code)
}

/// What happened to each message of a redrive.
#[derive(Clone, Debug, Default)]
pub struct Redriven {
    /// The messages sent back: the dead letter's id, and the id the source queue gave the
    /// copy (SQS gives every message sent a new id).
    pub moved: Vec<(String, String)>,
    /// Ids of the messages left in the dead-letter queue, with why.
    pub left: Vec<(String, String)>,
}

/// Moves the messages of `dead_letter` that `choose` accepts back to their source queue
/// (the `DeadLetterQueueSourceArn` SQS stamps on them, else the only one of `sources`):
/// each is sent there, then deleted here. `choose` says `Err(why)` to leave one in place.
pub async fn redrive_chosen(
    sqs: &aws_sdk_sqs::Client,
    dead_letter: &QueueInfo,
    sources: &[QueueInfo],
    choose: impl Fn(&Message) -> std::result::Result<(), String>,
) -> Result<Redriven> {
    move_chosen(sqs, dead_letter, sources, false, choose).await
}

/// Invokes the function again, asynchronously, with each message of its dead-letter queue
/// `dead_letter` that `choose` accepts: the message (the payload Lambda invoked it with) is
/// sent to the function's `delivery` queue to be invoked as it is, then deleted here. This
/// is what `aws lambda invoke --invocation-type Event --payload` of the message does.
pub async fn reinvoke_chosen(
    sqs: &aws_sdk_sqs::Client,
    dead_letter: &QueueInfo,
    delivery: &QueueInfo,
    choose: impl Fn(&Message) -> std::result::Result<(), String>,
) -> Result<Redriven> {
    move_chosen(
        sqs,
        dead_letter,
        std::slice::from_ref(delivery),
        true,
        choose,
    )
    .await
}

async fn move_chosen(
    sqs: &aws_sdk_sqs::Client,
    dead_letter: &QueueInfo,
    sources: &[QueueInfo],
    as_invocation: bool,
    choose: impl Fn(&Message) -> std::result::Result<(), String>,
) -> Result<Redriven> {
    let received = receive_all(sqs, dead_letter).await?;
    let mut outcome = Redriven::default();
    let mut kept = Vec::new();
    for message in received {
        let id = message.message_id().unwrap_or_default().to_string();
        if let Err(why) = choose(&message) {
            outcome.left.push((id, why));
            kept.push(message);
            continue;
        }
        let Some(source) = source_of(&message, sources) else {
            outcome
                .left
                .push((id, "its source queue is unknown".to_string()));
            kept.push(message);
            continue;
        };
        let copy = send_back(sqs, &message, source, as_invocation).await?;
        // Deleted only once the source queue holds it: a crash before this line duplicates
        // the message, never loses it.
        if let Some(receipt) = message.receipt_handle() {
            sqs.delete_message()
                .queue_url(&dead_letter.url)
                .receipt_handle(receipt)
                .send()
                .await
                .with_context(|| format!("deleting {id} from {}", dead_letter.name))?;
        }
        outcome.moved.push((id, copy));
    }
    hand_back(sqs, dead_letter, &kept).await;
    Ok(outcome)
}

/// The queue `message` failed in.
fn source_of<'a>(message: &Message, sources: &'a [QueueInfo]) -> Option<&'a QueueInfo> {
    let stamped = message.attributes().and_then(|attributes| {
        attributes.get(&MessageSystemAttributeName::DeadLetterQueueSourceArn)
    });
    match stamped {
        Some(arn) => sources.iter().find(|source| source.arn == *arn),
        None if sources.len() == 1 => sources.first(),
        None => None,
    }
}

/// Sends a copy of `message` to `source`; returns the copy's message id.
async fn send_back(
    sqs: &aws_sdk_sqs::Client,
    message: &Message,
    source: &QueueInfo,
    as_invocation: bool,
) -> Result<String> {
    let id = message.message_id().unwrap_or_default();
    let mut request = sqs
        .send_message()
        .queue_url(&source.url)
        .message_body(message.body().unwrap_or_default())
        .set_message_attributes(message.message_attributes().cloned());
    if as_invocation {
        let marked = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("true")
            .build()
            .context("the payload mark")?;
        request = request.message_attributes(PAYLOAD_AS_IS, marked);
    }
    let system = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|attributes| attributes.get(&name))
            .cloned()
    };
    if let Some(group) = system(MessageSystemAttributeName::MessageGroupId) {
        // A FIFO queue: same group; a fresh deduplication id, so it is not taken for the
        // original send.
        request = request
            .message_group_id(group)
            .message_deduplication_id(format!("redrive-{}", uuid::Uuid::new_v4().simple()));
    }
    let sent = request
        .send()
        .await
        .with_context(|| format!("sending {id} back to {}", source.name))?;
    Ok(sent.message_id().unwrap_or_default().to_string())
}
