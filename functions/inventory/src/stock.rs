//! Stock in DynamoDB. Items are `{sku, available}`; an order's reservation is an item of
//! its own (`sku = reservation#<orderId>`) written in the same transaction as the stock
//! decrements. That makes reserving and releasing safe to repeat: a second reservation of
//! one order fails on the reservation's condition and is recognised as already done, and
//! a second release finds nothing to delete. Stock never goes below zero: each decrement is
//! conditional on `available >= quantity`.
//!
//! A reservation is needed until the order's payment is settled: a declined payment releases
//! it (and deletes it), a completed one leaves it to expire. Each reservation carries
//! `expiration` (epoch seconds, the table's TTL attribute), [`RESERVATION_LIFETIME`] ahead,
//! and DynamoDB's TTL deletes it then, so reservations of paid orders do not pile up.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use eventkit::batch::{Classify, ErrorClass};
use orders::{LineItem, Order};

/// DynamoDB's limit on the actions of one transaction (one is the reservation item).
const MAX_LINES: usize = 99;

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
    /// Every line is reserved (now, or by an earlier attempt for the same order).
    Reserved,
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
}

/// An invalid order is poison, a table failure is transient: said once, here, so `?` keeps it.
impl Classify for StockError {
    fn class(&self) -> ErrorClass {
        match self {
            StockError::InvalidOrder { .. } => ErrorClass::Permanent,
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

    /// Reserves every line of `order`, or none.
    pub async fn reserve(&self, order: &Order) -> Result<Reservation, StockError> {
        let lines = merged_lines(order)?;
        let items_json =
            serde_json::to_string(&lines).map_err(|e| StockError::Table(e.to_string()))?;
        let reservation = Put::builder()
            .table_name(&self.table)
            .item("sku", s(reservation_key(&order.order_id)))
            .item("orderId", s(&order.order_id))
            .item("items", s(items_json))
            .item(EXPIRATION_ATTRIBUTE, expiration())
            .condition_expression("attribute_not_exists(sku)")
            .build()
            .map_err(|e| StockError::Table(e.to_string()))?;
        let mut actions = vec![TransactWriteItem::builder().put(reservation).build()];
        for line in &lines {
            let decrement = Update::builder()
                .table_name(&self.table)
                .key("sku", s(&line.sku))
                .update_expression("SET available = available - :quantity")
                .condition_expression("available >= :quantity")
                .expression_attribute_values(":quantity", n(line.quantity))
                .build()
                .map_err(|e| StockError::Table(e.to_string()))?;
            actions.push(TransactWriteItem::builder().update(decrement).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Reservation::Reserved),
            Err(error) => match failed_conditions(&error) {
                // The reservation exists: an earlier attempt for this order got this far.
                Some(failed) if failed.first() == Some(&0) => Ok(Reservation::Reserved),
                Some(failed) => {
                    let sku = failed
                        .first()
                        .and_then(|index| lines.get(index - 1))
                        .map_or_else(String::new, |line| line.sku.clone());
                    Ok(Reservation::Short { sku })
                }
                None => Err(StockError::Table(DisplayErrorContext(error).to_string())),
            },
        }
    }

    /// Puts back what was reserved for `order_id`.
    pub async fn release(&self, order_id: &str) -> Result<Release, StockError> {
        let reservation = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("sku", s(reservation_key(order_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StockError::Table(DisplayErrorContext(e).to_string()))?
            .item;
        let Some(reservation) = reservation else {
            return Ok(Release::NothingReserved);
        };
        let items: Vec<LineItem> = reservation
            .get("items")
            .and_then(|value| value.as_s().ok())
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| StockError::Table(format!("reservation of {order_id} has no items")))?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("sku", s(reservation_key(order_id)))
            .condition_expression("attribute_exists(sku)")
            .build()
            .map_err(|e| StockError::Table(e.to_string()))?;
        let mut actions = vec![TransactWriteItem::builder().delete(delete).build()];
        for line in &items {
            let increment = Update::builder()
                .table_name(&self.table)
                .key("sku", s(&line.sku))
                .update_expression("ADD available :quantity")
                .expression_attribute_values(":quantity", n(line.quantity))
                .build()
                .map_err(|e| StockError::Table(e.to_string()))?;
            actions.push(TransactWriteItem::builder().update(increment).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Release::Released { items }),
            // Deleted between the read and the transaction: released by someone else.
            Err(error) if failed_conditions(&error).is_some() => Ok(Release::NothingReserved),
            Err(error) => Err(StockError::Table(DisplayErrorContext(error).to_string())),
        }
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

/// The positions of the transaction's actions whose condition failed, when that is why it
/// was cancelled.
fn failed_conditions<R>(error: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<usize>> {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) =
        error.as_service_error()?
    else {
        return None;
    };
    let failed: Vec<usize> = cancelled
        .cancellation_reasons()
        .iter()
        .enumerate()
        .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
        .map(|(index, _)| index)
        .collect();
    (!failed.is_empty()).then_some(failed)
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
