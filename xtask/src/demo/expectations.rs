//! What the pipeline must end with, derived from the samples by the pipeline's documented
//! rules (`events/README.md`), so that adding a sample needs no second place to update:
//!
//! - an envelope seen before (same `eventId`) is a duplicate and has no effect of its own;
//! - data that does not decode as an order is poison: inventory and notifications (which
//!   decode it) dead-letter it, analytics (which reads only the envelope) counts it;
//! - an order with a line that is not orderable (no lines, a zero quantity) is poison for
//!   inventory only;
//! - an order some line of which exceeds the remaining stock is rejected (stock is taken in
//!   file order; the samples do not compete for stock, so the order does not matter);
//! - an amount ending in 13 cents (or zero) is declined and its stock released;
//! - every other order completes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::samples::Sample;

/// How an order ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderOutcome {
    /// Stock reserved, payment completed, confirmation and receipt sent.
    Completed,
    /// Stock reserved, payment declined, stock released.
    Declined,
    /// Not enough stock: nothing reserved, no payment.
    Rejected,
    /// Never processed: in the dead-letter queues.
    Poison,
}

impl OrderOutcome {
    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Declined => "declined, stock released",
            Self::Rejected => "rejected: out of stock",
            Self::Poison => "poison: dead-lettered",
        }
    }
}

/// One order of the samples.
#[derive(Clone, Debug)]
pub struct ExpectedOrder {
    /// The order id.
    pub order_id: String,
    /// The correlation id of its events.
    pub correlation_id: String,
    /// The files that publish it (more than one: duplicates).
    pub files: Vec<String>,
    /// How it must end.
    pub outcome: OrderOutcome,
}

/// The end state of a demo run.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// The orders, in sample order.
    pub orders: Vec<ExpectedOrder>,
    /// Available stock per SKU.
    pub stock: BTreeMap<String, u64>,
    /// Orders whose reservation remains (completed ones).
    pub reservations: BTreeSet<String>,
    /// Emails per (order id, kind), each exactly once.
    pub emails: BTreeSet<(String, String)>,
    /// Events counted per type by analytics.
    pub counted: BTreeMap<String, u64>,
    /// Messages dead-lettered per function logical id.
    pub dead_letters: BTreeMap<String, u64>,
}

/// The expected end state of publishing `samples` over `seed`.
pub fn derive(samples: &[Sample], seed: &[Map<String, Value>]) -> Expected {
    let mut stock: BTreeMap<String, u64> = seed
        .iter()
        .filter_map(|item| {
            let sku = item.get("sku")?.as_str()?.to_string();
            Some((sku, item.get("available")?.as_u64().unwrap_or(0)))
        })
        .collect();
    let mut expected = Expected::default();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for sample in samples {
        if !seen.insert(&sample.envelope.event_id) {
            if let Some(order) = expected
                .orders
                .iter_mut()
                .find(|o| o.correlation_id == sample.envelope.correlation_id)
            {
                order.files.push(sample.file.clone());
            }
            continue;
        }
        let order_id = sample.order_id();
        *expected.counted.entry("OrderPlaced".into()).or_default() += 1;
        let outcome = match &sample.order {
            Err(_) => {
                dead_letter(&mut expected, "InventoryFunction");
                dead_letter(&mut expected, "NotificationsFunction");
                OrderOutcome::Poison
            }
            Ok(order) => {
                expected
                    .emails
                    .insert((order_id.clone(), "order-confirmation".into()));
                let orderable = !order.items.is_empty()
                    && order
                        .items
                        .iter()
                        .all(|line| line.quantity > 0 && !line.sku.is_empty());
                if !orderable {
                    dead_letter(&mut expected, "InventoryFunction");
                    OrderOutcome::Poison
                } else if order.items.iter().any(|line| {
                    stock.get(&line.sku).copied().unwrap_or(0) < u64::from(line.quantity)
                }) {
                    count(&mut expected, "StockReservationFailed");
                    OrderOutcome::Rejected
                } else if order.amount_cents == 0 || order.amount_cents % 100 == 13 {
                    ["StockReserved", "PaymentFailed", "StockReleased"]
                        .iter()
                        .for_each(|event| count(&mut expected, event));
                    OrderOutcome::Declined
                } else {
                    for line in &order.items {
                        if let Some(available) = stock.get_mut(&line.sku) {
                            *available -= u64::from(line.quantity);
                        }
                    }
                    ["StockReserved", "PaymentCompleted"]
                        .iter()
                        .for_each(|event| count(&mut expected, event));
                    expected.reservations.insert(order_id.clone());
                    expected
                        .emails
                        .insert((order_id.clone(), "payment-receipt".into()));
                    OrderOutcome::Completed
                }
            }
        };
        expected.orders.push(ExpectedOrder {
            order_id,
            correlation_id: sample.envelope.correlation_id.clone(),
            files: vec![sample.file.clone()],
            outcome,
        });
    }
    expected.stock = stock;
    expected
}

fn count(expected: &mut Expected, event_type: &str) {
    *expected.counted.entry(event_type.into()).or_default() += 1;
}

fn dead_letter(expected: &mut Expected, function: &str) {
    *expected.dead_letters.entry(function.into()).or_default() += 1;
}
