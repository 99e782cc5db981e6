//! Copies that come back late: "the message comes back in two weeks". Once the run has
//! settled and its invariants held, time is moved on by `days` for the one thing that
//! forgets, the idempotency records: each record's expiry (and in-progress window) is moved
//! back by that much, as DynamoDB and the idempotency layer would read it `days` later.
//! Then the copies come back by every way the template leaves open:
//!
//! - **a redrive of the dead-letter queues**, forced (`dlq redrive --include-completed`):
//!   every dead letter whose effect completed goes back where it failed. These are the
//!   copies a redrive can double; a poison message (its record never completes) would only
//!   fail again, so it is left where it is (the run has already shown where it ends).
//! - **the orders sent again**: a share of the (non-poison) orders published again at the
//!   entrance, as a producer retrying a day later or an archive replayed would;
//! - **the derived events published again**: a share of the outbox's published events made
//!   unpublished again, so the relay (from the table's stream) publishes each once more under
//!   its staged id, as an EventBridge archive replay would.
//!
//! Nothing of it may have an effect: the run settles again and reads its invariants again.
//! Then a control: the records aged past their retention and one order sent again must run
//! again (counted a second time), or the ageing did not do what it says.
//! The horizon is the template's (the longest a copy can take to come back, DLQ retention
//! included, `tests/tests/infra_checks/horizon.rs`); the default `days` reaches past the
//! DLQs' 14 days, inside the records' 30.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::Message;
use eventkit::idempotency::AttributeNames;

use super::invariants::Check;
use crate::demo::observed;
use crate::demo::publish::Entrances;
use crate::local_lambda::dead_letters::{self, IdempotencyLookup};
use crate::local_lambda::LocalPipeline;

/// The late copies to send.
#[derive(Clone, Copy, Debug)]
pub struct LatePlan {
    /// How many days later they come back.
    pub days: f64,
    /// The share of the orders sent again, and of the derived events published again.
    pub share: f64,
}

/// What came back late.
#[derive(Clone, Debug, Default)]
pub struct Late {
    /// How many days later.
    pub days: f64,
    /// Idempotency records aged by that much.
    pub aged: u64,
    /// Dead letters whose effect completed, sent back where they failed.
    pub redriven: u64,
    /// Dead letters left where they are (poison: their records never completed).
    pub left_dead: u64,
    /// Orders sent again at the entrance, by order id.
    pub orders_resent: Vec<String>,
    /// Derived events published again.
    pub events_republished: u64,
}

impl Late {
    /// One line, for the progress display and the report.
    pub fn describe(&self) -> String {
        format!(
            "{} records aged {} days; {} completed dead letters redriven ({} poison left); \
             {} orders sent again; {} events published again",
            self.aged,
            self.days,
            self.redriven,
            self.left_dead,
            self.orders_resent.len(),
            self.events_republished
        )
    }
}

/// The late copies and what the pipeline made of them.
#[derive(Debug)]
pub struct Outcome {
    /// What was sent.
    pub brought: Late,
    /// Deliveries the consumers answered from a stored result meanwhile (each a copy
    /// absorbed).
    pub replayed: u64,
    /// Why the pipeline did not settle again, if it did not.
    pub unsettled: Option<String>,
    /// The invariants, read again.
    pub checks: Vec<Check>,
    /// The control, once the invariants were read: the records aged past their retention
    /// and one order sent again. `Some(true)`: it ran again (analytics counted it a second
    /// time), which shows that the records, not luck, absorbed the copies above.
    pub control_reran: Option<bool>,
}

impl Outcome {
    /// Whether the pipeline settled, every invariant still holds, and the control (when it
    /// ran) ran again.
    pub fn passed(&self) -> bool {
        self.unsettled.is_none()
            && self.checks.iter().all(Check::holds)
            && self.control_reran != Some(false)
    }
}

/// Deliveries answered from a stored result so far (the idempotency layer's `replayed`
/// log line), over every function's log.
pub fn replays(pipeline: &LocalPipeline) -> u64 {
    pipeline
        .hosts()
        .values()
        .map(|host| {
            std::fs::read_to_string(host.log().path())
                .map(|text| {
                    text.lines()
                        .filter(|line| line.contains(r#""outcome":"replayed""#))
                        .count() as u64
                })
                .unwrap_or(0)
        })
        .sum()
}

/// Ages the records, then sends the late copies (see the module docs).
pub async fn bring_back(
    pipeline: &LocalPipeline,
    entrances: &Entrances,
    orders: &[(String, String)],
    plan: LatePlan,
    rng: &mut fastrand::Rng,
) -> Result<Late> {
    let mut late = Late {
        days: plan.days,
        aged: age_records(pipeline, plan.days).await?,
        ..Late::default()
    };
    (late.redriven, late.left_dead) = redrive_completed(pipeline).await?;
    for (order_id, text) in orders {
        if rng.f64() < plan.share {
            crate::demo::publish::publish(pipeline.clients(), entrances, text)
                .await
                .with_context(|| format!("sending order {order_id} again"))?;
            late.orders_resent.push(order_id.clone());
        }
    }
    late.events_republished = republish(pipeline, plan.share, rng).await?;
    Ok(late)
}

/// Moves every idempotency record's expiry back by `days`: the record as it reads then.
pub async fn age_records(pipeline: &LocalPipeline, days: f64) -> Result<u64> {
    let table = pipeline.stack().table("IdempotencyTable")?;
    let names = AttributeNames::default();
    let seconds = (days * 86_400.0).round() as i64;
    let mut aged = 0;
    for item in observed::scan(pipeline, table).await? {
        let (Some(key), true) = (
            item.get(&names.key).cloned(),
            item.contains_key(&names.expiration),
        ) else {
            continue;
        };
        let mut update = pipeline
            .clients()
            .dynamodb
            .update_item()
            .table_name(table)
            .key(&names.key, key)
            .expression_attribute_names("#expiration", &names.expiration)
            .expression_attribute_values(":seconds", AttributeValue::N(seconds.to_string()));
        let mut expression = "SET #expiration = #expiration - :seconds".to_string();
        if item.contains_key(&names.in_progress_expiry) {
            expression.push_str(", #window = #window - :millis");
            update = update
                .expression_attribute_names("#window", &names.in_progress_expiry)
                .expression_attribute_values(
                    ":millis",
                    AttributeValue::N((seconds * 1000).to_string()),
                );
        }
        update
            .update_expression(expression)
            .send()
            .await
            .with_context(|| format!("ageing a record of {table}"))?;
        aged += 1;
    }
    Ok(aged)
}

/// Sends back every dead letter whose idempotency record is completed (their effect
/// happened); returns how many went back and how many were left.
async fn redrive_completed(pipeline: &LocalPipeline) -> Result<(u64, u64)> {
    let stack = pipeline.stack();
    let table = stack.table("IdempotencyTable")?.to_string();
    let dynamodb = &pipeline.clients().dynamodb;
    let (mut redriven, mut left) = (0, 0);
    for (logical, queue, routes) in stack.dead_letter_routes() {
        // The record that says whether the effect happened is the failing function's: its
        // keys start with its name (`InventoryFunction` → `inventory`, as
        // functions/orders/src/wiring.rs names them). Another function's record of the same
        // event (analytics counts poison orders too) says nothing of this one.
        let owners: Vec<String> = stack
            .functions
            .keys()
            .filter(|function| {
                stack
                    .function_dead_letter_queues(function)
                    .contains(&logical)
            })
            .map(|function| function.trim_end_matches("Function").to_lowercase())
            .collect();
        let [owner] = owners.as_slice() else {
            // A queue shared by several functions' failures (or none): left alone.
            continue;
        };
        let lookup = IdempotencyLookup {
            table: table.clone(),
            key_path: "eventId".into(),
            prefix: Some(owner.clone()),
        };
        let messages = dead_letters::read_all(&pipeline.clients().sqs, &queue).await?;
        let mut completed = BTreeSet::new();
        for message in &messages {
            if dead_letters::key_state(dynamodb, &lookup, message)
                .await?
                .is_completed()
            {
                completed.insert(message_id(message));
            }
        }
        let outcome = dead_letters::redrive_chosen(
            &pipeline.clients().sqs,
            &queue,
            &routes,
            |message: &Message| {
                if completed.contains(&message_id(message)) {
                    Ok(())
                } else {
                    Err("its effect never completed".into())
                }
            },
        )
        .await
        .with_context(|| format!("redriving {logical}"))?;
        redriven += outcome.moved.len() as u64;
        left += outcome.left.len() as u64;
    }
    Ok((redriven, left))
}

fn message_id(message: &Message) -> String {
    message.message_id().unwrap_or_default().to_string()
}

/// Makes a share of the outbox's published events unpublished again (the records that
/// carry them, in the idempotency table): the stream hands each record to the relay, which
/// publishes its events once more under their staged ids.
async fn republish(pipeline: &LocalPipeline, share: f64, rng: &mut fastrand::Rng) -> Result<u64> {
    let Ok(table) = pipeline.stack().table("IdempotencyTable") else {
        return Ok(0);
    };
    let mut republished = 0;
    for item in observed::scan(pipeline, table).await? {
        let events = observed::committed_events(&item).len() as u64;
        if events == 0 || !item.contains_key("publishedAt") || rng.f64() >= share {
            continue;
        }
        let Some(key) = item.get(eventkit::outbox::OUTBOX_KEY).cloned() else {
            continue;
        };
        pipeline
            .clients()
            .dynamodb
            .update_item()
            .table_name(table)
            .key(eventkit::outbox::OUTBOX_KEY, key)
            // Back in the sweeper's index too (the item's `unpublished` attribute, its shard:
            // any of the sixteen is found), in case the stream's delivery fails.
            // A record keeps its expiration (the idempotency retention), unlike an outbox item.
            .update_expression("REMOVE publishedAt SET #unpublished = :shard")
            .expression_attribute_names("#unpublished", "unpublished")
            .expression_attribute_values(":shard", AttributeValue::S("0".into()))
            .send()
            .await
            .with_context(|| format!("making an event of {table} unpublished again"))?;
        republished += events;
    }
    Ok(republished)
}
