//! Stock in DynamoDB. Items are `{sku, available}`; an order's reservation is an item of
//! its own (`sku = reservation#<orderId>`) staged in the same unit of work as the stock
//! decrements, and committed with the event and the idempotency completion in one
//! transaction. That makes reserving and releasing safe to repeat: a second reservation of
//! one order fails on the reservation's condition and is recognised as already done, and
//! a second release finds nothing to delete. Stock never goes below zero: each decrement is
//! conditional on `available >= quantity`.
//!
//! A reservation is needed until the order's payment is settled: a declined payment releases
//! it (and deletes it), a completed one leaves it to expire. Each reservation carries
//! `expiration` (epoch seconds, the table's TTL attribute), [`RESERVATION_LIFETIME`] ahead,
//! and DynamoDB's TTL deletes it then, so reservations of paid orders do not pile up.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, Update};
use eventkit::batch::{Classify, ErrorClass};
use eventkit::outbox::{UnitOfWork, UnitOfWorkError};
use orders::{LineItem, Order};

/// DynamoDB's limit on the actions of one transaction: the completion, the reservation item
/// and the order's event take three of the 100.
const MAX_LINES: usize = 97;

/// Attempts at reading the stock when DynamoDB leaves keys unprocessed (throttling).
const READ_ATTEMPTS: usize = 5;

/// How long a reservation is kept: longer than any PaymentFailed can still arrive to release
/// it. The longest path is about 34 days (StockReserved retried by its rule for 24 h, payments'
/// asynchronous retries for 1 h, 14 days in PaymentsDlq before a redrive, PaymentFailed
/// retried for 24 h, 4 days in CompensationQueue and 14 in CompensationDlq); 60 days leave
/// room for a late redrive. An expired reservation's PaymentFailed finds nothing to release.
pub const RESERVATION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60 * 86_400);

/// The table's TTL attribute (`TimeToLiveSpecification` in infra/template.yaml).
pub const EXPIRATION_ATTRIBUTE: &str = "expiration";

/// The outcome of a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Every line is reserved now.
    Reserved,
    /// The order was reserved already, by an earlier event for it (a producer that sent
    /// one order twice under two eventIds). That reservation committed together with its
    /// StockReserved (one transaction), so the order has been reported once already.
    AlreadyReserved,
    /// `sku` has less stock than the order needs; nothing was reserved.
    Short {
        /// The first SKU short of stock.
        sku: String,
    },
}

/// The outcome of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// The reservation's lines were put back.
    Released {
        /// What was put back.
        items: Vec<LineItem>,
    },
    /// The order had no reservation (never reserved, or released already).
    NothingReserved,
}

/// Why stock could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// The order can never be reserved (poison).
    #[error("order {order_id} is invalid: {reason}")]
    InvalidOrder {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
    /// DynamoDB failed (retry later).
    #[error("inventory table: {0}")]
    Table(String),
    /// The order's writes do not fit in one transaction (poison).
    #[error(transparent)]
    TooLarge(#[from] UnitOfWorkError),
}

/// An invalid order is poison, a table failure is transient: said once, here, so `?` keeps it.
impl Classify for StockError {
    fn class(&self) -> ErrorClass {
        match self {
            StockError::InvalidOrder { .. } | StockError::TooLarge(_) => ErrorClass::Permanent,
            StockError::Table(_) => ErrorClass::Transient,
        }
    }
}

/// The inventory table.
#[derive(Clone, Debug)]
pub struct Stock {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Stock {
    /// Stock kept in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Reserves every line of `order`, or none: reads the stock and the order's reservation
    /// (consistently), decides, and stages the reservation and the decrements in `work`, each
    /// conditional on what was read still holding (`available >= quantity`, no reservation
    /// yet). If another order took the stock in between, the commit fails on that condition,
    /// nothing is written, and the redelivery decides again on fresh reads.
    pub async fn reserve(
        &self,
        order: &Order,
        work: &mut UnitOfWork,
    ) -> Result<Reservation, StockError> {
        let lines = merged_lines(order)?;
        let reservation = reservation_key(&order.order_id);
        let mut keys: Vec<String> = lines.iter().map(|line| line.sku.clone()).collect();
        keys.push(reservation.clone());
        let items = self.read(&keys).await?;
        if items.contains_key(&reservation) {
            // An earlier event for this order committed: reserved already.
            return Ok(Reservation::AlreadyReserved);
        }
        let available = |sku: &str| -> u64 {
            items
                .get(sku)
                .and_then(|item| item.get("available")?.as_n().ok()?.parse().ok())
                .unwrap_or(0)
        };
        if let Some(short) = lines
            .iter()
            .find(|line| available(&line.sku) < u64::from(line.quantity))
        {
            return Ok(Reservation::Short {
                sku: short.sku.clone(),
            });
        }
        let items_json =
            serde_json::to_string(&lines).map_err(|e| StockError::Table(e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("sku", s(reservation))
            .item("orderId", s(&order.order_id))
            .item("items", s(items_json))
            .item(EXPIRATION_ATTRIBUTE, expiration())
            .condition_expression("attribute_not_exists(sku)")
            .build()
            .map_err(|e| StockError::Table(e.to_string()))?;
        work.put(put)?;
        for line in &lines {
            let decrement = Update::builder()
                .table_name(&self.table)
                .key("sku", s(&line.sku))
                .update_expression("SET available = available - :quantity")
                .condition_expression("available >= :quantity")
                .expression_attribute_values(":quantity", n(line.quantity))
                .build()
                .map_err(|e| StockError::Table(e.to_string()))?;
            work.update(decrement)?;
        }
        Ok(Reservation::Reserved)
    }

    /// Puts back what was reserved for `order_id`: reads the reservation and stages its
    /// deletion (conditional on it still existing) and the increments in `work`.
    pub async fn release(
        &self,
        order_id: &str,
        work: &mut UnitOfWork,
    ) -> Result<Release, StockError> {
        let key = reservation_key(order_id);
        let items = self.read(std::slice::from_ref(&key)).await?;
        let Some(reservation) = items.get(&key) else {
            return Ok(Release::NothingReserved);
        };
        let items: Vec<LineItem> = reservation
            .get("items")
            .and_then(|value| value.as_s().ok())
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| StockError::Table(format!("reservation of {order_id} has no items")))?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("sku", s(key))
            .condition_expression("attribute_exists(sku)")
            .build()
            .map_err(|e| StockError::Table(e.to_string()))?;
        work.delete(delete)?;
        for line in &items {
            let increment = Update::builder()
                .table_name(&self.table)
                .key("sku", s(&line.sku))
                .update_expression("ADD available :quantity")
                .expression_attribute_values(":quantity", n(line.quantity))
                .build()
                .map_err(|e| StockError::Table(e.to_string()))?;
            work.update(increment)?;
        }
        Ok(Release::Released { items })
    }

    /// The items stored under `keys` (SKUs or reservation keys), read consistently in one
    /// `BatchGetItem` (at most 100 keys), retried for the keys DynamoDB left unprocessed.
    async fn read(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StockError> {
        let table_error = |e: String| StockError::Table(e);
        let mut found = HashMap::new();
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(
                keys.iter()
                    .map(|key| HashMap::from([("sku".to_string(), s(key))]))
                    .collect(),
            ))
            .consistent_read(true)
            .build()
            .map_err(|e| table_error(e.to_string()))?;
        for _ in 0..READ_ATTEMPTS {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending.clone())
                .send()
                .await
                .map_err(|e| table_error(DisplayErrorContext(e).to_string()))?;
            for item in output
                .responses
                .and_then(|mut tables| tables.remove(&self.table))
                .unwrap_or_default()
            {
                if let Some(sku) = item.get("sku").and_then(|v| v.as_s().ok()).cloned() {
                    found.insert(sku, item);
                }
            }
            match output
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(&self.table))
            {
                Some(rest) if !rest.keys().is_empty() => pending = rest,
                _ => return Ok(found),
            }
        }
        Err(table_error(format!(
            "stock not read after {READ_ATTEMPTS} attempts (unprocessed keys)"
        )))
    }

    /// The stock of `sku` (`None` when the SKU is unknown).
    pub async fn available(&self, sku: &str) -> Result<Option<u64>, StockError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("sku", s(sku))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StockError::Table(DisplayErrorContext(e).to_string()))?
            .item;
        Ok(item.and_then(|item| item.get("available")?.as_n().ok()?.parse().ok()))
    }
}

/// One line per SKU (a transaction may touch each item once), validated.
fn merged_lines(order: &Order) -> Result<Vec<LineItem>, StockError> {
    let invalid = |reason: &str| StockError::InvalidOrder {
        order_id: order.order_id.clone(),
        reason: reason.into(),
    };
    let mut merged: BTreeMap<&str, u32> = BTreeMap::new();
    for line in &order.items {
        if line.quantity == 0 || line.sku.is_empty() || line.sku.starts_with("reservation#") {
            return Err(invalid(&format!("line {line:?} is not orderable")));
        }
        let quantity = merged.entry(&line.sku).or_default();
        *quantity = quantity.saturating_add(line.quantity);
    }
    if merged.is_empty() {
        return Err(invalid("it has no lines"));
    }
    if merged.len() > MAX_LINES {
        return Err(invalid(&format!("more than {MAX_LINES} distinct SKUs")));
    }
    Ok(merged
        .into_iter()
        .map(|(sku, quantity)| LineItem {
            sku: sku.to_string(),
            quantity,
        })
        .collect())
}

/// Now plus [`RESERVATION_LIFETIME`], in epoch seconds (a DynamoDB number, as TTL reads it).
fn expiration() -> AttributeValue {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    AttributeValue::N((now + RESERVATION_LIFETIME).as_secs().to_string())
}

fn reservation_key(order_id: &str) -> String {
    format!("reservation#{order_id}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u32) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
