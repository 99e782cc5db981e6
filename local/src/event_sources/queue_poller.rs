//! Lambda's SQS event source mapping: long-poll the queue, gather up to `BatchSize`
//! records within `MaximumBatchingWindowInSeconds`, invoke the function synchronously, then
//! delete what succeeded. With `ReportBatchItemFailures`, the failed ids the function names
//! stay; without it, or when the invocation fails as a whole, every record stays. Records
//! that stay come back after the queue's visibility timeout and move to its DLQ through the
//! RedrivePolicy: that part is SQS's own behaviour, not this module's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::filter::sqs_view;
use super::payloads::{sqs_event, sqs_record};
use crate::clients::Clients;
use crate::functions::QueueSource;
use crate::host::FunctionHost;
use crate::invocation::Outcome;
use crate::resources::hand_back;

/// Polls `source` for `host` until `stopped`.
pub async fn poll_queue(
    clients: Clients,
    source: QueueSource,
    host: Arc<FunctionHost>,
    stopped: CancellationToken,
) {
    while !stopped.is_cancelled() {
        // Not cut short by a stop: a receive abandoned mid-poll still takes what arrives
        // before its wait ends (the service does not see the caller go) and hides it for the
        // queue's visibility timeout, where the next run of a kept stack would wait for it.
        // So a stop waits for the receive under way (at most `LONG_POLL`) and hands back
        // whatever was gathered and not yet invoked.
        let batch = gather_batch(&clients, &source, &stopped).await;
        if stopped.is_cancelled() {
            hand_back(&clients.sqs, &source.queue, &batch).await;
            return;
        }
        let batch = filtered(&clients, &source, &host, batch).await;
        if batch.is_empty() {
            continue;
        }
        let payload = match sqs_event(&source.queue, &batch) {
            Ok(payload) => payload,
            Err(error) => {
                host.log().platform(
                    "platform.eventSourceError",
                    json!({"queue": source.queue.name, "error": format!("{error:#}")}),
                );
                continue;
            }
        };
        let (request_id, outcome) = host.invoke_identified(payload).await;
        let done = settled_messages(&source, &batch, &outcome);
        if let Err(reason) = &done {
            host.log().platform(
                "platform.eventSourceError",
                json!({"queue": source.queue.name, "error": reason}),
            );
        }
        // Said of the function: `dlq show` prints "<function> <why> (invocation ..)".
        let why = match (&done, &outcome) {
            (Err(reason), _) => format!("returned a batch response that was refused: {reason}"),
            (Ok(_), Outcome::Response(_)) => "named it in batchItemFailures".to_string(),
            (Ok(_), failed) => format!("failed the invocation: {failed}"),
        };
        let done = done.unwrap_or_default();
        note_kept(&host, &source, (&request_id, &why), &batch, &done);
        delete(&clients, &source, &done).await;
    }
}

/// Logs which records of an invocation's batch stay in the queue (to come back, and reach
/// the DLQ after maxReceiveCount receives) and why, each with its receive count:
/// `platform.recordsKept`, which `dlq show` reads to say why a dead letter failed.
fn note_kept(
    host: &FunctionHost,
    source: &QueueSource,
    (request_id, why): (&str, &str),
    batch: &[Message],
    done: &[Message],
) {
    let kept: Vec<Value> = batch
        .iter()
        .filter(|message| !done.iter().any(|d| d.message_id() == message.message_id()))
        .map(|message| {
            let receives = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .cloned()
                .unwrap_or_default();
            json!({"messageId": message.message_id(), "receiveCount": receives})
        })
        .collect();
    if kept.is_empty() {
        return;
    }
    host.log().platform(
        "platform.recordsKept",
        json!({
            "requestId": request_id,
            "queue": source.queue.name,
            "why": why,
            "records": kept,
        }),
    );
}

/// The messages of `batch` the mapping's `FilterCriteria` admits; the others are deleted,
/// as Lambda deletes them, and counted in the log.
async fn filtered(
    clients: &Clients,
    source: &QueueSource,
    host: &FunctionHost,
    batch: Vec<Message>,
) -> Vec<Message> {
    if !source.filter.is_set() || batch.is_empty() {
        return batch;
    }
    let (admitted, dropped): (Vec<Message>, Vec<Message>) =
        batch.into_iter().partition(|message| {
            source
                .filter
                .admits(&sqs_view(&sqs_record(&source.queue, message)))
        });
    if !dropped.is_empty() {
        host.log().platform(
            "platform.filteredOut",
            json!({"queue": source.queue.name, "messages": dropped.iter().filter_map(Message::message_id).collect::<Vec<_>>()}),
        );
        delete(clients, source, &dropped).await;
    }
    admitted
}

/// The longest wait of one receive: how long a stop may wait for the poll under way.
const LONG_POLL: Duration = Duration::from_secs(2);

/// Receives until the batch is full, the batching window (counted from the first record)
/// has passed or `stopped`; empty after a poll that found nothing.
async fn gather_batch(
    clients: &Clients,
    source: &QueueSource,
    stopped: &CancellationToken,
) -> Vec<Message> {
    let mut batch: Vec<Message> = Vec::new();
    let mut first_at: Option<Instant> = None;
    loop {
        let wanted = source
            .batch_size
            .saturating_sub(len_u32(&batch))
            .clamp(1, 10);
        let wait = match first_at {
            None => LONG_POLL,
            Some(first) => source
                .batching_window
                .saturating_sub(first.elapsed())
                .min(LONG_POLL),
        };
        let received = receive(clients, source, wanted, wait).await;
        if !received.is_empty() && first_at.is_none() {
            first_at = Some(Instant::now());
        }
        batch.extend(received);
        let window_over = first_at.is_some_and(|first| first.elapsed() >= source.batching_window);
        if batch.is_empty()
            || len_u32(&batch) >= source.batch_size
            || window_over
            || stopped.is_cancelled()
        {
            return batch;
        }
    }
}

async fn receive(
    clients: &Clients,
    source: &QueueSource,
    wanted: u32,
    wait: Duration,
) -> Vec<Message> {
    // Long polling takes whole seconds; a window's last fraction waits a second more.
    let seconds = i32::try_from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).unwrap_or(2);
    let received = clients
        .sqs
        .receive_message()
        .queue_url(&source.queue.url)
        .max_number_of_messages(i32::try_from(wanted).unwrap_or(10))
        .wait_time_seconds(seconds)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await;
    match received {
        Ok(output) => output.messages.unwrap_or_default(),
        Err(_) => {
            // The local cloud is restarting or gone; try again shortly.
            tokio::time::sleep(Duration::from_secs(1)).await;
            Vec::new()
        }
    }
}

/// The messages to delete after the invocation, as Lambda decides it; an error (with
/// every message kept) when the batch response is invalid.
fn settled_messages(
    source: &QueueSource,
    batch: &[Message],
    outcome: &Outcome,
) -> Result<Vec<Message>, String> {
    let Outcome::Response(response) = outcome else {
        return Ok(Vec::new());
    };
    if !source.report_batch_item_failures {
        return Ok(batch.to_vec());
    }
    let failed = failed_ids(response, batch)?;
    Ok(batch
        .iter()
        .filter(|message| {
            !failed
                .iter()
                .any(|id| Some(id.as_str()) == message.message_id())
        })
        .cloned()
        .collect())
}

/// The ids of a partial batch response. Lambda treats the whole batch as failed when an
/// identifier is empty or names no record of the batch.
fn failed_ids(response: &Value, batch: &[Message]) -> Result<Vec<String>, String> {
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(failures)) => failures,
        Some(other) => return Err(format!("invalid batchItemFailures {other}: batch kept")),
    };
    failures
        .iter()
        .map(|failure| {
            let id = failure["itemIdentifier"].as_str().unwrap_or_default();
            if id.is_empty() || !batch.iter().any(|m| m.message_id() == Some(id)) {
                Err(format!(
                    "batch response names unknown item {failure}: batch kept"
                ))
            } else {
                Ok(id.to_string())
            }
        })
        .collect()
}

async fn delete(clients: &Clients, source: &QueueSource, messages: &[Message]) {
    for chunk in messages.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(message.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        // A failed delete only means the record comes back once more, as in Lambda.
        let _ = clients
            .sqs
            .delete_message_batch()
            .queue_url(&source.queue.url)
            .set_entries(Some(entries))
            .send()
            .await;
    }
}

fn len_u32(batch: &[Message]) -> u32 {
    u32::try_from(batch.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::resources::QueueInfo;

    fn source(report: bool) -> QueueSource {
        QueueSource {
            event: "E".into(),
            queue: QueueInfo {
                name: "q".into(),
                url: "u".into(),
                arn: "a".into(),
            },
            batch_size: 10,
            batching_window: Duration::ZERO,
            report_batch_item_failures: report,
            max_concurrency: 2,
            filter: Default::default(),
        }
    }

    fn batch() -> Vec<Message> {
        ["m-1", "m-2", "m-3"]
            .iter()
            .map(|id| Message::builder().message_id(*id).build())
            .collect()
    }

    fn ids(messages: &[Message]) -> Vec<&str> {
        messages.iter().filter_map(Message::message_id).collect()
    }

    #[test]
    fn a_partial_batch_response_deletes_all_but_the_failures() {
        let outcome = Outcome::Response(json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]}));
        let done = settled_messages(&source(true), &batch(), &outcome).unwrap();
        assert_eq!(ids(&done), ["m-1", "m-3"]);
        // Without ReportBatchItemFailures the response is not read: all succeeded.
        let done = settled_messages(&source(false), &batch(), &outcome).unwrap();
        assert_eq!(ids(&done), ["m-1", "m-2", "m-3"]);
    }

    #[test]
    fn a_failed_invocation_or_an_invalid_response_keeps_the_whole_batch() {
        let crashed = Outcome::Crashed("killed".into());
        assert!(settled_messages(&source(true), &batch(), &crashed)
            .unwrap()
            .is_empty());
        let unknown = Outcome::Response(json!({"batchItemFailures": [{"itemIdentifier": "nope"}]}));
        assert!(settled_messages(&source(true), &batch(), &unknown).is_err());
        let null = Outcome::Response(Value::Null);
        assert_eq!(
            settled_messages(&source(true), &batch(), &null)
                .unwrap()
                .len(),
            3
        );
    }
}
