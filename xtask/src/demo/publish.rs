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
