//! The events of the order pipeline, as they travel in the eventkit envelope (camelCase).
//! All are at version 1; a later version adds an upcast here and nowhere else.

use eventkit::events::VersionedEvent;
use serde::{Deserialize, Serialize};

/// The envelope `source` of every event the pipeline publishes; the EventBridge rules in
/// `infra/template.yaml` match on it.
pub const SOURCE: &str = "eventkit.orders";

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// The stock keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// Who ordered what, and for how much: carried along the flow so no function has to look
/// an order up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// A customer placed an order (published to the `orders` SNS topic).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderPlaced(pub Order);

/// Inventory reserved every line of the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StockReserved(pub Order);

/// Inventory could not reserve the order; nothing was reserved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCompleted {
    /// The order that was paid.
    pub order: Order,
    /// The provider's payment id.
    pub payment_id: String,
}

/// The payment provider declined the order; its stock must be released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    /// The order that was declined.
    pub order: Order,
    /// The provider's reason.
    pub reason: String,
}

/// Inventory put a declined order's stock back: the saga's compensation is done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    )*};
}

version_1!(
    OrderPlaced,
    StockReserved,
    StockReservationFailed,
    PaymentCompleted,
    PaymentFailed,
    StockReleased
);
