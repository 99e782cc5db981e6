//! Sending into the running application where its producers would: a message on a queue, a
//! notification on a topic, an event on a bus, each found by its logical id.

use anyhow::{bail, Context, Result};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::Value;

use crate::batch_entries::{BatchEntry, MAX_PER_REQUEST};
use crate::clients::Clients;
use crate::running::{names, RunningApp};

/// What was sent, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// `queue`, `topic` or `bus`.
    pub kind: &'static str,
    /// The id the service gave it (message id, or the event's id).
    pub id: String,
    /// Why it may reach nothing (a topic without subscriptions accepts and drops).
    pub warning: Option<String>,
}

/// Sends `payload` to the queue, topic or bus declared as `logical`: a queue's message body
/// (FIFO queues get `group` as message group), a topic's message, or a bus's event, which
/// `payload` gives as an EventBridge entry (`Source`, `DetailType`, `Detail`, as
/// `PutEvents` takes it, or `source`, `detail-type`, `detail` as a rule sees it).
pub async fn send(
    clients: &Clients,
    app: &RunningApp,
    logical: &str,
    payload: &str,
    group: &str,
) -> Result<Sent> {
    if let Some(queue) = app.queues.get(logical) {
        let mut request = clients
            .sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(payload);
        if queue.name.ends_with(".fifo") {
            request = request
                .message_group_id(group)
                .message_deduplication_id(uuid::Uuid::new_v4().simple().to_string());
        }
        let sent = request
            .send()
            .await
            .with_context(|| format!("sending to queue {logical}"))?;
        return Ok(Sent {
            kind: "queue",
            id: sent.message_id().unwrap_or_default().to_string(),
            warning: None,
        });
    }
    if let Some(topic) = app.topics.get(logical) {
        let warning = unheard(clients, topic, logical).await?;
        let mut request = clients.sns.publish().topic_arn(topic).message(payload);
        if topic.ends_with(".fifo") {
            request = request
                .message_group_id(group)
                .message_deduplication_id(uuid::Uuid::new_v4().simple().to_string());
        }
        let sent = request
            .send()
            .await
            .with_context(|| format!("publishing to topic {logical}"))?;
        return Ok(Sent {
            kind: "topic",
            id: sent.message_id().unwrap_or_default().to_string(),
            warning,
        });
    }
    if let Some(bus) = app.buses.get(logical) {
        let entry = bus_entry(payload, bus).with_context(|| {
            format!("bus {logical} takes an EventBridge entry (Source, DetailType, Detail)")
        })?;
        let sent = clients
            .eventbridge
            .put_events()
            .entries(entry)
            .send()
            .await
            .with_context(|| format!("putting an event on bus {logical}"))?;
        let result = sent.entries().first();
        if sent.failed_entry_count() > 0 {
            bail!(
                "bus {logical} refused the event: {}",
                result
                    .and_then(|entry| entry.error_message())
                    .unwrap_or("no reason given")
            );
        }
        return Ok(Sent {
            kind: "bus",
            id: result
                .and_then(|entry| entry.event_id())
                .unwrap_or_default()
                .to_string(),
            warning: None,
        });
    }
    bail!(
        "the application has no queue, topic or bus {logical} (queues: {}; topics: {}; buses: {})",
        names(&app.queues),
        names(&app.topics),
        names(&app.buses)
    )
}

/// A warning when the topic has no subscriptions: SNS accepts what no one receives, and a
/// publish that "succeeds" and reaches nothing otherwise looks like a consumer that lost it.
async fn unheard(clients: &Clients, topic: &str, logical: &str) -> Result<Option<String>> {
    let subscriptions = clients
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .with_context(|| format!("listing the subscriptions of topic {logical}"))?;
    Ok(subscriptions
        .subscriptions()
        .is_empty()
        .then(|| format!("topic {logical} has no subscriptions: the message reaches nothing")))
}

/// What a batch send did with each entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchSent {
    /// `queue` or `topic`.
    pub kind: &'static str,
    /// The entries taken: entry id, message id.
    pub sent: Vec<(String, String)>,
    /// The entries refused: entry id, why.
    pub failed: Vec<(String, String)>,
    /// Why they may reach nothing (a topic without subscriptions accepts and drops).
    pub warning: Option<String>,
}

/// Sends `entries` (as a sample file holds them) to the queue or topic declared as
/// `logical`, ten per request as SQS's SendMessageBatch and SNS's PublishBatch take them.
/// On a FIFO queue or topic an entry without a message group gets `group`, and one without
/// a deduplication id a fresh one.
pub async fn send_batch(
    clients: &Clients,
    app: &RunningApp,
    logical: &str,
    entries: &[BatchEntry],
    group: &str,
) -> Result<BatchSent> {
    let with_fifo_ids = |name: &str, entry: &BatchEntry| {
        let mut entry = entry.clone();
        if name.ends_with(".fifo") {
            entry
                .message_group_id
                .get_or_insert_with(|| group.to_string());
            entry
                .message_deduplication_id
                .get_or_insert_with(|| uuid::Uuid::new_v4().simple().to_string());
        }
        entry
    };
    if let Some(topic) = app.topics.get(logical) {
        let mut outcome = BatchSent {
            kind: "topic",
            warning: unheard(clients, topic, logical).await?,
            ..BatchSent::default()
        };
        for chunk in entries.chunks(MAX_PER_REQUEST) {
            let mut request = clients.sns.publish_batch().topic_arn(topic);
            for entry in chunk {
                request =
                    request.publish_batch_request_entries(with_fifo_ids(topic, entry).to_sns()?);
            }
            let published = request
                .send()
                .await
                .with_context(|| format!("publishing a batch to topic {logical}"))?;
            outcome.sent.extend(
                published
                    .successful()
                    .iter()
                    .filter_map(|ok| Some((ok.id()?.to_string(), ok.message_id()?.to_string()))),
            );
            outcome
                .failed
                .extend(published.failed().iter().map(|failed| {
                    let why = failed.message().unwrap_or(failed.code()).to_string();
                    (failed.id().to_string(), why)
                }));
        }
        return Ok(outcome);
    }
    let Some(queue) = app.queues.get(logical) else {
        let kind = if app.buses.contains_key(logical) {
            "a bus"
        } else {
            "not one of its queues or topics"
        };
        bail!(
            "--batch sends entries to a queue (SendMessageBatch) or a topic (PublishBatch); \
             {logical} is {kind} (the application's queues: {}; topics: {})",
            names(&app.queues),
            names(&app.topics)
        );
    };
    let mut outcome = BatchSent {
        kind: "queue",
        ..BatchSent::default()
    };
    for chunk in entries.chunks(MAX_PER_REQUEST) {
        let mut request = clients.sqs.send_message_batch().queue_url(&queue.url);
        for entry in chunk {
            request = request.entries(with_fifo_ids(&queue.name, entry).to_sdk()?);
        }
        let sent = request
            .send()
            .await
            .with_context(|| format!("sending a batch to queue {logical}"))?;
        outcome.sent.extend(
            sent.successful()
                .iter()
                .map(|ok| (ok.id().to_string(), ok.message_id().to_string())),
        );
        outcome.failed.extend(sent.failed().iter().map(|failed| {
            let why = failed.message().unwrap_or(failed.code()).to_string();
            (failed.id().to_string(), why)
        }));
    }
    Ok(outcome)
}

/// The entry `payload` describes, for the bus named `bus`.
fn bus_entry(payload: &str, bus: &str) -> Result<PutEventsRequestEntry> {
    let value: Value = serde_json::from_str(payload).context("not JSON")?;
    let field = |names: &[&str]| names.iter().find_map(|name| value.get(*name));
    let text = |names: &[&str]| -> Result<String> {
        field(names)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("no {} (a string)", names.join(" or ")))
    };
    let detail = match field(&["Detail", "detail"]) {
        Some(Value::String(text)) => text.clone(),
        Some(object @ Value::Object(_)) => object.to_string(),
        _ => bail!("no Detail or detail (a JSON object, or its text)"),
    };
    Ok(PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(text(&["Source", "source"])?)
        .detail_type(text(&["DetailType", "detail-type"])?)
        .detail(detail)
        .build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_bus_entry_is_read_in_either_of_its_shapes() {
        let put = bus_entry(
            r#"{"Source": "shop", "DetailType": "OrderPlaced", "Detail": "{\"a\":1}"}"#,
            "b",
        )
        .unwrap();
        assert_eq!(put.source(), Some("shop"));
        assert_eq!(put.detail(), Some(r#"{"a":1}"#));
        let seen = bus_entry(
            r#"{"source": "shop", "detail-type": "OrderPlaced", "detail": {"a": 1}}"#,
            "b",
        )
        .unwrap();
        assert_eq!(seen.detail_type(), Some("OrderPlaced"));
        assert_eq!(seen.event_bus_name(), Some("b"));
        let error = format!("{:#}", bus_entry(r#"{"detail": {}}"#, "b").unwrap_err());
        assert!(error.contains("Source or source"), "{error}");
    }
}
