//! The demo's report: per function what it processed (from its EMF lines and its host's
//! counters), what each dead-letter queue holds and why (from the DLQ's attributes or the
//! log line that failed the record), and per order its journey by correlationId.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::Message;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde_json::Value;

use super::expectations::{Expected, OrderOutcome};
use super::observed::Observed;
use crate::local_lambda::logs::{LogLine, Stream};
use crate::local_lambda::LocalPipeline;

/// Sums of a function's EMF lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Records that succeeded (duplicates included).
    pub processed: u64,
    /// Records reported failed.
    pub failed: u64,
    /// Duplicates answered from the idempotency store.
    pub replayed: u64,
    /// Records failed because their key was in progress elsewhere.
    pub in_progress: u64,
}

/// The sums of the EMF lines among `lines`.
pub fn record_counts(lines: &[std::sync::Arc<LogLine>]) -> RecordCounts {
    let mut counts = RecordCounts::default();
    for emf in lines.iter().filter_map(|line| line.emf()) {
        let read = |name: &str| emf[name].as_u64().unwrap_or(0);
        counts.processed += read("RecordsProcessed");
        counts.failed += read("RecordsFailed");
        counts.replayed += read("RecordsReplayed");
        counts.in_progress += read("RecordsInProgress");
    }
    counts
}

/// Prints the report; returns the orders whose outcome differs from the expected one.
pub fn print(pipeline: &LocalPipeline, expected: &Expected, observed: &Observed) -> Vec<String> {
    println!("\nFunctions");
    println!("{}", functions_table(pipeline, observed));
    println!("\nDead-letter queues");
    println!("{}", dead_letters_table(pipeline, observed));
    println!("\nOrders, by correlationId");
    let (orders, mismatches) = orders_table(pipeline, expected, observed);
    println!("{orders}");
    mismatches
}

/// A table in the style of every report of the demo and the chaos run.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(118)
        .set_header(header.to_vec());
    table
}

fn short_name(pipeline: &LocalPipeline, logical: &str) -> String {
    pipeline
        .host(logical)
        .ok()
        .and_then(|host| {
            host.spec()
                .binary
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| logical.to_string())
}

fn functions_table(pipeline: &LocalPipeline, observed: &Observed) -> Table {
    let mut out = table(&[
        "function",
        "invocations",
        "records processed",
        "duplicates suppressed",
        "records failed",
        "crashes / timeouts",
        "dead-letter queues",
    ]);
    for (logical, host) in pipeline.hosts() {
        let counts = record_counts(observed.logs.get(logical).map_or(&[], Vec::as_slice));
        let host_counts = host.counts();
        let dlqs: Vec<String> = pipeline
            .stack()
            .function_dead_letter_queues(logical)
            .iter()
            .map(|queue| {
                let held = observed.dead_letters.get(queue).map_or(0, Vec::len);
                format!("{queue}: {held}")
            })
            .collect();
        out.add_row(vec![
            short_name(pipeline, logical),
            host_counts.invocations.to_string(),
            counts.processed.to_string(),
            counts.replayed.to_string(),
            counts.failed.to_string(),
            format!("{} / {}", host_counts.crashes, host_counts.timeouts),
            dlqs.join(", "),
        ]);
    }
    out
}

fn dead_letters_table(pipeline: &LocalPipeline, observed: &Observed) -> Table {
    let mut out = table(&["queue", "event", "why"]);
    for (queue, messages) in &observed.dead_letters {
        if messages.is_empty() {
            out.add_row(vec![queue.clone(), "(empty)".into(), String::new()]);
        }
        for message in messages {
            let envelope = dead_letter_envelope(message);
            let event = envelope.as_ref().map_or_else(
                || "(not an envelope)".to_string(),
                |e| {
                    format!(
                        "{} {} (correlationId {})",
                        e["eventType"].as_str().unwrap_or("?"),
                        envelope_order_id(e),
                        short(e["correlationId"].as_str().unwrap_or(""))
                    )
                },
            );
            out.add_row(vec![queue.clone(), event, why(pipeline, observed, message)]);
        }
    }
    out
}

/// The envelope a dead-lettered message carries: as the body (SQS redrive), inside the
/// SNS event (a function's DLQ gets the invocation's payload) or as an EventBridge detail.
pub fn dead_letter_envelope(message: &Message) -> Option<Value> {
    let body: Value = serde_json::from_str(message.body()?).ok()?;
    let envelope = if let Some(sns) = body["Records"][0]["Sns"]["Message"].as_str() {
        serde_json::from_str(sns).ok()?
    } else if body.get("detail").is_some() {
        body["detail"].clone()
    } else {
        body
    };
    envelope.get("eventId").is_some().then_some(envelope)
}

/// The order an event is about: `data.orderId`, or `data.order.orderId` for the events that
/// carry the order nested (PaymentCompleted, PaymentFailed). Empty if neither.
pub fn envelope_order_id(envelope: &Value) -> &str {
    let data = &envelope["data"];
    data["orderId"]
        .as_str()
        .or_else(|| data["order"]["orderId"].as_str())
        .unwrap_or_default()
}

/// What the toolkit's refusal of an event too large for its carrier says
/// (`eventkit::events::EventTooLarge`): a reason with it names the size.
pub(crate) const TOO_LARGE: &str = "which holds at most";

/// What [`why`] says of a message no log line or attribute explains.
pub(crate) const NO_REASON: &str = "no log line names this message";

/// Why the message was dead-lettered: Lambda's `ErrorMessage` attribute for a function DLQ,
/// else the log line that failed the record (its record id is the message id).
pub(crate) fn why(pipeline: &LocalPipeline, observed: &Observed, message: &Message) -> String {
    if let Some(error) = message
        .message_attributes()
        .and_then(|attributes| attributes.get("ErrorMessage"))
        .and_then(|value| value.string_value())
    {
        return format!("{error} (after every retry)");
    }
    let id = message.message_id().unwrap_or_default();
    let failure = observed.logs.iter().find_map(|(logical, lines)| {
        lines
            .iter()
            .rev()
            .find(|line| line.message() == "record failed" && line.field("record_id") == Some(id))
            .map(|line| (logical, line))
    });
    match failure {
        Some((logical, line)) => format!(
            "{} failure in {}: {}",
            line.field("class").unwrap_or("?"),
            short_name(pipeline, logical),
            line.field("reason").unwrap_or("?"),
        ),
        None => NO_REASON.to_string(),
    }
}

fn orders_table(
    pipeline: &LocalPipeline,
    expected: &Expected,
    observed: &Observed,
) -> (Table, Vec<String>) {
    let mut out = table(&[
        "order",
        "correlationId",
        "files",
        "outcome",
        "charge",
        "journey",
    ]);
    let mut mismatches = Vec::new();
    for order in &expected.orders {
        let steps = journey(pipeline, observed, &order.correlation_id);
        let outcome = observed_outcome(observed, &order.order_id, &order.correlation_id, &steps);
        let shown = match outcome {
            Some(outcome) if outcome == order.outcome => outcome.describe().to_string(),
            Some(outcome) => {
                mismatches.push(format!(
                    "order {} ended {}, expected {}",
                    order.order_id,
                    outcome.describe(),
                    order.outcome.describe()
                ));
                format!(
                    "{} (expected {})",
                    outcome.describe(),
                    order.outcome.describe()
                )
            }
            None => {
                mismatches.push(format!(
                    "order {} did not finish, expected {}",
                    order.order_id,
                    order.outcome.describe()
                ));
                format!("unfinished (expected {})", order.outcome.describe())
            }
        };
        out.add_row(vec![
            short(&order.order_id),
            short(&order.correlation_id),
            order.files.join("\n"),
            shown,
            charges(observed, &order.order_id),
            steps.join("\n"),
        ]);
    }
    (out, mismatches)
}

/// The provider's ledger for the order: each charge's outcome, and how many requests it
/// answered (more than one: a rerun was answered from the ledger, not charged again).
fn charges(observed: &Observed, order_id: &str) -> String {
    let Some(charges) = observed.charges.get(order_id) else {
        return "none".into();
    };
    charges
        .iter()
        .map(|(outcome, requests)| match requests {
            1 => outcome.clone(),
            n => format!("{outcome} ({n} requests)"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How the order ended, read from the tables, the dead-letter queues and the logs.
fn observed_outcome(
    observed: &Observed,
    order_id: &str,
    correlation_id: &str,
    steps: &[String],
) -> Option<OrderOutcome> {
    let dead_lettered = observed.dead_letters.values().flatten().any(|message| {
        dead_letter_envelope(message)
            .is_some_and(|envelope| envelope["correlationId"] == correlation_id)
    });
    let said = |text: &str| steps.iter().any(|step| step.contains(text));
    let receipt = observed
        .emails
        .contains_key(&(order_id.to_string(), "payment-receipt".to_string()));
    if dead_lettered && said(TOO_LARGE) {
        Some(OrderOutcome::TooLarge)
    } else if dead_lettered {
        Some(OrderOutcome::Poison)
    } else if receipt && observed.reservations.contains(order_id) {
        Some(OrderOutcome::Completed)
    } else if said("stock released") {
        Some(OrderOutcome::Declined)
    } else if said("not enough stock") {
        Some(OrderOutcome::Rejected)
    } else {
        None
    }
}

/// The order's steps through the functions, in time order, from every log line that
/// carries its correlation id (repeats folded into `×n`).
pub fn journey(pipeline: &LocalPipeline, observed: &Observed, correlation_id: &str) -> Vec<String> {
    let mut lines: Vec<(&str, &LogLine)> = observed
        .logs
        .iter()
        .flat_map(|(logical, lines)| {
            lines
                .iter()
                .map(move |line| (logical.as_str(), line.as_ref()))
        })
        .filter(|(_, line)| {
            line.stream == Stream::Stdout
                && line.span_field("correlation_id") == Some(correlation_id)
        })
        .collect();
    lines.sort_by_key(|(_, line)| line.at);
    let names: BTreeMap<&str, String> = observed
        .logs
        .keys()
        .map(|logical| (logical.as_str(), short_name(pipeline, logical)))
        .collect();
    let mut steps: Vec<(String, usize)> = Vec::new();
    for (logical, line) in lines {
        let Some(what) = step(line) else { continue };
        let text = format!(
            "{}: {what}",
            names.get(logical).map_or(logical, String::as_str)
        );
        match steps.last_mut() {
            Some((last, count)) if *last == text => *count += 1,
            _ => steps.push((text, 1)),
        }
    }
    steps
        .into_iter()
        .map(|(text, count)| {
            if count > 1 {
                format!("{text} ×{count}")
            } else {
                text
            }
        })
        .collect()
}

/// What a log line says about the record's fate, or `None` for bookkeeping lines.
fn step(line: &LogLine) -> Option<String> {
    match (line.field("outcome"), line.message()) {
        (Some("replayed"), _) => Some("duplicate suppressed".into()),
        (Some(_), _) => None,
        (None, "record failed") => Some(format!(
            "record failed ({})",
            line.field("class").unwrap_or("?")
        )),
        (None, message) => Some(message.split(';').next().unwrap_or(message).to_string()),
    }
}

/// The start of an id, enough to tell the demo's apart.
fn short(id: &str) -> String {
    let cut: String = id.chars().take(13).collect();
    if cut.len() < id.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::envelope_order_id;

    #[test]
    fn an_events_order_id_is_found_flat_or_nested_in_the_order() {
        let placed = json!({"eventId": "e1", "data": {"orderId": "o-1", "items": []}});
        let paid =
            json!({"eventId": "e2", "data": {"order": {"orderId": "o-2"}, "paymentId": "p"}});
        let neither = json!({"eventId": "e3", "data": "three socks"});
        assert_eq!(envelope_order_id(&placed), "o-1");
        assert_eq!(envelope_order_id(&paid), "o-2");
        assert_eq!(envelope_order_id(&neither), "");
    }
}
