//! What the pipeline ended with, read back from the local cloud (tables, dead-letter queues)
//! and the functions' logs, and compared with what the samples say it must be.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::Message;

use super::expectations::{Expected, OrderOutcome};
use crate::local_lambda::logs::LogLine;
use crate::local_lambda::LocalPipeline;

/// A DynamoDB item.
pub type Item = std::collections::HashMap<String, AttributeValue>;

/// The pipeline's end state.
#[derive(Debug, Default)]
pub struct Observed {
    /// Available stock per SKU.
    pub stock: BTreeMap<String, u64>,
    /// Orders with a reservation item.
    pub reservations: BTreeSet<String>,
    /// Emails sent per (order id, kind).
    pub emails: BTreeMap<(String, String), u64>,
    /// Emails per correlation id, for journeys.
    pub emails_by_correlation: BTreeMap<String, Vec<String>>,
    /// The payment provider's ledger entries per order id: (outcome, requests made with the
    /// entry's idempotency key).
    pub charges: BTreeMap<String, Vec<(String, u64)>>,
    /// Events counted by analytics per type (all days).
    pub counted: BTreeMap<String, u64>,
    /// Messages per dead-letter queue (logical id).
    pub dead_letters: BTreeMap<String, Vec<Message>>,
    /// Each function's log lines (by logical id).
    pub logs: BTreeMap<String, Vec<Arc<LogLine>>>,
}

/// Reads the end state of `pipeline`.
pub async fn observe(pipeline: &LocalPipeline) -> Result<Observed> {
    let stack = pipeline.stack();
    let mut observed = Observed::default();
    for item in scan(pipeline, stack.table("InventoryTable")?).await? {
        let sku = string(&item, "sku");
        if let Some(order_id) = sku.strip_prefix("reservation#") {
            observed.reservations.insert(order_id.to_string());
        } else {
            observed.stock.insert(sku, number(&item, "available"));
        }
    }
    for item in scan(pipeline, stack.table("NotificationsTable")?).await? {
        let key = (string(&item, "orderId"), string(&item, "kind"));
        observed
            .emails_by_correlation
            .entry(string(&item, "correlationId"))
            .or_default()
            .push(key.1.clone());
        *observed.emails.entry(key).or_default() += 1;
    }
    for item in scan(pipeline, stack.table("PaymentsLedgerTable")?).await? {
        observed
            .charges
            .entry(string(&item, "orderId"))
            .or_default()
            .push((string(&item, "outcome"), number(&item, "requests")));
    }
    for item in scan(pipeline, stack.table("AnalyticsTable")?).await? {
        let key = string(&item, "pk");
        let event_type = key.split('#').next().unwrap_or_default().to_string();
        *observed.counted.entry(event_type).or_default() += number(&item, "count");
    }
    observed.dead_letters = pipeline.dead_letters().await?;
    for (logical, host) in pipeline.hosts() {
        observed.logs.insert(logical.clone(), host.log().lines());
    }
    Ok(observed)
}

/// Every way `observed` differs from `expected`; empty when the run went as it must.
pub fn differences(
    expected: &Expected,
    observed: &Observed,
    pipeline: &LocalPipeline,
) -> Vec<String> {
    let mut found = Vec::new();
    for (sku, available) in &expected.stock {
        let actual = observed.stock.get(sku).copied();
        if actual != Some(*available) {
            found.push(format!(
                "stock of {sku}: expected {available}, found {actual:?}"
            ));
        }
    }
    if observed.reservations != expected.reservations {
        found.push(format!(
            "reservations: expected {:?}, found {:?}",
            expected.reservations, observed.reservations
        ));
    }
    for key in &expected.emails {
        let sent = observed.emails.get(key).copied().unwrap_or(0);
        if sent != 1 {
            found.push(format!(
                "{} email for {}: sent {sent} times, expected once",
                key.1, key.0
            ));
        }
    }
    for key in observed
        .emails
        .keys()
        .filter(|key| !expected.emails.contains(key))
    {
        found.push(format!("unexpected {} email for {}", key.1, key.0));
    }
    found.extend(charge_differences(expected, observed));
    if observed.counted != expected.counted {
        found.push(format!(
            "analytics counted {:?}, expected {:?}",
            observed.counted, expected.counted
        ));
    }
    let stack = pipeline.stack();
    let mut accounted: BTreeSet<String> = BTreeSet::new();
    for function in stack.functions.keys() {
        let queues = stack.function_dead_letter_queues(function);
        let held: usize = queues
            .iter()
            .map(|queue| observed.dead_letters.get(queue).map_or(0, Vec::len))
            .sum();
        let wanted = expected.dead_letters.get(function).copied().unwrap_or(0);
        if u64::try_from(held).unwrap_or(u64::MAX) != wanted {
            found.push(format!(
                "{function}'s dead-letter queues ({}) hold {held} message(s), expected {wanted}",
                queues.join(", ")
            ));
        }
        accounted.extend(queues);
    }
    for (queue, messages) in &observed.dead_letters {
        if !accounted.contains(queue) && !messages.is_empty() {
            found.push(format!(
                "{queue} holds {} message(s), expected none",
                messages.len()
            ));
        }
    }
    found
}

/// Every order whose stock was reserved is charged exactly once (approved, or declined for
/// the declined ones), however many requests the provider saw; no other order is charged.
fn charge_differences(expected: &Expected, observed: &Observed) -> Vec<String> {
    let mut found = Vec::new();
    let mut charged_orders: BTreeSet<&str> = BTreeSet::new();
    for order in &expected.orders {
        let outcome = match order.outcome {
            OrderOutcome::Completed => "approved",
            OrderOutcome::Declined => "declined",
            OrderOutcome::Rejected | OrderOutcome::Poison | OrderOutcome::TooLarge => continue,
        };
        charged_orders.insert(&order.order_id);
        let charges = observed
            .charges
            .get(&order.order_id)
            .map_or(&[][..], Vec::as_slice);
        let outcomes: Vec<&str> = charges.iter().map(|(o, _)| o.as_str()).collect();
        if outcomes != [outcome] {
            found.push(format!(
                "order {}: charges {outcomes:?}, expected one {outcome}",
                order.order_id
            ));
        }
    }
    for order_id in observed.charges.keys() {
        if !charged_orders.contains(order_id.as_str()) {
            found.push(format!("order {order_id} was charged, expected no charge"));
        }
    }
    found
}

pub(crate) async fn scan(pipeline: &LocalPipeline, table: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = pipeline
            .clients()
            .dynamodb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .with_context(|| format!("scanning {table}"))?;
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

pub(crate) fn string(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn number(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One event committed to the outbox, as the pipeline's idempotency table holds it: on the
/// `outbox` list of the record whose completion committed it (or, in a table of outbox
/// items, an item of its own).
#[derive(Clone, Debug)]
pub(crate) struct CommittedEvent {
    /// The event's type.
    pub event_type: String,
    /// What is published (the envelope's JSON).
    pub body: String,
    /// The key of the item that carries it.
    pub item: String,
    /// Whether the relay (or the sweeper) marked it published.
    pub published: bool,
}

/// The events committed on `item`: each on a record's `outbox` list, or the item itself when
/// it is an outbox item; none for a claim or a completion without events.
pub(crate) fn committed_events(item: &Item) -> Vec<CommittedEvent> {
    let published = item.contains_key("publishedAt");
    let event = |entry: &Item| CommittedEvent {
        event_type: string(entry, "eventType"),
        body: string(entry, "body"),
        item: string(item, "id"),
        published,
    };
    match item.get("outbox").map(AttributeValue::as_l) {
        Some(Ok(list)) => list
            .iter()
            .filter_map(|entry| entry.as_m().ok())
            .map(event)
            .collect(),
        _ if item.contains_key("eventId") && item.contains_key("body") => vec![event(item)],
        _ => Vec::new(),
    }
}
