//! The chaos run's load: generated orders of every kind the pipeline knows (completed,
//! declined, out of stock, poison), the stock that makes each one's outcome certain whatever
//! order they arrive in, and the sending plan with its duplicates.

use std::collections::BTreeMap;

use anyhow::Result;
use eventkit::events::EventEnvelope;
use orders::{LineItem, Order, OrderPlaced, SOURCE};
use serde_json::{json, Map, Value};

use crate::demo::samples::{order_of, Sample};

/// SKUs the orders draw from; each is stocked for every order that wants it.
const SKUS: usize = 10;
/// A SKU that is never in stock: a line on it makes an order out of stock.
pub const SOLD_OUT: &str = "CHAOS-SOLD-OUT";

/// What to send.
#[derive(Debug)]
pub struct Load {
    /// Each order once, in creation order (the expectations are derived from these).
    pub orders: Vec<Sample>,
    /// The stock to load before sending.
    pub seed: Vec<Map<String, Value>>,
    /// Indices into `orders`, in sending order; a duplicated order appears 2 to 5 times,
    /// its copies spread over the run.
    pub sends: Vec<usize>,
    /// Orders sent more than once.
    pub duplicated: usize,
}

impl Load {
    /// Messages sent in all.
    pub fn messages(&self) -> usize {
        self.sends.len()
    }

    /// How many times each order is sent, by order id.
    pub fn copies(&self) -> BTreeMap<String, u64> {
        let mut copies = BTreeMap::new();
        for index in &self.sends {
            *copies.entry(self.orders[*index].order_id()).or_default() += 1;
        }
        copies
    }
}

/// `count` orders: about 10% declined (amount ending in 13 cents), 5% out of stock, one in
/// 200 poison (at least three), the rest completed; `duplicate_share` of them sent 2 to 5
/// times.
pub fn generate(count: usize, duplicate_share: f64, rng: &mut fastrand::Rng) -> Result<Load> {
    // A few poison: one in 200, and at least three in a small run (both kinds are there).
    let poison_every = 200.min((count / 3).max(1));
    let mut poisons = 0;
    let mut orders = Vec::with_capacity(count);
    let mut demand = [0u64; SKUS];
    for n in 0..count {
        let order_id = format!("chaos-{n:06}");
        // The first poison comes early, so even a small run has one.
        let sample = if n % poison_every == poison_every / 2 {
            poisons += 1;
            poison(&order_id, poisons)?
        } else {
            let roll = rng.f64();
            let mut items: Vec<LineItem> = (0..rng.usize(1..=3))
                .map(|_| LineItem {
                    sku: format!("CHAOS-{}", rng.usize(0..SKUS)),
                    quantity: rng.u32(1..=3),
                })
                .collect();
            let mut amount_cents = rng.u64(1..5000) * 100 + rng.u64(0..100);
            if amount_cents % 100 == 13 {
                amount_cents += 1;
            }
            if roll < 0.05 {
                items.push(LineItem {
                    sku: SOLD_OUT.into(),
                    quantity: 1,
                });
            } else {
                if roll < 0.15 {
                    amount_cents = amount_cents / 100 * 100 + 13;
                }
                for line in &items {
                    if let Some(index) = sku_index(&line.sku) {
                        demand[index] += u64::from(line.quantity);
                    }
                }
            }
            sample(order_id, items, amount_cents)?
        };
        orders.push(sample);
    }
    let mut seed: Vec<Map<String, Value>> = demand
        .iter()
        .enumerate()
        .map(|(index, wanted)| stock(&format!("CHAOS-{index}"), wanted + 5))
        .collect();
    seed.push(stock(SOLD_OUT, 0));

    let mut sends: Vec<usize> = (0..orders.len()).collect();
    let mut duplicated = 0;
    for index in 0..orders.len() {
        if rng.f64() < duplicate_share {
            duplicated += 1;
            for _ in 1..rng.usize(2..=5) {
                sends.push(index);
            }
        }
    }
    rng.shuffle(&mut sends);
    Ok(Load {
        orders,
        seed,
        sends,
        duplicated,
    })
}

fn sku_index(sku: &str) -> Option<usize> {
    sku.strip_prefix("CHAOS-")?.parse().ok()
}

fn stock(sku: &str, available: u64) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("sku".into(), json!(sku));
    item.insert("available".into(), json!(available));
    item
}

fn sample(order_id: String, items: Vec<LineItem>, amount_cents: u64) -> Result<Sample> {
    let order = Order {
        order_id: order_id.clone(),
        customer_id: format!("cus-{}", &order_id[order_id.len() - 3..]),
        customer_email: "chaos@example.com".into(),
        items,
        amount_cents,
        currency: "EUR".into(),
    };
    let envelope = EventEnvelope::new(SOURCE, OrderPlaced::from(order));
    to_sample(order_id, serde_json::to_value(&envelope)?)
}

/// An OrderPlaced whose data no consumer can decode (every other one), or whose only line
/// has quantity zero (inventory refuses it; notifications still confirm it).
fn poison(order_id: &str, nth: usize) -> Result<Sample> {
    let valid = sample(
        order_id.to_string(),
        vec![LineItem {
            sku: "CHAOS-0".into(),
            quantity: 1,
        }],
        100,
    )?;
    let mut envelope = serde_json::to_value(&valid.envelope)?;
    if nth % 2 == 1 {
        envelope["data"] = json!({"orderId": order_id, "items": "three socks"});
    } else {
        envelope["data"]["items"][0]["quantity"] = json!(0);
    }
    to_sample(order_id.to_string(), envelope)
}

fn to_sample(file: String, envelope: Value) -> Result<Sample> {
    let text = envelope.to_string();
    let parsed: EventEnvelope<Value> = serde_json::from_value(envelope)?;
    let order = order_of(&parsed);
    Ok(Sample {
        file,
        text,
        envelope: parsed,
        order,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::demo::expectations::{derive, OrderOutcome};

    #[test]
    fn every_kind_of_order_is_there_and_duplicates_are_sent_more_than_once() {
        let load = generate(1000, 0.3, &mut fastrand::Rng::with_seed(7)).unwrap();
        let expected = derive(&load.orders, &load.seed);
        let count = |outcome: OrderOutcome| {
            expected
                .orders
                .iter()
                .filter(|o| o.outcome == outcome)
                .count()
        };
        assert_eq!(count(OrderOutcome::Poison), 5);
        assert!((30..=70).contains(&count(OrderOutcome::Rejected)));
        assert!((60..=140).contains(&count(OrderOutcome::Declined)));
        assert_eq!(
            count(OrderOutcome::Completed)
                + count(OrderOutcome::Declined)
                + count(OrderOutcome::Rejected)
                + count(OrderOutcome::Poison),
            1000
        );
        assert!((250..=350).contains(&load.duplicated));
        // Each duplicated order is sent 2 to 5 times.
        assert!(load.messages() >= 1000 + load.duplicated);
        assert!(load.messages() <= 1000 + 4 * load.duplicated);
    }

    #[test]
    fn stock_covers_every_order_that_is_not_meant_to_be_out_of_stock() {
        let load = generate(300, 0.0, &mut fastrand::Rng::with_seed(3)).unwrap();
        let expected = derive(&load.orders, &load.seed);
        for order in &expected.orders {
            let wants_sold_out = load
                .orders
                .iter()
                .find(|s| s.order_id() == order.order_id)
                .and_then(|s| s.order.as_ref().ok())
                .is_some_and(|o| o.items.iter().any(|l| l.sku == SOLD_OUT));
            assert_eq!(
                order.outcome == OrderOutcome::Rejected,
                wants_sold_out,
                "{}",
                order.order_id
            );
        }
    }
}
