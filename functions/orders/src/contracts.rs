//! The events of the order pipeline, as they travel in the eventkit envelope (camelCase):
//! the contracts. Their JSON Schemas (`events/schemas/<type>/v<version>.json`, and the
//! template's schema registry) are generated from these types by `cargo xtask schemas`;
//! the test suite fails when a change breaks a version's schema (see the README's events
//! section).
//!
//! OrderPlaced is at version 2 (`total` became one [`Money`]); [`OrderPlacedV1`] is upcast
//! here and nowhere else. The others are at version 1.

use eventkit::events::schema::{self, EventContract, EventSchema, OlderVersion};
use eventkit::events::{decode_data, UpcastError, VersionedEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The envelope `source` of every event the pipeline publishes; the EventBridge rules in
/// `infra/template.yaml` match on it.
pub const SOURCE: &str = "eventkit.orders";

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// The stock keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// Who ordered what, and for how much: carried along the flow so no function has to look
/// an order up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order's id.
    pub order_id: String,
    /// The customer's id.
    pub customer_id: String,
    /// Where confirmations go.
    pub customer_email: String,
    /// What was ordered.
    pub items: Vec<LineItem>,
    /// The total, in the currency's minor unit.
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// An amount of money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// The amount, in the currency's minor unit.
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// A customer placed an order (published to the `orders` SNS topic). Version 2: the total is
/// one `Money` (`total`), where version 1 (`OrderPlacedV1`) had `amountCents` and `currency`
/// side by side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    /// The order's id.
    pub order_id: String,
    /// The customer's id.
    pub customer_id: String,
    /// Where confirmations go.
    pub customer_email: String,
    /// What was ordered.
    pub items: Vec<LineItem>,
    /// What the order costs.
    pub total: Money,
}

impl OrderPlaced {
    /// The order as the rest of the flow carries it (StockReserved, PaymentCompleted, ...).
    pub fn order(&self) -> Order {
        Order {
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            customer_email: self.customer_email.clone(),
            items: self.items.clone(),
            amount_cents: self.total.amount_cents,
            currency: self.total.currency.clone(),
        }
    }
}

impl From<Order> for OrderPlaced {
    fn from(order: Order) -> Self {
        Self {
            order_id: order.order_id,
            customer_id: order.customer_id,
            customer_email: order.customer_email,
            items: order.items,
            total: Money {
                amount_cents: order.amount_cents,
                currency: order.currency,
            },
        }
    }
}

/// OrderPlaced version 1, still accepted (upcast to version 2): the order's fields as they
/// are, the total as `amountCents` and `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OrderPlacedV1(pub Order);

impl From<OrderPlacedV1> for OrderPlaced {
    fn from(v1: OrderPlacedV1) -> Self {
        v1.0.into()
    }
}

impl VersionedEvent for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const CURRENT_VERSION: u32 = 2;

    fn upcast(version: u32, data: serde_json::Value) -> Result<Self, UpcastError> {
        match version {
            1 => Ok(decode_data::<OrderPlacedV1>(&data)?.into()),
            _ => Err(UpcastError::UnknownVersion),
        }
    }
}

impl EventContract for OrderPlaced {
    fn older_versions() -> Vec<OlderVersion> {
        vec![OlderVersion::of::<OrderPlacedV1>(1)]
    }
}

/// Inventory reserved every line of the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct StockReserved(pub Order);

/// Inventory could not reserve the order; nothing was reserved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockReservationFailed {
    /// The order.
    pub order_id: String,
    /// The first SKU short of stock.
    pub sku: String,
    /// Why, for people.
    pub reason: String,
}

/// The payment provider charged the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCompleted {
    /// The order that was paid.
    pub order: Order,
    /// The provider's payment id.
    pub payment_id: String,
}

/// The payment provider declined the order; its stock must be released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    /// The order that was declined.
    pub order: Order,
    /// The provider's reason.
    pub reason: String,
}

/// Inventory put a declined order's stock back: the saga's compensation is done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockReleased {
    /// The order.
    pub order_id: String,
    /// What was put back.
    pub items: Vec<LineItem>,
}

macro_rules! version_1 {
    ($($event:ident),*) => {$(
        impl VersionedEvent for $event {
            const EVENT_TYPE: &'static str = stringify!($event);
            const CURRENT_VERSION: u32 = 1;
        }

        impl EventContract for $event {}
    )*};
}

version_1!(
    StockReserved,
    StockReservationFailed,
    PaymentCompleted,
    PaymentFailed,
    StockReleased
);

/// The pipeline's event types, each once: the schemas and the validator follow this list.
macro_rules! pipeline_events {
    ($($event:ident),*) => {
        /// Every event type of the pipeline at every version it accepts: what
        /// `cargo xtask schemas` writes to `events/schemas/` and the template's registry.
        pub fn event_schemas() -> Vec<EventSchema> {
            let mut schemas = Vec::new();
            $(schemas.extend(schema::event_schemas::<$event>());)*
            schemas
        }

        /// A validator of every event type of the pipeline.
        pub fn schema_validator() -> schema::SchemaValidator {
            schema::SchemaValidator::new()$(.with::<$event>())*
        }
    };
}

pipeline_events!(
    OrderPlaced,
    StockReserved,
    StockReservationFailed,
    PaymentCompleted,
    PaymentFailed,
    StockReleased
);
