//! What the pipeline must end with, derived from the samples by the pipeline's documented
//! rules (`events/README.md`), so that adding a sample needs no second place to update:
//!
//! - an envelope seen before (same `eventId`) is a duplicate and has no effect of its own;
//! - data that does not decode as an order is poison: inventory and notifications (which
//!   decode it) dead-letter it, analytics (which reads only the envelope) counts it;
//! - an order with a line that is not orderable (no lines, a zero quantity) is poison for
//!   inventory only;
//! - an order that wants more of some SKU (its lines on it together) than remains is
//!   rejected (stock is taken in file order; the samples do not compete for stock, so the
//!   order does not matter);
//! - an order whose StockReserved (the whole order) cannot be staged, too large for the
//!   bus or for an outbox item, is refused at staging: inventory dead-letters it and
//!   nothing is reserved, staged or published; notifications still confirm it;
//! - an amount ending in 13 cents (or zero) is declined and its stock released;
//! - every other order completes.

use std::collections::{BTreeMap, BTreeSet};

use eventkit::events::EventEnvelope;
use eventkit::outbox::{Destination, UnitOfWork, UnitOfWorkError};
use orders::{Order, StockReserved};
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
    /// Too large for its StockReserved to be staged: refused by inventory (dead-lettered,
    /// its reason naming the size), nothing reserved, staged or published.
    TooLarge,
}

impl OrderOutcome {
    /// Whether its OrderPlaced ends in dead-letter queues (poison, or too large to stage).
    pub fn is_dead_lettered(self) -> bool {
        matches!(self, Self::Poison | Self::TooLarge)
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Declined => "declined, stock released",
            Self::Rejected => "rejected: out of stock",
            Self::Poison => "poison: dead-lettered",
            Self::TooLarge => "too large: refused at staging, dead-lettered",
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
                } else if wanted(order)
                    .iter()
                    .any(|(sku, quantity)| stock.get(*sku).copied().unwrap_or(0) < *quantity)
                {
                    count(&mut expected, "StockReservationFailed");
                    OrderOutcome::Rejected
                } else if !stages(&sample.envelope, order) {
                    dead_letter(&mut expected, "InventoryFunction");
                    OrderOutcome::TooLarge
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

/// What `order` wants of each SKU, its lines on it together (as inventory reserves them).
fn wanted(order: &Order) -> BTreeMap<&str, u64> {
    let mut wanted = BTreeMap::new();
    for line in &order.items {
        *wanted.entry(line.sku.as_str()).or_default() += u64::from(line.quantity);
    }
    wanted
}

/// Whether inventory can stage the StockReserved of `order`, caused by `placed`: asked of
/// the toolkit's unit of work, as inventory stages it, so that the carriers' limits are
/// written in one place. The bus's name is the stack's, unknown here; it changes the outbox
/// item's size by its length only, a few dozen bytes.
fn stages(placed: &EventEnvelope<Value>, order: &Order) -> bool {
    let reserved = EventEnvelope::caused_by(placed, orders::SOURCE, StockReserved(order.clone()));
    !matches!(
        UnitOfWork::new().emit_envelope(Destination::event_bridge("orders"), &reserved),
        Err(UnitOfWorkError::EventTooLarge(_))
    )
}

fn count(expected: &mut Expected, event_type: &str) {
    *expected.counted.entry(event_type.into()).or_default() += 1;
}

fn dead_letter(expected: &mut Expected, function: &str) {
    *expected.dead_letters.entry(function.into()).or_default() += 1;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use orders::{LineItem, Order, OrderPlaced};
    use serde_json::json;

    use super::*;
    use crate::demo::samples::order_of;

    fn sample(order_id: &str, items: &[(&str, u32)]) -> Sample {
        let order = Order {
            order_id: order_id.into(),
            customer_id: "c".into(),
            customer_email: "c@example.com".into(),
            items: items
                .iter()
                .map(|(sku, quantity)| LineItem {
                    sku: (*sku).into(),
                    quantity: *quantity,
                })
                .collect(),
            amount_cents: 1000,
            currency: "EUR".into(),
        };
        let envelope = EventEnvelope::new(orders::SOURCE, OrderPlaced::from(order));
        let envelope: EventEnvelope<Value> =
            serde_json::from_value(serde_json::to_value(&envelope).unwrap()).unwrap();
        Sample {
            file: order_id.into(),
            text: serde_json::to_string(&envelope).unwrap(),
            order: order_of(&envelope),
            envelope,
        }
    }

    fn seed(sku: &str, available: u64) -> Map<String, Value> {
        json!({"sku": sku, "available": available})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn an_order_wants_its_lines_on_one_sku_together() {
        // Each line alone fits the stock of 5; the two together (6) do not.
        let expected = derive(&[sample("o-1", &[("A", 3), ("A", 3)])], &[seed("A", 5)]);
        assert_eq!(expected.orders[0].outcome, OrderOutcome::Rejected);
        let expected = derive(&[sample("o-1", &[("A", 3), ("A", 2)])], &[seed("A", 5)]);
        assert_eq!(expected.orders[0].outcome, OrderOutcome::Completed);
        assert_eq!(expected.stock["A"], 0);
    }

    #[test]
    fn an_order_whose_stock_reserved_cannot_be_staged_is_refused_and_reserves_nothing() {
        // 26 bytes a line: some 520 KB, more than an outbox item holds.
        let lines = vec![("A", 1); 20_000];
        let expected = derive(&[sample("o-big", &lines)], &[seed("A", 20_000)]);
        let order = &expected.orders[0];
        assert_eq!(order.outcome, OrderOutcome::TooLarge);
        assert!(order.outcome.is_dead_lettered());
        assert_eq!(expected.stock["A"], 20_000);
        assert!(expected.reservations.is_empty());
        assert_eq!(expected.dead_letters["InventoryFunction"], 1);
        // Confirmed and counted all the same: notifications and analytics take 1 MB.
        assert!(expected
            .emails
            .contains(&("o-big".into(), "order-confirmation".into())));
        assert_eq!(expected.counted.get("StockReserved"), None);
        assert_eq!(expected.counted["OrderPlaced"], 1);
    }
}
