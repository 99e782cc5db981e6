//! The chaos run's load: generated orders of every kind the pipeline knows (completed,
//! declined, out of stock, poison, oversized), the stock that makes each one's outcome
//! certain whatever order they arrive in, and the sending plan with its duplicates.
//!
//! **Oversized orders** are padded with line items to a size near the carriers' limits
//! ([`Carrier::max_bytes`]), drawn anew for each one, so that every run probes a different
//! point of each band:
//!
//! - *carried* ones, between three quarters of an SNS message and the most every carrier on
//!   their way holds ([`CARRIED_MAX_BYTES`]): published to the orders topic, they must go
//!   through the whole pipeline exactly once;
//! - *refused* ones, from an outbox item's 400 KB ([`REFUSED_MIN_BYTES`]) to nearly an SQS
//!   message's 1 MB ([`REFUSED_MAX_BYTES`]): their StockReserved, which carries the whole
//!   order, cannot be staged. The orders topic (SNS, 256 KB) cannot carry them, so they are
//!   delivered the way its subscriptions would, raw, straight to the queues the topic
//!   delivers OrderPlaced to (SQS carries 1 MB): inventory must refuse the StockReserved
//!   when it stages it, dead-letter the record with a reason naming the size, and leave
//!   nothing behind (no stock reserved, nothing in the outbox, nothing published).
//!
//! Each padding line is a SKU of the run's own: inventory merges an order's lines per SKU,
//! so thousands of lines still make a transaction of a few items (DynamoDB takes 100).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use eventkit::events::{Carrier, EventEnvelope};
use orders::{LineItem, Order, OrderPlaced, SOURCE};
use serde_json::{json, Map, Value};

use crate::demo::samples::{order_of, Sample};

/// SKUs the orders draw from; each is stocked for every order that wants it.
const SKUS: usize = 10;
/// A SKU that is never in stock: a line on it makes an order out of stock.
pub const SOLD_OUT: &str = "CHAOS-SOLD-OUT";

/// The largest Detail LocalStack's EventBridge takes (4.13.1 refuses a PutEvents entry whose
/// Detail has 262,144 characters or more; AWS takes entries of up to 1 MB since January
/// 2026). Every event of a carried order crosses the bus, so locally this caps them.
pub const LOCALSTACK_BUS_DETAIL_MAX: usize = 262_143;

/// What the events an order causes (StockReserved, PaymentCompleted, PaymentFailed, each
/// carrying the whole order) take beyond its OrderPlaced, at most: a causation id, the
/// `order` wrapper, a payment id or a reason. The tests check it for the largest order.
pub const DOWNSTREAM_GROWTH_BYTES: usize = 2048;

/// What SNS counts of the `eventType` message attribute OrderPlaced is published with
/// (name, type and value), rounded up.
const TOPIC_ATTRIBUTE_BYTES: usize = 64;

/// The largest carried order (its OrderPlaced as published): what the orders topic holds
/// (SNS, 256 KB, the attribute included), and less what its later events grow by than what
/// the bus holds locally ([`LOCALSTACK_BUS_DETAIL_MAX`]; on AWS the bus takes 1 MB, and
/// the topic is the bound).
pub const CARRIED_MAX_BYTES: usize = min(
    Carrier::Sns.max_bytes() - TOPIC_ATTRIBUTE_BYTES,
    LOCALSTACK_BUS_DETAIL_MAX - DOWNSTREAM_GROWTH_BYTES,
);

/// The smallest carried order: three quarters of an SNS message, near the limits.
pub const CARRIED_MIN_BYTES: usize = Carrier::Sns.max_bytes() * 3 / 4;

/// The smallest refused order: an OrderPlaced as large as an outbox item holds, so its
/// StockReserved (the same order in an envelope, in an item with more attributes) is larger.
pub const REFUSED_MIN_BYTES: usize = Carrier::DynamoDbItem.max_bytes();

/// The largest refused order: an SQS message (1 MB), less room for its `eventType` attribute.
pub const REFUSED_MAX_BYTES: usize = Carrier::Sqs.max_bytes() - 1024;

const fn min(a: usize, b: usize) -> usize {
    if a < b {
        a
    } else {
        b
    }
}

/// What an oversized order is padded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Oversize {
    /// Within what every carrier on its way holds: carried through the whole pipeline.
    Carried,
    /// Too large for its StockReserved to be staged: refused by inventory when staging.
    Refused,
}

impl Oversize {
    /// The band of sizes (bytes of the OrderPlaced as sent) its orders are drawn from.
    pub fn band(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Self::Carried => CARRIED_MIN_BYTES..=CARRIED_MAX_BYTES,
            Self::Refused => REFUSED_MIN_BYTES..=REFUSED_MAX_BYTES,
        }
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Carried => "carried whole",
            Self::Refused => "refused at staging",
        }
    }
}

/// An oversized order of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oversized {
    /// What it is padded for.
    pub kind: Oversize,
    /// Its OrderPlaced's size as sent, in bytes.
    pub bytes: usize,
}

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
    /// The oversized orders, by order id.
    pub oversized: BTreeMap<String, Oversized>,
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

    /// Whether the order at `index` goes straight to the topic's queues (a refused oversized
    /// order, larger than the topic carries) rather than to the topic.
    pub fn bypasses_topic(&self, index: usize) -> bool {
        self.orders.get(index).is_some_and(|sample| {
            self.oversized
                .get(&sample.order_id())
                .is_some_and(|oversized| oversized.kind == Oversize::Refused)
        })
    }
}

/// `count` orders: about 10% declined (amount ending in 13 cents), 5% out of stock, one in
/// 200 poison (at least three), `oversized_share` oversized (at least one carried and one
/// refused if it is not zero; never out of stock), the rest completed; `duplicate_share` of
/// them sent 2 to 5 times.
pub fn generate(
    count: usize,
    duplicate_share: f64,
    oversized_share: f64,
    rng: &mut fastrand::Rng,
) -> Result<Load> {
    // A few poison: one in 200, and at least three in a small run (both kinds are there).
    let poison_every = 200.min((count / 3).max(1));
    let is_poison = |n: usize| n % poison_every == poison_every / 2;
    let oversize = pick_oversized(count, oversized_share, is_poison, rng);
    let mut poisons = 0;
    let mut orders = Vec::with_capacity(count);
    let mut oversized = BTreeMap::new();
    let mut demand = [0u64; SKUS];
    for n in 0..count {
        let order_id = format!("chaos-{n:06}");
        // The first poison comes early, so even a small run has one.
        let sample = if is_poison(n) {
            poisons += 1;
            poison(&order_id, poisons)?
        } else {
            let kind = oversize.get(&n).copied();
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
            // An oversized order is never out of stock: it is there to be carried or refused
            // for its size.
            if roll < 0.05 && kind.is_none() {
                items.push(LineItem {
                    sku: SOLD_OUT.into(),
                    quantity: 1,
                });
            } else if roll < 0.15 {
                amount_cents = amount_cents / 100 * 100 + 13;
            }
            let sample = match kind {
                None => sample(order_id, items, amount_cents)?,
                Some(kind) => {
                    let band = kind.band();
                    let target = rng.usize(band.clone());
                    let padded = padded(order_id, items, amount_cents, target, rng)?;
                    let bytes = padded.text.len();
                    anyhow::ensure!(
                        band.contains(&bytes),
                        "order {} padded to {bytes} bytes, outside {band:?}",
                        padded.file
                    );
                    oversized.insert(padded.order_id(), Oversized { kind, bytes });
                    padded
                }
            };
            if let Ok(order) = &sample.order {
                if !order.items.iter().any(|line| line.sku == SOLD_OUT) {
                    for line in &order.items {
                        if let Some(index) = sku_index(&line.sku) {
                            demand[index] += u64::from(line.quantity);
                        }
                    }
                }
            }
            sample
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
        oversized,
    })
}

/// Which of `count` orders are oversized, and for what: `share` of them (at least two if it
/// is not zero, and as many as there are orders that are not poison at most), the first
/// carried, the next refused, and so on, at random places.
fn pick_oversized(
    count: usize,
    share: f64,
    is_poison: impl Fn(usize) -> bool,
    rng: &mut fastrand::Rng,
) -> BTreeMap<usize, Oversize> {
    if share <= 0.0 {
        return BTreeMap::new();
    }
    let mut candidates: Vec<usize> = (0..count).filter(|n| !is_poison(*n)).collect();
    let wanted = ((count as f64 * share).round() as usize)
        .max(2)
        .min(candidates.len());
    rng.shuffle(&mut candidates);
    candidates
        .into_iter()
        .take(wanted)
        .enumerate()
        .map(|(nth, n)| {
            let kind = if nth % 2 == 0 {
                Oversize::Carried
            } else {
                Oversize::Refused
            };
            (n, kind)
        })
        .collect()
}

/// An order of `items` padded with more lines (of the run's SKUs, 1 to 3 each) until its
/// OrderPlaced, as sent, takes as close to `target` bytes as a line allows, and not more.
fn padded(
    order_id: String,
    items: Vec<LineItem>,
    amount_cents: u64,
    target: usize,
    rng: &mut fastrand::Rng,
) -> Result<Sample> {
    // One envelope, measured and then padded: a second one would have another time, whose
    // text can differ in length.
    let mut envelope = placed(&order_id, items, amount_cents);
    let unpadded = serde_json::to_string(&envelope)?.len();
    anyhow::ensure!(
        unpadded <= target,
        "order {order_id} takes {unpadded} bytes before padding, more than {target}"
    );
    // Each line adds its JSON and a comma, exactly: the serializer writes them compactly.
    let mut bytes = unpadded;
    loop {
        let line = LineItem {
            sku: format!("CHAOS-{}", rng.usize(0..SKUS)),
            quantity: rng.u32(1..=3),
        };
        let adds = serde_json::to_string(&line)
            .context("a line item serializes")?
            .len()
            + 1;
        if bytes + adds > target {
            break;
        }
        bytes += adds;
        envelope.data.items.push(line);
    }
    let padded = to_sample(order_id, serde_json::to_value(&envelope)?)?;
    anyhow::ensure!(
        padded.text.len() == bytes,
        "padding miscounted: {} bytes, {bytes} predicted",
        padded.text.len()
    );
    Ok(padded)
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
    let envelope = placed(&order_id, items, amount_cents);
    to_sample(order_id, serde_json::to_value(&envelope)?)
}

fn placed(order_id: &str, items: Vec<LineItem>, amount_cents: u64) -> EventEnvelope<OrderPlaced> {
    let order = Order {
        order_id: order_id.to_string(),
        customer_id: format!("cus-{}", &order_id[order_id.len().saturating_sub(3)..]),
        customer_email: "chaos@example.com".into(),
        items,
        amount_cents,
        currency: "EUR".into(),
    };
    EventEnvelope::new(SOURCE, OrderPlaced::from(order))
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
        let load = generate(1000, 0.3, 0.0, &mut fastrand::Rng::with_seed(7)).unwrap();
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
        assert!(load.oversized.is_empty());
        // Each duplicated order is sent 2 to 5 times.
        assert!(load.messages() >= 1000 + load.duplicated);
        assert!(load.messages() <= 1000 + 4 * load.duplicated);
    }

    #[test]
    fn stock_covers_every_order_that_is_not_meant_to_be_out_of_stock() {
        let load = generate(300, 0.0, 0.0, &mut fastrand::Rng::with_seed(3)).unwrap();
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

    #[test]
    fn oversized_orders_are_padded_within_their_band_and_expected_carried_or_refused() {
        // Few orders: each oversized one is up to a megabyte of JSON, slow in a debug build.
        for seed in 0..2 {
            let load = generate(100, 0.3, 0.04, &mut fastrand::Rng::with_seed(seed)).unwrap();
            let expected = derive(&load.orders, &load.seed);
            assert_eq!(load.oversized.len(), 4, "seed {seed}");
            let of_kind = |kind| load.oversized.values().filter(|o| o.kind == kind).count();
            assert_eq!(of_kind(Oversize::Carried), 2);
            assert_eq!(of_kind(Oversize::Refused), 2);
            for (index, sample) in load.orders.iter().enumerate() {
                let order_id = sample.order_id();
                let outcome = expected
                    .orders
                    .iter()
                    .find(|o| o.order_id == order_id)
                    .unwrap()
                    .outcome;
                let Some(oversized) = load.oversized.get(&order_id) else {
                    assert!(sample.text.len() < CARRIED_MIN_BYTES, "{order_id}");
                    assert_ne!(outcome, OrderOutcome::TooLarge, "{order_id}");
                    assert!(!load.bypasses_topic(index));
                    continue;
                };
                assert_eq!(sample.text.len(), oversized.bytes);
                let band = oversized.kind.band();
                assert!(band.contains(&oversized.bytes), "{order_id}: {oversized:?}");
                // As close to the size drawn as a line allows: every band is reached.
                assert!(sample.order.as_ref().unwrap().items.len() > 1000);
                match oversized.kind {
                    Oversize::Carried => {
                        assert!(
                            matches!(outcome, OrderOutcome::Completed | OrderOutcome::Declined),
                            "{order_id}: {outcome:?}"
                        );
                        assert!(!load.bypasses_topic(index));
                    }
                    Oversize::Refused => {
                        assert_eq!(outcome, OrderOutcome::TooLarge, "{order_id}");
                        assert!(load.bypasses_topic(index));
                    }
                }
            }
            // Inventory dead-letters every poison order and the two refused ones.
            let poison = expected
                .orders
                .iter()
                .filter(|o| o.outcome == OrderOutcome::Poison)
                .count() as u64;
            assert_eq!(
                expected.dead_letters.get("InventoryFunction").copied(),
                Some(poison + 2)
            );
        }
    }

    #[test]
    fn a_small_load_still_has_one_oversized_order_of_each_kind() {
        let load = generate(60, 0.0, 0.002, &mut fastrand::Rng::with_seed(1)).unwrap();
        let kinds: Vec<Oversize> = load.oversized.values().map(|o| o.kind).collect();
        assert!(kinds.contains(&Oversize::Carried) && kinds.contains(&Oversize::Refused));
        assert_eq!(kinds.len(), 2);
        let none = generate(60, 0.0, 0.0, &mut fastrand::Rng::with_seed(1)).unwrap();
        assert!(none.oversized.is_empty());
    }

    #[test]
    fn padding_lands_within_one_line_of_the_target() {
        let mut rng = fastrand::Rng::with_seed(9);
        for target in [CARRIED_MIN_BYTES, 300_000, REFUSED_MAX_BYTES] {
            let line = LineItem {
                sku: "CHAOS-1".into(),
                quantity: 1,
            };
            let sample = padded("chaos-000001".into(), vec![line], 4200, target, &mut rng).unwrap();
            assert!(sample.text.len() <= target);
            assert!(target - sample.text.len() < 40, "{}", sample.text.len());
            // What was measured is what is sent, and it decodes as the order it pads.
            assert!(sample.order.is_ok());
        }
    }

    /// The largest carried order's later events fit every carrier they cross, LocalStack's
    /// bus included, and the smallest refused one's StockReserved cannot be staged.
    #[test]
    fn the_bands_sit_on_the_right_side_of_every_limit() {
        use eventkit::events::OutgoingEvent;
        use orders::{PaymentCompleted, PaymentFailed, StockReserved};

        let mut rng = fastrand::Rng::with_seed(5);
        let line = LineItem {
            sku: "CHAOS-1".into(),
            quantity: 1,
        };
        let largest = padded(
            "chaos-999999".into(),
            vec![line.clone()],
            4200,
            CARRIED_MAX_BYTES,
            &mut rng,
        )
        .unwrap();
        assert!(largest.text.len() + TOPIC_ATTRIBUTE_BYTES <= Carrier::Sns.max_bytes());
        let order = largest.order.clone().unwrap();
        let cause = &largest.envelope;
        // Longer than the payment provider's ids and reasons.
        let bodies = [
            OutgoingEvent::from_envelope(&EventEnvelope::caused_by(
                cause,
                SOURCE,
                StockReserved(order.clone()),
            )),
            OutgoingEvent::from_envelope(&EventEnvelope::caused_by(
                cause,
                SOURCE,
                PaymentCompleted {
                    order: order.clone(),
                    payment_id: "p".repeat(128),
                },
            )),
            OutgoingEvent::from_envelope(&EventEnvelope::caused_by(
                cause,
                SOURCE,
                PaymentFailed {
                    order,
                    reason: "r".repeat(512),
                },
            )),
        ];
        for event in bodies {
            let event = event.unwrap();
            assert!(
                event.body.len() <= LOCALSTACK_BUS_DETAIL_MAX,
                "{}: {} bytes",
                event.event_type,
                event.body.len()
            );
            assert!(event.body.len() <= largest.text.len() + DOWNSTREAM_GROWTH_BYTES);
            assert_eq!(Carrier::EventBridge.admit(&event), Ok(()));
        }

        let smallest = padded(
            "chaos-000000".into(),
            vec![line],
            4200,
            REFUSED_MIN_BYTES,
            &mut rng,
        )
        .unwrap();
        let load = Load {
            orders: vec![smallest],
            // Stock enough of every SKU the padding draws from.
            seed: (0..SKUS)
                .map(|index| stock(&format!("CHAOS-{index}"), 1_000_000))
                .collect(),
            sends: vec![0],
            duplicated: 0,
            oversized: BTreeMap::new(),
        };
        let expected = derive(&load.orders, &load.seed);
        assert_eq!(expected.orders[0].outcome, OrderOutcome::TooLarge);
        assert_eq!(expected.reservations.len(), 0);
        assert_eq!(expected.counted.get("StockReserved"), None);
    }
}
