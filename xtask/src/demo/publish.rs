//! Putting an event into the pipeline where its producer would: OrderPlaced on the `orders`
//! topic (with the `eventType` message attribute the subscriptions filter on), every other
//! event on the `orders` bus (`source` and `detail-type` from the envelope, the envelope as
//! `detail`).

use anyhow::{bail, Context, Result};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sns::types::MessageAttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::local_lambda::clients::Clients;
use crate::local_lambda::stack::Stack;

/// Where events enter the pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entrances {
    /// The `orders` topic's ARN.
    pub topic_arn: String,
    /// The `orders` bus's name.
    pub bus_name: String,
}

impl Entrances {
    /// The order pipeline's entrances in a created stack: its `OrdersTopic` and `OrdersBus`.
    pub fn of(stack: &Stack) -> Result<Self> {
        Ok(Self {
            topic_arn: stack
                .topics
                .get("OrdersTopic")
                .cloned()
                .context("the template declares no OrdersTopic")?,
            bus_name: stack
                .buses
                .get("OrdersBus")
                .cloned()
                .context("the template declares no OrdersBus")?,
        })
    }
}

/// The event type producers publish to the topic rather than the bus.
const TOPIC_EVENT: &str = "OrderPlaced";

/// Publishes the envelope `text` (as written); returns where it went.
pub async fn publish(clients: &Clients, entrances: &Entrances, text: &str) -> Result<String> {
    let envelope: Value = serde_json::from_str(text).context("the event is not JSON")?;
    let Some(event_type) = envelope["eventType"].as_str() else {
        bail!("the event has no eventType: it is not an eventkit envelope");
    };
    if event_type == TOPIC_EVENT {
        clients
            .sns
            .publish()
            .topic_arn(&entrances.topic_arn)
            .message(text)
            .message_attributes(
                "eventType",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(event_type)
                    .build()?,
            )
            .send()
            .await
            .context("publishing to the orders topic")?;
        return Ok(format!("{event_type} published to {}", entrances.topic_arn));
    }
    let source = envelope["source"].as_str().unwrap_or(orders::SOURCE);
    let output = clients
        .eventbridge
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name(&entrances.bus_name)
                .source(source)
                .detail_type(event_type)
                .detail(text)
                .build(),
        )
        .send()
        .await
        .context("putting the event on the orders bus")?;
    if output.failed_entry_count() > 0 {
        bail!("the bus rejected the event: {:?}", output.entries());
    }
    Ok(format!("{event_type} put on bus {}", entrances.bus_name))
}

/// The queues a topic delivers an event type to, raw: what a producer sends to when the
/// topic cannot carry the event (larger than an SNS message holds, where SQS carries 1 MB),
/// as the topic's subscriptions would have delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicQueues {
    /// The event type delivered.
    pub event_type: String,
    /// The queues' URLs.
    pub urls: Vec<String>,
}

impl TopicQueues {
    /// The queues of `stack` that the topic `topic_arn` delivers `event_type` to: each
    /// subscription whose filter policy (on the `eventType` message attribute, or none)
    /// admits it. Read from SNS itself, so that it follows the template. A subscription
    /// whose delivery could not be imitated (not raw, not to a queue, another filter) is
    /// an error rather than skipped: skipping it would lose what it would have received.
    pub async fn of(
        clients: &Clients,
        stack: &Stack,
        topic_arn: &str,
        event_type: &str,
    ) -> Result<Self> {
        let mut urls = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = clients
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(topic_arn)
                .set_next_token(next.take())
                .send()
                .await
                .context("listing the topic's subscriptions")?;
            for subscription in page.subscriptions() {
                let arn = subscription.subscription_arn().unwrap_or_default();
                let endpoint = subscription.endpoint().unwrap_or_default();
                if subscription.protocol() != Some("sqs") {
                    bail!(
                        "subscription {arn} delivers by {:?}, not to a queue",
                        subscription.protocol()
                    );
                }
                let attributes = clients
                    .sns
                    .get_subscription_attributes()
                    .subscription_arn(arn)
                    .send()
                    .await
                    .with_context(|| format!("reading subscription {arn}"))?;
                let attributes = attributes.attributes().cloned().unwrap_or_default();
                if attributes.get("RawMessageDelivery").map(String::as_str) != Some("true") {
                    bail!("subscription {arn} does not deliver raw");
                }
                if admits(&attributes, event_type)
                    .with_context(|| format!("subscription {arn}'s filter policy"))?
                {
                    urls.push(stack.queue_by_arn(endpoint)?.url);
                }
            }
            match page.next_token() {
                Some(token) => next = Some(token.to_string()),
                None => break,
            }
        }
        urls.sort();
        Ok(Self {
            event_type: event_type.to_string(),
            urls,
        })
    }

    /// Sends the envelope `text` to every queue, as the topic's raw delivery would (the body
    /// as is, `eventType` as a message attribute). Each queue is tried up to six times on its
    /// own, so that a queue that took the message is not sent it again.
    pub async fn deliver(&self, clients: &Clients, text: &str) -> Result<()> {
        use aws_sdk_sqs::types::MessageAttributeValue;
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&self.event_type)
            .build()?;
        for url in &self.urls {
            let mut attempt = 0;
            loop {
                let sent = clients
                    .sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(text)
                    .message_attributes("eventType", attribute.clone())
                    .send()
                    .await;
                match sent {
                    Ok(_) => break,
                    Err(error) if attempt >= 5 => {
                        return Err(anyhow::Error::new(error)
                            .context(format!("sending {} bytes to {url}", text.len())))
                    }
                    Err(_) => {
                        attempt += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a subscription with `attributes` takes messages whose `eventType` attribute is
/// `event_type`: no filter policy, or one on the message attributes naming it among the
/// values of `eventType`. Other policies are refused: they are not imitated here.
fn admits(
    attributes: &std::collections::HashMap<String, String>,
    event_type: &str,
) -> Result<bool> {
    let Some(policy) = attributes
        .get("FilterPolicy")
        .filter(|p| !p.trim().is_empty())
    else {
        return Ok(true);
    };
    if attributes
        .get("FilterPolicyScope")
        .is_some_and(|scope| scope != "MessageAttributes")
    {
        bail!("a filter on the message body is not imitated");
    }
    let policy: Value = serde_json::from_str(policy).context("the filter policy is not JSON")?;
    let Some(keys) = policy.as_object() else {
        bail!("the filter policy is not an object");
    };
    let mut admitted = true;
    for (key, values) in keys {
        let values = values
            .as_array()
            .filter(|values| values.iter().all(Value::is_string))
            .with_context(|| format!("only lists of exact strings are imitated ({key})"))?;
        admitted &= key == "eventType" && values.iter().any(|value| value == event_type);
    }
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::admits;

    fn attributes(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_filter_on_the_event_type_admits_only_what_it_names() {
        assert!(admits(&attributes(&[]), "OrderPlaced").unwrap());
        let filtered = attributes(&[
            ("FilterPolicy", r#"{"eventType":["OrderPlaced"]}"#),
            ("FilterPolicyScope", "MessageAttributes"),
        ]);
        assert!(admits(&filtered, "OrderPlaced").unwrap());
        assert!(!admits(&filtered, "StockReserved").unwrap());
        // Another attribute the message does not carry: not delivered.
        let other = attributes(&[("FilterPolicy", r#"{"tenant":["a"]}"#)]);
        assert!(!admits(&other, "OrderPlaced").unwrap());
    }

    #[test]
    fn filters_it_cannot_imitate_are_refused() {
        let body = attributes(&[
            ("FilterPolicy", r#"{"eventType":["OrderPlaced"]}"#),
            ("FilterPolicyScope", "MessageBody"),
        ]);
        assert!(admits(&body, "OrderPlaced").is_err());
        let prefix = attributes(&[("FilterPolicy", r#"{"eventType":[{"prefix":"Order"}]}"#)]);
        assert!(admits(&prefix, "OrderPlaced").is_err());
    }
}
