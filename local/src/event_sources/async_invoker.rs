//! Lambda's asynchronous invocation, for SNS subscriptions and EventBridge rules that target
//! a function: the event waits in the function's delivery queue, is invoked, retried
//! `MaximumRetryAttempts` times after a failure, and then sent to the function's
//! `DeadLetterQueue` (the event, with `RequestID`, `ErrorCode` and `ErrorMessage` attributes)
//! and `OnFailure` destination (an invocation record), as Lambda does. Only then is it
//! deleted, so an event accepted here is never lost, even if this process dies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::payloads::{payload_as_is, AsyncEvent, PAYLOAD_AS_IS};
use crate::clients::Clients;
use crate::functions::FunctionDecl;
use crate::host::FunctionHost;
use crate::invocation::Outcome;
use crate::resources::{hand_back, QueueInfo};

/// Events handled at once per function (each waits for the function's environments).
const PARALLEL_EVENTS: usize = 10;

/// Drains `function`'s delivery queue until `stopped`; `retry_delays[i]` is the wait before
/// retry `i + 1` (Lambda waits about a minute, then two).
pub async fn invoke_async(
    clients: Clients,
    function: FunctionDecl,
    host: Arc<FunctionHost>,
    retry_delays: Vec<Duration>,
    stopped: CancellationToken,
) {
    let Some(queue) = function.async_queue.clone() else {
        return;
    };
    let function = Arc::new(function);
    let retry_delays = Arc::new(retry_delays);
    let permits = Arc::new(Semaphore::new(PARALLEL_EVENTS));
    while !stopped.is_cancelled() {
        // Not cut short by a stop: a receive abandoned mid-poll still takes what arrives
        // before its wait ends (the service does not see the caller go) and hides it for the
        // delivery queue's visibility timeout, where the next run of a kept stack would wait
        // for it. So a stop waits for the receive under way (at most its 2 s) and hands back
        // whatever no delivery took yet.
        let mut received = receive(&clients, &queue).await.into_iter();
        while let Some(message) = received.next() {
            let permit = tokio::select! {
                biased;
                () = stopped.cancelled() => None,
                permit = permits.clone().acquire_owned() => permit.ok(),
            };
            let Some(permit) = permit else {
                let untaken: Vec<Message> = std::iter::once(message).chain(received).collect();
                hand_back(&clients.sqs, &queue, &untaken).await;
                return;
            };
            let delivery = Delivery {
                clients: clients.clone(),
                function: function.clone(),
                host: host.clone(),
                queue: queue.clone(),
                retry_delays: retry_delays.clone(),
                stopped: stopped.clone(),
            };
            tokio::spawn(async move {
                delivery.deliver(message).await;
                drop(permit);
            });
        }
    }
}

async fn receive(clients: &Clients, queue: &QueueInfo) -> Vec<Message> {
    let received = clients
        .sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .message_attribute_names(PAYLOAD_AS_IS)
        .send()
        .await;
    match received {
        Ok(output) => output.messages.unwrap_or_default(),
        Err(_) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Vec::new()
        }
    }
}

/// One event's way through the function.
struct Delivery {
    clients: Clients,
    function: Arc<FunctionDecl>,
    host: Arc<FunctionHost>,
    queue: QueueInfo,
    retry_delays: Arc<Vec<Duration>>,
    stopped: CancellationToken,
}

impl Delivery {
    async fn deliver(&self, message: Message) {
        let body = message.body().unwrap_or_default();
        let config = &self.function.async_invoke;
        let as_is = message
            .message_attributes()
            .is_some_and(|attributes| attributes.contains_key(PAYLOAD_AS_IS));
        let parsed = if as_is {
            Ok(AsyncEvent::AsIs(payload_as_is(body)))
        } else {
            AsyncEvent::parse(body)
        };
        let result = match parsed.and_then(|event| {
            let subscription = event
                .topic()
                .and_then(|topic| self.function.sns_subscriptions.get(topic))
                .cloned()
                .unwrap_or_default();
            event.payload(&subscription)
        }) {
            Err(error) => Failed {
                payload: Value::String(body.to_string()),
                outcome: Outcome::FunctionError {
                    error_type: "Local.InvalidDelivery".into(),
                    message: format!("{error:#}"),
                },
                attempts: 0,
            },
            Ok(payload) if age(&message) > config.max_event_age => Failed {
                payload,
                outcome: Outcome::FunctionError {
                    error_type: "EventAgeExceeded".into(),
                    message: "the event is older than MaximumEventAgeInSeconds".into(),
                },
                attempts: 0,
            },
            Ok(payload) => match self.invoke_with_retries(payload).await {
                Ok(()) => {
                    self.delete(&message).await;
                    return;
                }
                // Cut off by the stop, not failed: the event stays in the delivery queue
                // (visible again after its timeout, as after a crash) instead of being
                // dead-lettered for a failure of the run.
                Err(_) if self.stopped.is_cancelled() => return,
                Err(failed) => failed,
            },
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        self.host.log().platform(
            "platform.asyncInvokeFailed",
            json!({
                "requestId": request_id,
                "attempts": result.attempts,
                "errorType": result.outcome.error_type(),
                "errorMessage": result.outcome.to_string(),
                "deadLetterQueue": config.dead_letter_queue.as_ref().map(|q| &q.name),
                "onFailure": config.on_failure.as_ref().map(|q| &q.name),
            }),
        );
        let sent = self.dead_letter(&result, &request_id).await;
        // Kept (and retried later) when no failure destination took it; Lambda would drop it.
        if sent.unwrap_or(true) {
            self.delete(&message).await;
        }
    }

    async fn invoke_with_retries(&self, payload: Value) -> Result<(), Failed> {
        let attempts = self.function.async_invoke.max_retries + 1;
        let mut last = Outcome::Crashed("not invoked".into());
        for attempt in 1..=attempts {
            last = self.host.invoke(payload.clone()).await;
            if last.succeeded() {
                return Ok(());
            }
            if self.stopped.is_cancelled() {
                break;
            }
            if attempt < attempts {
                let index = usize::try_from(attempt - 1).unwrap_or(usize::MAX);
                let delay = self
                    .retry_delays
                    .get(index)
                    .or(self.retry_delays.last())
                    .copied()
                    .unwrap_or_default();
                tokio::time::sleep(retry_delay(delay, self.function.spec.timeout)).await;
            }
        }
        Err(Failed {
            payload,
            outcome: last,
            attempts,
        })
    }

    /// Sends the failed event to the function's DLQ and OnFailure destination; `None` when
    /// the function has neither (the event is dropped, as Lambda drops it), `Some(false)`
    /// when sending failed (the message stays in the delivery queue).
    async fn dead_letter(&self, failed: &Failed, request_id: &str) -> Option<bool> {
        let config = &self.function.async_invoke;
        if config.dead_letter_queue.is_none() && config.on_failure.is_none() {
            return None;
        }
        let mut sent = true;
        if let Some(dlq) = &config.dead_letter_queue {
            let mut message: String = failed.outcome.to_string();
            message.truncate(1024);
            let body = match &failed.payload {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let attributes = BTreeMap::from([
                ("RequestID", ("String", request_id.to_string())),
                ("ErrorCode", ("Number", "200".to_string())),
                ("ErrorMessage", ("String", message)),
            ]);
            sent &= self.send(dlq, body, &attributes).await;
        }
        if let Some(destination) = &config.on_failure {
            let record = invocation_record(&self.host, failed, request_id);
            sent &= self
                .send(destination, record.to_string(), &BTreeMap::new())
                .await;
        }
        Some(sent)
    }

    async fn send(
        &self,
        queue: &QueueInfo,
        body: String,
        attributes: &BTreeMap<&str, (&str, String)>,
    ) -> bool {
        let mut request = self
            .clients
            .sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(body);
        for (name, (data_type, value)) in attributes {
            if let Ok(attribute) = MessageAttributeValue::builder()
                .data_type(*data_type)
                .string_value(value)
                .build()
            {
                request = request.message_attributes(*name, attribute);
            }
        }
        request.send().await.is_ok()
    }

    async fn delete(&self, message: &Message) {
        if let Some(handle) = message.receipt_handle() {
            let _ = self
                .clients
                .sqs
                .delete_message()
                .queue_url(&self.queue.url)
                .receipt_handle(handle)
                .send()
                .await;
        }
    }
}

/// An event that failed every attempt.
struct Failed {
    payload: Value,
    outcome: Outcome,
    attempts: u32,
}

/// Lambda's invocation record for an OnFailure destination.
fn invocation_record(host: &FunctionHost, failed: &Failed, request_id: &str) -> Value {
    json!({
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("{}:$LATEST", host.spec().arn),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": failed.attempts,
        },
        "requestPayload": failed.payload,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {
            "errorType": failed.outcome.error_type(),
            "errorMessage": failed.outcome.to_string(),
        },
    })
}

/// How long ago the event was accepted (its delivery message's SentTimestamp).
/// The wait before a retry: the configured one, but never shorter than the function's
/// timeout. A crashed or timed-out invocation's idempotency claim stays in progress until
/// its deadline (at most one timeout after it started), so a retry sooner than that would
/// only find the key in progress, and after the last one the event would be dead-lettered
/// without ever having run to completion. Lambda's own waits (about one and two minutes)
/// are longer than the pipeline's timeouts; the local run keeps that order while scaling
/// the waits down.
fn retry_delay(configured: Duration, timeout: Duration) -> Duration {
    configured.max(timeout)
}

fn age(message: &Message) -> Duration {
    let sent_ms = message
        .attributes()
        .and_then(|attributes| attributes.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|value| value.parse::<u64>().ok());
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    sent_ms.map_or(Duration::ZERO, |sent| {
        Duration::from_millis(now_ms.saturating_sub(sent))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_for_the_crashed_invocations_claim_to_end() {
        let timeout = Duration::from_secs(15);
        assert_eq!(retry_delay(Duration::from_secs(1), timeout), timeout);
        assert_eq!(
            retry_delay(Duration::from_secs(60), timeout),
            Duration::from_secs(60)
        );
    }
}
