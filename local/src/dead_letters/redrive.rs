//! Moving dead letters back where they failed: all of a redrive target's messages with SQS's
//! message-move task; otherwise one by one, each the way [`Routes::way_back`] finds for it
//! (its source queue, its rule's or subscription's target, its function invoked again), by
//! receive, send,
//! delete (sent before deleted: a crash duplicates, never loses).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};

use super::receive_all;
use super::routes::{function_name, Invoker, Routes, WayBack};
use crate::event_sources::payloads::PAYLOAD_AS_IS;
use crate::resources::hand_back;
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

/// Where a redriven message went.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    /// Back in the queue it failed in (logical id or name).
    SourceQueue(String),
    /// Into the queue a rule's target is, again (its name).
    TargetQueue(String),
    /// Into the queue a subscription delivers to, again (its name).
    SubscriberQueue(String),
    /// The function (logical id, or name on AWS) invoked again, asynchronously.
    Invoked(String),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SourceQueue(queue) => write!(f, "back in {queue}"),
            Self::TargetQueue(queue) => write!(f, "delivered to their rule's target {queue} again"),
            Self::SubscriberQueue(queue) => {
                write!(f, "delivered to their subscription's queue {queue} again")
            }
            Self::Invoked(function) => write!(f, "invoked {function} again, asynchronously"),
        }
    }
}

/// A message a redrive sent on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The dead letter's message id.
    pub id: String,
    /// Where it went.
    pub to: Destination,
    /// The id its copy got (SQS gives every message sent a new id; Lambda, a request id).
    pub copy: String,
}

/// What happened to each message of a redrive.
#[derive(Clone, Debug, Default)]
pub struct Redriven {
    /// The messages sent on.
    pub moved: Vec<Moved>,
    /// Ids of the messages left in the dead-letter queue, with why.
    pub left: Vec<(String, String)>,
}

/// Sends each message of `dead_letter` that `choose` accepts back where it came from (see
/// [`Routes::way_back`]): to its source queue, to its rule's target, or to its function as
/// an asynchronous invocation. Each is sent on first and deleted here after: a crash in
/// between duplicates a message, never loses one. `choose` says `Err(why)` to leave one in
/// place; so does a message with no way back, with the reason.
pub async fn redrive_chosen(
    sqs: &aws_sdk_sqs::Client,
    dead_letter: &QueueInfo,
    routes: &Routes,
    choose: impl Fn(&Message) -> std::result::Result<(), String>,
) -> Result<Redriven> {
    let received = receive_all(sqs, dead_letter).await?;
    let mut outcome = Redriven::default();
    let mut kept = Vec::new();
    for message in received {
        let id = message.message_id().unwrap_or_default().to_string();
        let way = choose(&message).and_then(|()| routes.way_back(&message));
        let way = match way {
            Ok(way) => way,
            Err(why) => {
                outcome.left.push((id, why));
                kept.push(message);
                continue;
            }
        };
        let (to, copy) = match send_on(sqs, routes, &message, way).await {
            Ok(sent) => sent,
            Err(error) => {
                outcome.left.push((id, format!("{error:#}")));
                kept.push(message);
                continue;
            }
        };
        // Deleted only once it is on its way: a crash before this line duplicates the
        // message, never loses it.
        if let Some(receipt) = message.receipt_handle() {
            sqs.delete_message()
                .queue_url(&dead_letter.url)
                .receipt_handle(receipt)
                .send()
                .await
                .with_context(|| format!("deleting {id} from {}", dead_letter.name))?;
        }
        outcome.moved.push(Moved { id, to, copy });
    }
    hand_back(sqs, dead_letter, &kept).await;
    Ok(outcome)
}

/// Sends `message` the way it goes back; returns where it went and its copy's id.
async fn send_on(
    sqs: &aws_sdk_sqs::Client,
    routes: &Routes,
    message: &Message,
    way: WayBack,
) -> Result<(Destination, String)> {
    let subscription = matches!(way, WayBack::SubscriberQueue(_));
    match way {
        WayBack::SourceQueue { name, queue } => {
            let copy = send_back(sqs, message, None, &queue, false).await?;
            Ok((Destination::SourceQueue(name), copy))
        }
        WayBack::TargetQueue(arn) | WayBack::SubscriberQueue(arn) => {
            if let Some((function, delivery)) = routes.local_delivery(&arn) {
                // Locally a rule or a subscription reaches its function through the
                // function's delivery queue: the event goes back there as it was delivered.
                let copy = send_back(sqs, message, None, delivery, false).await?;
                return Ok((Destination::Invoked(function.clone()), copy));
            }
            let (name, queue) = match routes.queue(&arn) {
                Some(found) => found.clone(),
                None => {
                    let queue = queue_by_arn(sqs, &arn).await?;
                    (queue.name.clone(), queue)
                }
            };
            let copy = send_back(sqs, message, None, &queue, false).await?;
            let to = if subscription {
                Destination::SubscriberQueue(name)
            } else {
                Destination::TargetQueue(name)
            };
            Ok((to, copy))
        }
        WayBack::Invoke { function, payload } => {
            if let Some((logical, delivery)) = routes.local_function(&function) {
                // The local Lambda's asynchronous invocations go through the function's
                // delivery queue; the mark says to invoke with the body as it is.
                let copy = send_back(sqs, message, Some(&payload), delivery, true).await?;
                return Ok((Destination::Invoked(logical.clone()), copy));
            }
            match &routes.invoker {
                Invoker::Lambda(lambda) => {
                    let request = invoke_event(lambda, &function, &payload).await?;
                    Ok((
                        Destination::Invoked(function_name(&function).to_string()),
                        request,
                    ))
                }
                Invoker::Local(_) => {
                    bail!("{function} is not a function of the running application")
                }
                Invoker::None => bail!("no Lambda endpoint to invoke {function} with"),
            }
        }
    }
}

/// Lambda's asynchronous invocation of `function` with `payload`; returns its request id.
async fn invoke_event(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: &str,
) -> Result<String> {
    let invoked = lambda
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.as_bytes()))
        .send()
        .await
        .with_context(|| format!("invoking {function} asynchronously"))?;
    if invoked.status_code() != 202 {
        bail!(
            "invoking {function} asynchronously answered {} instead of 202",
            invoked.status_code()
        );
    }
    use aws_sdk_lambda::operation::RequestId;
    Ok(invoked.request_id().unwrap_or("no request id").to_string())
}

/// The queue with ARN `arn` (`arn:aws:sqs:region:account:name`), its URL asked of SQS.
async fn queue_by_arn(sqs: &aws_sdk_sqs::Client, arn: &str) -> Result<QueueInfo> {
    let mut parts = arn.split(':').skip(4);
    let (Some(account), Some(name)) = (parts.next(), parts.next()) else {
        bail!("{arn} is not a queue ARN");
    };
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .with_context(|| format!("finding the queue {arn}"))?
        .queue_url()
        .with_context(|| format!("SQS gave no URL for {arn}"))?
        .to_string();
    Ok(QueueInfo {
        name: name.to_string(),
        url,
        arn: arn.to_string(),
    })
}

/// Sends a copy of `message` (with `body` instead of its own, if given) to `source`;
/// returns the copy's message id.
async fn send_back(
    sqs: &aws_sdk_sqs::Client,
    message: &Message,
    body: Option<&str>,
    source: &QueueInfo,
    as_invocation: bool,
) -> Result<String> {
    let id = message.message_id().unwrap_or_default();
    let mut request = sqs
        .send_message()
        .queue_url(&source.url)
        .message_body(body.unwrap_or_else(|| message.body().unwrap_or_default()))
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
