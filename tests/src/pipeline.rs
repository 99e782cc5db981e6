//! The order pipeline's resources for one test: its tables in DynamoDB Local (shaped as
//! `infra/template.yaml` declares them), its bus in LocalStack, and a queue that captures
//! everything published to the bus so a test can assert what a function emitted.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::events::{EventBridgePublisher, EventEnvelope};
use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use eventkit::outbox::Destination;
use serde_json::Value;

use crate::{Bus, LocalCloud, Queue};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// One test's copy of the pipeline's resources.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The clients.
    pub cloud: LocalCloud,
    /// The idempotency table (`id`), which is the outbox too, as in infra/template.yaml: the
    /// events inventory and payments commit ride on their records (an `outbox` list), and the
    /// sparse `unpublished` index holds the records whose events wait.
    pub idempotency_table: String,
    /// The inventory table (`sku`).
    pub inventory_table: String,
    /// The notifications table (`notificationId`).
    pub notifications_table: String,
    /// The analytics table (`pk`).
    pub analytics_table: String,
    /// The payment provider's ledger (`idempotencyKey`).
    pub ledger_table: String,
    /// The `orders` bus.
    pub bus: Bus,
    /// Receives every event put on the bus.
    pub published: Queue,
}

impl Pipeline {
    /// Creates the tables, the bus and the capture queue.
    pub async fn create(cloud: &LocalCloud) -> Self {
        let bus = cloud.create_bus("orders").await;
        let published = cloud.create_queue("published", &[]).await;
        cloud
            .route_to_queue(&bus, r#"{"source": ["eventkit.orders"]}"#, &published)
            .await;
        Self {
            idempotency_table: cloud.create_outbox_table("idempotency").await,
            inventory_table: cloud.create_table("inventory", "sku").await,
            notifications_table: cloud.create_table("notifications", "notificationId").await,
            analytics_table: cloud.create_table("analytics", "pk").await,
            ledger_table: cloud.create_table("ledger", "idempotencyKey").await,
            cloud: cloud.clone(),
            bus,
            published,
        }
    }

    /// An idempotency layer named `name` on the pipeline's table, its events committed on its
    /// completions (the functions' wiring, with `OUTBOX_TABLE` naming the idempotency table).
    pub fn idempotency(&self, name: &str) -> Idempotency<DynamoDbStore> {
        Idempotency::new(
            DynamoDbStore::new(self.cloud.dynamodb.clone(), &self.idempotency_table)
                .with_outbox_on_completions(),
            IdempotencyConfig::new(name),
        )
    }

    /// Every event committed to the outbox: each event on an idempotency record's `outbox`
    /// list, in commit order.
    pub async fn committed_events(&self) -> Vec<CommittedEvent> {
        let mut events: Vec<CommittedEvent> = self
            .scan(&self.idempotency_table)
            .await
            .into_iter()
            .flat_map(|record| CommittedEvent::on(&record))
            .collect();
        events.sort_by(|a, b| a.staged_at.cmp(&b.staged_at));
        events
    }

    /// The bus as the destination of staged events.
    pub fn bus_destination(&self) -> Destination {
        Destination::event_bridge(&self.bus.name)
    }

    /// A publisher to the pipeline's bus that checks every event against its schema, so a
    /// function breaking its contract fails here rather than in its consumers.
    pub fn bus_publisher(&self) -> EventBridgePublisher {
        EventBridgePublisher::new(self.cloud.eventbridge.clone(), &self.bus.name)
            .with_validation(std::sync::Arc::new(orders::schema_validator()))
    }

    /// The payment provider's ledger entries (one per charge), by order id.
    pub async fn charges(&self) -> Vec<(String, Item)> {
        let mut charges: Vec<(String, Item)> = self
            .scan(&self.ledger_table)
            .await
            .into_iter()
            .map(|item| {
                let order = item.get("orderId").and_then(|v| v.as_s().ok());
                (order.cloned().unwrap_or_default(), item)
            })
            .collect();
        charges.sort_by(|a, b| a.0.cmp(&b.0));
        charges
    }

    /// Sets the stock of each SKU.
    pub async fn seed_stock(&self, stock: &[(&str, u64)]) {
        for (sku, available) in stock {
            self.cloud
                .dynamodb
                .put_item()
                .table_name(&self.inventory_table)
                .item("sku", AttributeValue::S((*sku).into()))
                .item("available", AttributeValue::N(available.to_string()))
                .send()
                .await
                .expect("PutItem stock");
        }
    }

    /// The stock of `sku`.
    pub async fn stock(&self, sku: &str) -> Option<u64> {
        let item = self.item(&self.inventory_table, "sku", sku).await?;
        item.get("available")?.as_n().ok()?.parse().ok()
    }

    /// An item by its string partition key, read consistently.
    pub async fn item(&self, table: &str, key: &str, value: &str) -> Option<Item> {
        self.cloud
            .dynamodb
            .get_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
    }

    /// Every item of `table`.
    pub async fn scan(&self, table: &str) -> Vec<Item> {
        self.cloud
            .dynamodb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .expect("Scan")
            .items
            .unwrap_or_default()
    }

    /// The envelopes published to the bus (the outbox relayed first), waiting until
    /// `expected` arrived or `timeout` passed (then returning what did), and then a moment
    /// more to catch extras.
    pub async fn published_events(
        &self,
        expected: usize,
        timeout: Duration,
    ) -> Vec<EventEnvelope<Value>> {
        self.relay_outbox().await;
        let mut messages = self.cloud.receive(&self.published, expected, timeout).await;
        messages.extend(
            self.cloud
                .receive(&self.published, usize::MAX, Duration::from_millis(1500))
                .await,
        );
        self.cloud
            .delete(&self.published, &messages.iter().collect::<Vec<_>>())
            .await;
        messages
            .iter()
            .map(|message| {
                let event: Value = serde_json::from_str(message.body().unwrap_or_default())
                    .expect("EventBridge event JSON");
                serde_json::from_value(event["detail"].clone()).expect("detail is an envelope")
            })
            .collect()
    }
}

/// One event committed on an idempotency record.
#[derive(Clone, Debug)]
pub struct CommittedEvent {
    /// The event's id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// What is published (the envelope's JSON).
    pub body: String,
    /// The record that carries it (`id`).
    pub record: String,
    /// When it was committed.
    pub staged_at: String,
    /// Whether the relay (or the sweeper) marked its record published.
    pub published: bool,
}

impl CommittedEvent {
    /// The events on `record`'s `outbox` list (none for a claim or a plain completion).
    pub fn on(record: &Item) -> Vec<Self> {
        let text = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|value| value.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let Some(Ok(list)) = record.get("outbox").map(AttributeValue::as_l) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|event| event.as_m().ok())
            .map(|event| Self {
                event_id: text(event, "eventId"),
                event_type: text(event, "eventType"),
                body: text(event, "body"),
                record: text(record, "id"),
                staged_at: text(record, "stagedAt"),
                published: !record.contains_key("unpublished"),
            })
            .collect()
    }
}
