//! The chaos run's verdict: the invariants of the order pipeline, read from its tables and
//! queues once it settled, each as effects expected, lost and doubled.
//!
//! - stock is conserved: for every SKU, initial = remaining + reserved by the orders that
//!   keep a reservation, and the reservations are exactly the completed orders;
//! - exactly one charge per paid order (the payment provider's ledger), none for the others;
//! - exactly one email per (order, kind);
//! - analytics counted each distinct event once;
//! - every poison message is in its dead-letter queue, with its reason; nothing else is;
//! - an oversized order is carried whole (its StockReserved staged once and published) or,
//!   too large for that, refused at staging: dead-lettered with a reason naming the size,
//!   nothing of it reserved or staged;
//! - nothing is left in flight: no claim in progress (but a poison event's, which only waits
//!   for its window), no outbox event unpublished.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use eventkit::idempotency::key::idempotency_key;

use super::load::{Oversize, Oversized};
use crate::demo::expectations::{Expected, OrderOutcome};
use crate::demo::observed::{self, Observed};
use crate::demo::samples::Sample;
use crate::demo::summary::{dead_letter_envelope, envelope_order_id, why, NO_REASON, TOO_LARGE};
use crate::local_lambda::LocalPipeline;

/// One invariant's count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// What is checked.
    pub name: &'static str,
    /// Effects that must be there.
    pub expected: u64,
    /// Expected effects missing.
    pub lost: u64,
    /// Effects there more than once, or that must not be there at all.
    pub doubled: u64,
    /// Not lost, but worth a look: dead letters whose effect had already happened
    /// (`dlq redrive` leaves them; forced, they replay while their record lives).
    pub flagged: u64,
    /// The first few differences, for people.
    pub details: Vec<String>,
}

impl Check {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    fn lose(&mut self, count: u64, detail: impl FnOnce() -> String) {
        if count > 0 {
            self.lost += count;
            self.note(detail());
        }
    }

    fn double(&mut self, count: u64, detail: impl FnOnce() -> String) {
        if count > 0 {
            self.doubled += count;
            self.note(detail());
        }
    }

    fn flag(&mut self, detail: impl FnOnce() -> String) {
        self.flagged += 1;
        self.note(detail());
    }

    fn note(&mut self, detail: String) {
        if self.details.len() < 5 {
            self.details.push(detail);
        }
    }

    /// Whether it holds.
    pub fn holds(&self) -> bool {
        self.lost == 0 && self.doubled == 0
    }
}

/// Reads the settled pipeline and checks every invariant; `oversized` are the load's
/// oversized orders (the check of their outcome is there only if some are).
pub async fn check(
    pipeline: &LocalPipeline,
    orders: &[Sample],
    copies: &BTreeMap<String, u64>,
    seed: &BTreeMap<String, u64>,
    expected: &Expected,
    oversized: &BTreeMap<String, Oversized>,
) -> Result<Vec<Check>> {
    let observed = observed::observe(pipeline).await?;
    let claims = observed::scan(pipeline, pipeline.stack().table("IdempotencyTable")?).await?;
    let completed: BTreeSet<String> = claims
        .iter()
        .filter(|item| observed::string(item, "status") == "COMPLETED")
        .map(|item| observed::string(item, "id"))
        .collect();
    let mut checks = vec![
        stock(orders, seed, expected, &observed),
        emails(expected, &observed),
        counted(expected, &observed),
        dead_letters(pipeline, orders, copies, &completed, expected, &observed),
    ];
    if let Ok(ledger) = pipeline.stack().table("PaymentsLedgerTable") {
        let ledger = observed::scan(pipeline, ledger).await?;
        checks.insert(1, charges(expected, &ledger));
    }
    // The outbox: the events inventory and payments committed on their records.
    let committed: Vec<observed::CommittedEvent> =
        claims.iter().flat_map(observed::committed_events).collect();
    if !oversized.is_empty() {
        let reasons = dead_letter_reasons(&observed);
        checks.push(oversized_orders(
            oversized, expected, &observed, &committed, &reasons,
        ));
    }
    // The idempotency keys a poison order's event can have, under any function's name.
    let poison: BTreeSet<String> = expected
        .orders
        .iter()
        .filter(|order| order.outcome.is_dead_lettered())
        .filter_map(|order| {
            orders
                .iter()
                .find(|sample| sample.order_id() == order.order_id)
        })
        .flat_map(|sample| {
            let event_id = serde_json::Value::String(sample.envelope.event_id.clone());
            claims
                .iter()
                .filter_map(|item| {
                    let id = observed::string(item, "id");
                    id.split_once('#').map(|(name, _)| name.to_string())
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(move |name| idempotency_key(&name, &event_id))
        })
        .collect();
    checks.push(in_flight(&claims, &committed, &poison));
    Ok(checks)
}

fn stock(
    orders: &[Sample],
    seed: &BTreeMap<String, u64>,
    expected: &Expected,
    observed: &Observed,
) -> Check {
    let mut check = Check::new("stock conserved");
    let lines: BTreeMap<String, &orders::Order> = orders
        .iter()
        .filter_map(|sample| Some((sample.order_id(), sample.order.as_ref().ok()?)))
        .collect();
    let mut reserved: BTreeMap<&str, u64> = BTreeMap::new();
    for order_id in &observed.reservations {
        for line in lines
            .get(order_id)
            .map(|o| o.items.as_slice())
            .unwrap_or(&[])
        {
            *reserved.entry(line.sku.as_str()).or_default() += u64::from(line.quantity);
        }
    }
    for (sku, initial) in seed {
        let remaining = observed.stock.get(sku).copied().unwrap_or(0);
        let accounted = remaining + reserved.get(sku.as_str()).copied().unwrap_or(0);
        check.expected += initial;
        // Fewer units than the start: some were taken twice; more: some came back twice.
        check.double(initial.saturating_sub(accounted), || {
            format!("{sku}: {initial} at the start, {remaining} left + reserved = {accounted}")
        });
        check.lose(accounted.saturating_sub(*initial), || {
            format!("{sku}: {initial} at the start, {remaining} left + reserved = {accounted}")
        });
    }
    for order_id in expected.reservations.difference(&observed.reservations) {
        check.lose(1, || {
            format!("completed order {order_id} has no reservation")
        });
    }
    for order_id in observed.reservations.difference(&expected.reservations) {
        check.double(1, || {
            format!("order {order_id} keeps a reservation it must not")
        });
    }
    check
}

fn charges(expected: &Expected, ledger: &[observed::Item]) -> Check {
    let mut check = Check::new("one charge per paid order");
    let mut charged: BTreeMap<String, u64> = BTreeMap::new();
    for item in ledger {
        if observed::string(item, "outcome") == "approved" {
            *charged
                .entry(observed::string(item, "orderId"))
                .or_default() += 1;
        }
    }
    let paid: BTreeSet<&str> = expected
        .orders
        .iter()
        .filter(|order| order.outcome == OrderOutcome::Completed)
        .map(|order| order.order_id.as_str())
        .collect();
    check.expected = paid.len() as u64;
    for order_id in &paid {
        let times = charged.get(*order_id).copied().unwrap_or(0);
        check.lose(u64::from(times == 0), || {
            format!("{order_id} never charged")
        });
        check.double(times.saturating_sub(1), || {
            format!("{order_id} charged {times} times")
        });
    }
    for (order_id, times) in &charged {
        if !paid.contains(order_id.as_str()) {
            check.double(*times, || {
                format!("{order_id} charged but not a paid order")
            });
        }
    }
    check
}

fn emails(expected: &Expected, observed: &Observed) -> Check {
    let mut check = Check::new("one email per order and kind");
    check.expected = expected.emails.len() as u64;
    for key in &expected.emails {
        let sent = observed.emails.get(key).copied().unwrap_or(0);
        check.lose(u64::from(sent == 0), || {
            format!("no {} for {}", key.1, key.0)
        });
        check.double(sent.saturating_sub(1), || {
            format!("{} for {} sent {sent} times", key.1, key.0)
        });
    }
    for (key, sent) in &observed.emails {
        if !expected.emails.contains(key) {
            check.double(*sent, || format!("unexpected {} for {}", key.1, key.0));
        }
    }
    check
}

fn counted(expected: &Expected, observed: &Observed) -> Check {
    let mut check = Check::new("analytics counts each event once");
    let types: BTreeSet<&String> = expected
        .counted
        .keys()
        .chain(observed.counted.keys())
        .collect();
    for event_type in types {
        let want = expected.counted.get(event_type).copied().unwrap_or(0);
        let got = observed.counted.get(event_type).copied().unwrap_or(0);
        check.expected += want;
        check.lose(want.saturating_sub(got), || {
            format!("{event_type}: counted {got}, expected {want}")
        });
        check.double(got.saturating_sub(want), || {
            format!("{event_type}: counted {got}, expected {want}")
        });
    }
    check
}

/// Every copy of a poison message in its dead-letter queues (inventory's, and
/// notifications' for data no consumer decodes), each with a reason; nothing else in any of
/// them. A poison never completes, so its duplicates are not absorbed: each copy sent is a
/// message of its own, dead-lettered on its own.
fn dead_letters(
    pipeline: &LocalPipeline,
    orders: &[Sample],
    copies: &BTreeMap<String, u64>,
    completed: &BTreeSet<String>,
    expected: &Expected,
    observed: &Observed,
) -> Check {
    // Which function each dead-letter queue is for, and the name its idempotency keys
    // start with (`InventoryFunction` → `inventory`, as functions/orders/src/wiring.rs).
    let stack = pipeline.stack();
    let owner: BTreeMap<String, String> = stack
        .functions
        .keys()
        .flat_map(|function| {
            let prefix = function.trim_end_matches("Function").to_lowercase();
            stack
                .function_dead_letter_queues(function)
                .into_iter()
                .map(move |queue| (queue, prefix.clone()))
        })
        .collect();
    let mut check = Check::new("poison dead-lettered, nothing else");
    let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
    for order in expected
        .orders
        .iter()
        .filter(|order| order.outcome.is_dead_lettered())
    {
        // Undecodable data fails notifications too; an order with no orderable line, or
        // too large to be staged, only inventory.
        let undecodable = orders
            .iter()
            .find(|sample| sample.order_id() == order.order_id)
            .is_some_and(|sample| sample.order.is_err());
        let functions = if undecodable { 2 } else { 1 };
        let sent = copies.get(&order.order_id).copied().unwrap_or(1);
        wanted.insert(order.order_id.clone(), functions * sent);
    }
    check.expected = wanted.values().sum();
    let mut held: BTreeMap<String, u64> = BTreeMap::new();
    for (queue, messages) in &observed.dead_letters {
        for message in messages {
            if crate::local_lambda::dead_letters::is_stream_failure(message) {
                // The relay's on-failure record: shard and sequence numbers of a stream batch
                // given up on (a bus down past the stream's retries), no event. The events
                // are still in the outbox, for the sweeper: "nothing left in flight" counts
                // any of them left unpublished.
                check.flag(|| format!("{queue} holds a stream batch the relay gave up on"));
                continue;
            }
            let envelope = dead_letter_envelope(message).unwrap_or_default();
            let order_id = envelope_order_id(&envelope).to_string();
            let done = owner.get(queue).is_some_and(|prefix| {
                completed.contains(&idempotency_key(prefix, &envelope["eventId"]))
            });
            if wanted.contains_key(&order_id) {
                if why(pipeline, observed, message) == NO_REASON {
                    check.lose(1, || format!("{queue}: {order_id} has no reason"));
                }
                *held.entry(order_id).or_default() += 1;
            } else if done {
                // Given up on after its effect happened (its record is COMPLETED): a
                // delivery that kept failing after the work was done. Nothing is lost.
                check.flag(|| format!("{queue} holds {order_id:?}, already done"));
            } else {
                // A valid event given up on: its effects are lost (and counted there too).
                // Its last error says which fault it could not get past.
                check.lose(1, || {
                    let reason = why(pipeline, observed, message);
                    format!("{queue} holds {order_id:?}, which is not poison: {reason}")
                });
            }
        }
    }
    for (order_id, want) in &wanted {
        let got = held.get(order_id).copied().unwrap_or(0);
        check.lose(want.saturating_sub(got), || {
            format!("{order_id}: {got} of {want} copies dead-lettered")
        });
        check.double(got.saturating_sub(*want), || {
            format!("{order_id}: {got} dead-lettered, {want} sent")
        });
    }
    check
}

/// Why each order's dead-lettered messages failed, by order id: the reason of every failure
/// of theirs the functions logged, not only the last one's (a copy's last receive can fail
/// on an injected fault before it gets as far as its first did), and Lambda's
/// `ErrorMessage` where there is one.
fn dead_letter_reasons(observed: &Observed) -> BTreeMap<String, Vec<String>> {
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in observed.dead_letters.values().flatten() {
        let envelope = dead_letter_envelope(message).unwrap_or_default();
        let order_id = envelope_order_id(&envelope).to_string();
        if let Some(error) = message
            .message_attributes()
            .and_then(|attributes| attributes.get("ErrorMessage"))
            .and_then(|value| value.string_value())
        {
            reasons
                .entry(order_id.clone())
                .or_default()
                .push(error.to_string());
        }
        if let Some(id) = message.message_id() {
            ids.insert(id, order_id);
        }
    }
    for line in observed.logs.values().flatten() {
        if line.message() != "record failed" {
            continue;
        }
        let order_id = line.field("record_id").and_then(|id| ids.get(id));
        if let (Some(order_id), Some(reason)) = (order_id, line.field("reason")) {
            reasons
                .entry(order_id.clone())
                .or_default()
                .push(reason.to_string());
        }
    }
    reasons
}

/// Each oversized order ended as its size says. A carried one's StockReserved was staged
/// exactly once and published (its later effects are counted by the other invariants); a
/// refused one was dead-lettered, a failure of its naming the size, and nothing of it was reserved or put
/// in the outbox: a partial effect counts as doubled.
fn oversized_orders(
    oversized: &BTreeMap<String, Oversized>,
    expected: &Expected,
    observed: &Observed,
    committed: &[observed::CommittedEvent],
    reasons: &BTreeMap<String, Vec<String>>,
) -> Check {
    let mut check = Check::new("oversized carried whole or refused at staging");
    // Committed events per order: (event type, published).
    let mut staged: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for event in committed {
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap_or_default();
        staged
            .entry(envelope_order_id(&body).to_string())
            .or_default()
            .push((event.event_type.clone(), event.published));
    }
    let outcome = |order_id: &str| {
        expected
            .orders
            .iter()
            .find(|order| order.order_id == order_id)
            .map(|order| order.outcome)
    };
    for (order_id, order) in oversized {
        check.expected += 1;
        let items = staged.get(order_id).map(Vec::as_slice).unwrap_or_default();
        let size = order.bytes;
        match order.kind {
            Oversize::Carried => {
                if matches!(
                    outcome(order_id),
                    Some(OrderOutcome::TooLarge | OrderOutcome::Poison)
                ) {
                    check.lose(1, || {
                        format!("{order_id} ({size} bytes) is expected refused, not carried")
                    });
                    continue;
                }
                let reserved: Vec<bool> = items
                    .iter()
                    .filter(|(event_type, _)| event_type == "StockReserved")
                    .map(|(_, published)| *published)
                    .collect();
                check.lose(u64::from(!reserved.contains(&true)), || {
                    format!("{order_id} ({size} bytes): no StockReserved staged and published")
                });
                check.double(reserved.len().saturating_sub(1) as u64, || {
                    format!(
                        "{order_id} ({size} bytes): {} StockReserved staged",
                        reserved.len()
                    )
                });
            }
            Oversize::Refused => {
                if outcome(order_id) != Some(OrderOutcome::TooLarge) {
                    check.lose(1, || {
                        format!("{order_id} ({size} bytes) is not expected refused at staging")
                    });
                    continue;
                }
                let named = reasons
                    .get(order_id)
                    .is_some_and(|reasons| reasons.iter().any(|r| r.contains(TOO_LARGE)));
                check.lose(u64::from(!named), || {
                    format!(
                        "{order_id} ({size} bytes): no dead letter names its size: {:?}",
                        reasons.get(order_id)
                    )
                });
                check.double(items.len() as u64, || {
                    format!("{order_id} ({size} bytes) refused, yet staged {items:?}")
                });
                check.double(u64::from(observed.reservations.contains(order_id)), || {
                    format!("{order_id} ({size} bytes) refused, yet stock is reserved")
                });
            }
        }
    }
    check
}

/// Claims left in progress and outbox events never published: work that would be lost if
/// nothing came back for it. A claim of a poison order's event (`poison`) is flagged
/// instead: its record fails for good and ends in its dead-letter queue (the poison check
/// counts it there), and a claim its last delivery could not release (the process was
/// killed in the handler, or the release failed or was fenced) only waits for its window.
fn in_flight(
    claims: &[observed::Item],
    committed: &[observed::CommittedEvent],
    poison: &BTreeSet<String>,
) -> Check {
    let mut check = Check::new("nothing left in flight");
    for item in claims {
        if observed::string(item, "status") != "COMPLETED" {
            let id = observed::string(item, "id");
            if poison.contains(&id) {
                check.flag(|| format!("claim {id} of a dead-lettered poison event left to expire"));
            } else {
                check.lose(1, || format!("claim {id} left in progress"));
            }
        }
    }
    for event in committed.iter().filter(|event| !event.published) {
        check.lose(1, || {
            format!(
                "{} committed on {} never published",
                event.event_type, event.item
            )
        });
    }
    check
}
