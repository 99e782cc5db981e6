//! What a chaos run reports: the load, the faults by kind, the time to settle, each
//! invariant with its lost and doubled effects, and a short log of the crashes with what
//! recovered each one. Crashes are read from the functions' logs: every invocation that
//! ended in `Runtime.ExitError` (a kill or an injected crash), its records, and the first
//! later line that shows each record done.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::faults::Injected;
use super::invariants::Check;
use super::load::{Oversize, Oversized};
use crate::demo::summary::table;
use crate::local_lambda::logs::{LogLine, Stream};
use crate::local_lambda::LocalPipeline;

/// A chaos run's figures.
#[derive(Debug)]
pub struct Report {
    /// The seed of the run's randomness (`--seed` repeats the load and the schedule).
    pub seed: u64,
    /// Distinct orders.
    pub orders: usize,
    /// Orders per expected outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Orders sent more than once.
    pub duplicated: usize,
    /// The oversized orders: what each was padded for, and its size.
    pub oversized: Vec<Oversized>,
    /// Messages sent in all.
    pub messages: usize,
    /// The faults given.
    pub injected: Injected,
    /// Every crash seen in the logs.
    pub crashes: Vec<Crash>,
    /// From the first order sent to the end of the faults.
    pub load_time: Duration,
    /// From the end of the faults until nothing was in flight.
    pub settle_time: Duration,
    /// Why it did not settle, if it did not.
    pub unsettled: Option<String>,
    /// The invariants.
    pub checks: Vec<Check>,
    /// What the pipeline's functions spent, until the invariants were read.
    pub cost: super::cost::Cost,
    /// The late copies and the invariants read after them ([`super::late`]); `None` when
    /// off, or when the run had already failed.
    pub late: Option<super::late::Outcome>,
    /// Seconds on AWS one second of the run stands for (the consumers' backoff).
    pub time_scale: f64,
}

impl Report {
    /// The invariants as last read: after the late copies when they came.
    pub fn final_checks(&self) -> &[Check] {
        self.late.as_ref().map_or(&self.checks, |late| &late.checks)
    }

    /// Expected effects missing, over every invariant (as last read).
    pub fn lost(&self) -> u64 {
        self.final_checks().iter().map(|check| check.lost).sum()
    }

    /// Effects doubled or unwanted, over every invariant (as last read).
    pub fn doubled(&self) -> u64 {
        self.final_checks().iter().map(|check| check.doubled).sum()
    }

    /// Whether every invariant holds and the pipeline settled, before the late copies and
    /// after them.
    pub fn passed(&self) -> bool {
        self.unsettled.is_none()
            && self.checks.iter().all(Check::holds)
            && self.late.as_ref().is_none_or(super::late::Outcome::passed)
    }

    /// The late copies as rows (what, count), with the invariants after them.
    pub fn late_rows(&self) -> Vec<(String, String)> {
        let Some(late) = &self.late else {
            return Vec::new();
        };
        let brought = &late.brought;
        let failing: Vec<String> = late
            .checks
            .iter()
            .filter(|check| !check.holds())
            .map(|check| {
                format!(
                    "{}: {} lost, {} doubled ({})",
                    check.name,
                    check.lost,
                    check.doubled,
                    check.details.join("; ")
                )
            })
            .collect();
        vec![
            ("days later".into(), format!("{}", brought.days)),
            ("idempotency records aged".into(), brought.aged.to_string()),
            (
                "completed dead letters redriven".into(),
                brought.redriven.to_string(),
            ),
            (
                "poison dead letters left".into(),
                brought.left_dead.to_string(),
            ),
            (
                "orders sent again".into(),
                brought.orders_resent.len().to_string(),
            ),
            (
                "derived events published again".into(),
                brought.events_republished.to_string(),
            ),
            (
                "copies replayed by consumers".into(),
                late.replayed.to_string(),
            ),
            (
                "control: an order sent again past its records' retention".into(),
                match late.control_reran {
                    Some(true) => "ran again (as it must: the records absorb the copies)".into(),
                    Some(false) => "did NOT run again: the ageing is not what it says".into(),
                    None => "not run".into(),
                },
            ),
            (
                "invariants after".into(),
                match (&late.unsettled, failing.is_empty()) {
                    (Some(why), _) => format!("did not settle: {why}"),
                    (None, true) => "all hold: nothing lost, nothing doubled".into(),
                    (None, false) => failing.join("; "),
                },
            ),
        ]
    }

    /// Crashes per kind (`SIGKILL`, `crash before-completion`, ...).
    pub fn crashes_by_kind(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for crash in &self.crashes {
            *kinds.entry(crash.kind.clone()).or_default() += 1;
        }
        kinds
    }

    /// The faults by kind, as rows (kind, count).
    pub fn faults(&self) -> Vec<(String, u64)> {
        let mut rows = vec![(
            "function processes killed (SIGKILL)".to_string(),
            self.injected.kills.len() as u64,
        )];
        for (kind, count) in self.crashes_by_kind() {
            if kind != SIGKILL {
                rows.push((format!("{kind} (injected)"), count as u64));
            }
        }
        for (dependency, outages) in &self.injected.outages {
            if !outages.is_empty() || *dependency == super::faults::DYNAMODB {
                rows.push((format!("{dependency} outages"), outages.len() as u64));
            }
        }
        for (kind, count) in &self.injected.dynamodb {
            rows.push((format!("DynamoDB requests: {kind}"), *count));
        }
        for (kind, count) in &self.injected.publish {
            rows.push((format!("publish requests: {kind}"), *count));
        }
        for (kind, count) in &self.injected.provider {
            rows.push((format!("payment provider requests: {kind}"), *count));
        }
        rows.extend(self.oversized_rows());
        rows
    }

    /// The oversized orders' rows: per kind, how many and the sizes they spanned.
    pub fn oversized_rows(&self) -> Vec<(String, u64)> {
        [Oversize::Carried, Oversize::Refused]
            .into_iter()
            .map(|kind| {
                let sizes: Vec<usize> = self
                    .oversized
                    .iter()
                    .filter(|order| order.kind == kind)
                    .map(|order| order.bytes)
                    .collect();
                let kb = |bytes: usize| format!("{:.0}", bytes as f64 / 1024.0);
                let span = match (sizes.iter().min(), sizes.iter().max()) {
                    (Some(low), Some(high)) if low == high => format!(", {} KiB", kb(*low)),
                    (Some(low), Some(high)) => format!(", {} to {} KiB", kb(*low), kb(*high)),
                    _ => String::new(),
                };
                (
                    format!("oversized orders: {}{span}", kind.describe()),
                    sizes.len() as u64,
                )
            })
            .collect()
    }

    /// Per outage, as the report shows it: when, how long (and what that stands for on AWS,
    /// at the run's time scale), the requests it was sent while down, and how long its
    /// backlog took to drain once it was back.
    pub fn outages(&self) -> Vec<OutageRow> {
        let on_aws = |length: Duration| {
            let minutes = length.as_secs_f64() * self.time_scale / 60.0;
            format!("{:.0} s (~{minutes:.0} min on AWS)", length.as_secs_f64())
        };
        let mut rows = Vec::new();
        for (dependency, outages) in &self.injected.outages {
            for outage in outages {
                let seconds = outage.length.as_secs_f64().max(1.0);
                rows.push(OutageRow {
                    dependency: dependency.to_string(),
                    began: format!("{:.0} s", outage.at.as_secs_f64()),
                    lasted: on_aws(outage.length),
                    requests: outage.requests,
                    per_second: format!("{:.2}", outage.requests as f64 / seconds),
                    drained: outage
                        .drained
                        .map_or_else(|| "not before the run ended".to_string(), on_aws),
                });
            }
        }
        rows
    }

    /// The tables and the crash log, for the terminal.
    pub fn print(&self) {
        let mut load = table(&["load", ""]);
        load.add_row(vec!["orders".to_string(), self.orders.to_string()]);
        for (outcome, count) in &self.outcomes {
            load.add_row(vec![format!("  {outcome}"), count.to_string()]);
        }
        load.add_row(vec![
            "orders sent 2 to 5 times".to_string(),
            self.duplicated.to_string(),
        ]);
        load.add_row(vec!["messages sent".to_string(), self.messages.to_string()]);
        load.add_row(vec![
            "load and faults".to_string(),
            format!("{:.0} s", self.load_time.as_secs_f64()),
        ]);
        load.add_row(vec![
            "time to settle".to_string(),
            match &self.unsettled {
                None => format!("{:.0} s", self.settle_time.as_secs_f64()),
                Some(why) => format!("did not settle: {why}"),
            },
        ]);
        println!("\n{load}");

        let mut cost = table(&["what the functions spent", "per order"]);
        for (what, per_order) in self.cost.rows() {
            cost.add_row(vec![what, per_order]);
        }
        println!("{cost}");

        let mut faults = table(&["fault injected", "count"]);
        for (kind, count) in self.faults() {
            faults.add_row(vec![kind, count.to_string()]);
        }
        println!("{faults}");

        let outages = self.outages();
        if !outages.is_empty() {
            let mut table = table(&OutageRow::HEADERS);
            for row in outages {
                table.add_row(row.cells());
            }
            println!("{table}");
        }

        let mut checks = table(&["invariant", "expected", "lost", "doubled", ""]);
        for check in &self.checks {
            checks.add_row(vec![
                check.name.to_string(),
                check.expected.to_string(),
                check.lost.to_string(),
                check.doubled.to_string(),
                if check.holds() {
                    "✓".into()
                } else {
                    check.details.join("; ")
                },
            ]);
        }
        checks.add_row(vec![
            "all".to_string(),
            String::new(),
            self.checks.iter().map(|c| c.lost).sum::<u64>().to_string(),
            self.checks
                .iter()
                .map(|c| c.doubled)
                .sum::<u64>()
                .to_string(),
            String::new(),
        ]);
        println!("{checks}");
        let late = self.late_rows();
        if !late.is_empty() {
            let mut table = table(&["late copies (after the run settled)", ""]);
            for (what, count) in late {
                table.add_row(vec![what, count]);
            }
            println!("{table}");
        }
        self.print_crash_log();
    }

    fn print_crash_log(&self) {
        const SHOWN: usize = 12;
        if self.crashes.is_empty() {
            println!("no crash in the logs");
            return;
        }
        let records: usize = self.crashes.iter().map(|c| c.records.len()).sum();
        let recovered: usize = self.crashes.iter().map(Crash::recovered).sum();
        let slowest = self
            .crashes
            .iter()
            .filter_map(Crash::slowest_recovery)
            .max()
            .unwrap_or_default();
        println!(
            "crash log: {} crash(es) interrupted {records} record(s); {recovered} recovered \
             (slowest after {:.1} s){}",
            self.crashes.len(),
            slowest.as_secs_f64(),
            if self.crashes.len() > SHOWN {
                format!("; the first {SHOWN}:")
            } else {
                ":".into()
            }
        );
        for crash in self.crashes.iter().take(SHOWN) {
            println!("  {}", crash.describe());
        }
        for crash in self.crashes.iter().skip(SHOWN) {
            if crash.recovered() < crash.records.len() {
                println!("  {}", crash.describe());
            }
        }
    }
}

/// One outage as the report shows it.
#[derive(Clone, Debug)]
pub struct OutageRow {
    /// The dependency that was down.
    pub dependency: String,
    /// When it went down, from the start of the faults.
    pub began: String,
    /// How long, and what that stands for on AWS.
    pub lasted: String,
    /// Requests the dependency was sent while down.
    pub requests: u64,
    /// The same, per second.
    pub per_second: String,
    /// From the dependency's recovery to its backlog drained.
    pub drained: String,
}

impl OutageRow {
    /// The columns, in the order of [`cells`](Self::cells).
    pub const HEADERS: [&'static str; 6] = [
        "outage of",
        "began",
        "lasted",
        "requests while down",
        "per second",
        "backlog drained after recovery",
    ];

    /// The row's cells.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.dependency.clone(),
            self.began.clone(),
            self.lasted.clone(),
            self.requests.to_string(),
            self.per_second.clone(),
            self.drained.clone(),
        ]
    }
}

/// The kind of crash no `crash_injected` line explains: the run's own SIGKILL.
const SIGKILL: &str = "SIGKILL";

/// One invocation that died.
#[derive(Clone, Debug)]
pub struct Crash {
    /// The function's logical id.
    pub function: String,
    /// When (the local Lambda's report line).
    pub at: SystemTime,
    /// `SIGKILL`, or `crash <point>`.
    pub kind: String,
    /// The records it was running.
    pub records: Vec<Record>,
}

/// A record a crash interrupted.
#[derive(Clone, Debug)]
pub struct Record {
    /// Its id (the message id, or the outbox event's id for the relay).
    pub id: String,
    /// What showed it done or given up on by its queue, and how long after the crash.
    pub done: Option<(String, Duration)>,
    /// When it was not seen done: every log line of it, for the reader.
    pub trail: Vec<String>,
}

impl Crash {
    /// Records done after the crash.
    pub fn recovered(&self) -> usize {
        self.records
            .iter()
            .filter(|record| record.done.is_some())
            .count()
    }

    fn slowest_recovery(&self) -> Option<Duration> {
        self.records
            .iter()
            .filter_map(|record| record.done.as_ref().map(|(_, after)| *after))
            .max()
    }

    /// One line: what died, and what recovered its records.
    pub fn describe(&self) -> String {
        let at = chrono::DateTime::<chrono::Utc>::from(self.at).format("%H:%M:%S%.3f");
        if self.records.is_empty() {
            return format!(
                "{at} {} {}: before any record started (the invocation is retried whole)",
                self.function, self.kind
            );
        }
        let mut how: BTreeMap<&str, usize> = BTreeMap::new();
        for record in &self.records {
            let outcome = record
                .done
                .as_ref()
                .map_or("NOT RECOVERED", |(how, _)| how.as_str());
            *how.entry(outcome).or_default() += 1;
        }
        let how = how
            .iter()
            .map(|(outcome, count)| format!("{count} {outcome}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut line = format!(
            "{at} {} {}: {} record(s) → {how}{}",
            self.function,
            self.kind,
            self.records.len(),
            self.slowest_recovery()
                .map(|d| format!(" (within {:.1} s)", d.as_secs_f64()))
                .unwrap_or_default()
        );
        for record in self.records.iter().filter(|record| record.done.is_none()) {
            line.push_str(&format!(
                "\n    record {} not seen done; its lines:",
                record.id
            ));
            for trail in &record.trail {
                line.push_str(&format!("\n      {trail}"));
            }
        }
        line
    }
}

/// Every crashed invocation in the pipeline's logs. `dead_lettered` holds the message ids in
/// the dead-letter queues: a record whose crashed delivery was its last allowed receive is
/// moved there by its queue, with no line of the function's to say so.
pub fn crashes(pipeline: &LocalPipeline, dead_lettered: &BTreeSet<String>) -> Vec<Crash> {
    let mut crashes: Vec<Crash> = pipeline
        .hosts()
        .iter()
        .flat_map(|(function, host)| crashes_in(function, &host.log().lines(), dead_lettered))
        .collect();
    crashes.sort_by_key(|crash| crash.at);
    crashes
}

/// The crashed invocations in one function's log lines.
fn crashes_in(
    function: &str,
    lines: &[Arc<LogLine>],
    dead_lettered: &BTreeSet<String>,
) -> Vec<Crash> {
    let reports: Vec<(&str, SystemTime)> = lines
        .iter()
        .filter(|line| is_crash_report(line))
        .filter_map(|report| {
            let json = report.json.as_ref()?;
            Some((json["record"]["requestId"].as_str()?, report.at))
        })
        .collect();
    let crashed: BTreeSet<&str> = reports.iter().map(|(id, _)| *id).collect();
    let mut crashes = Vec::new();
    for (request_id, at) in &reports {
        let invocation: Vec<&LogLine> = lines
            .iter()
            .filter(|line| line.span_field("requestId") == Some(request_id))
            .map(|line| &**line)
            .collect();
        let kind = invocation
            .iter()
            .find(|line| line.field("outcome") == Some("crash_injected"))
            .map_or_else(
                || SIGKILL.to_string(),
                |line| format!("crash {}", line.field("crash_point").unwrap_or("?")),
            );
        let ids: BTreeSet<&str> = invocation
            .iter()
            .filter_map(|line| line.span_field("record_id"))
            .collect();
        let records = ids
            .into_iter()
            .map(|id| {
                let done = recovery(lines, id, *at)
                    .or_else(|| concurrent_delivery(lines, id, &crashed))
                    .or_else(|| {
                        dead_lettered
                            .contains(id)
                            .then(|| ("moved to its dead-letter queue".to_string(), Duration::ZERO))
                    });
                let trail = if done.is_none() {
                    trail(lines, id)
                } else {
                    Vec::new()
                };
                Record {
                    id: id.to_string(),
                    done,
                    trail,
                }
            })
            .collect();
        crashes.push(Crash {
            function: function.to_string(),
            at: *at,
            kind,
            records,
        });
    }
    crashes
}

/// The record ids a dead letter stands for: its own message id (a record a queue moved
/// there), and the ids inside its body (an asynchronous invocation's event, dead-lettered
/// after its retries: its SNS `MessageId`, its EventBridge `id`), which are the ids the
/// function logged for it.
pub fn dead_letter_ids(message: &aws_sdk_sqs::types::Message) -> Vec<String> {
    fn walk(value: &serde_json::Value, ids: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (name, field) in map {
                    match field {
                        serde_json::Value::String(id)
                            if matches!(name.as_str(), "MessageId" | "messageId" | "id") =>
                        {
                            ids.push(id.clone());
                        }
                        _ => walk(field, ids),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, ids)),
            _ => {}
        }
    }
    let mut ids: Vec<String> = message
        .message_id()
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(body) = message
        .body()
        .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok())
    {
        walk(&body, &mut ids);
    }
    ids
}

fn is_crash_report(line: &LogLine) -> bool {
    line.stream == Stream::Platform
        && line.json.as_ref().is_some_and(|json| {
            json["type"] == "platform.report" && json["record"]["errorType"] == "Runtime.ExitError"
        })
}

/// How a line shows its record done, if it does.
fn done_by(line: &LogLine) -> Option<&'static str> {
    Some(match (line.field("outcome"), line.message()) {
        (Some("completed"), _) => "ran again and committed",
        (Some("replayed"), _) => "replayed from the idempotency store",
        (_, "outbox event published") => "published again under its id",
        (_, "record failed") if line.field("class") == Some("permanent") => {
            "failed for good (poison: dead-lettered)"
        }
        _ => return None,
    })
}

/// The first line after `after` that shows record `id` done, as (how, how long after).
fn recovery(lines: &[Arc<LogLine>], id: &str, after: SystemTime) -> Option<(String, Duration)> {
    lines.iter().find_map(|line| {
        if line.at <= after || line.span_field("record_id") != Some(id) {
            return None;
        }
        let how = done_by(line)?;
        Some((
            how.to_string(),
            line.at.duration_since(after).unwrap_or_default(),
        ))
    })
}

/// A line of an invocation that did not crash showing record `id` done, at any time. A
/// queue hands a message out again when its visibility timeout runs out while the first
/// delivery is still running (a slow DynamoDB, an outage): the crash may then hit the second
/// delivery after the first one finished the record and deleted the message, so no line of
/// it comes after the crash.
fn concurrent_delivery(
    lines: &[Arc<LogLine>],
    id: &str,
    crashed: &BTreeSet<&str>,
) -> Option<(String, Duration)> {
    lines.iter().find_map(|line| {
        if line.span_field("record_id") != Some(id)
            || line
                .span_field("requestId")
                .is_none_or(|request| crashed.contains(request))
        {
            return None;
        }
        done_by(line)?;
        Some((
            "done by another delivery of its message".to_string(),
            Duration::ZERO,
        ))
    })
}

/// Every line of record `id`, one short line each: what a reader needs to see why a record
/// was not accounted for.
fn trail(lines: &[Arc<LogLine>], id: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.span_field("record_id") == Some(id))
        .map(|line| {
            let at = chrono::DateTime::<chrono::Utc>::from(line.at).format("%H:%M:%S%.3f");
            format!(
                "{at} {} {} {}",
                line.span_field("requestId").unwrap_or("-"),
                line.field("outcome").unwrap_or("-"),
                line.message()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_lambda::logs::Stream;
    use serde_json::{json, Value};

    fn at(second: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(second)
    }

    fn line(second: u64, stream: Stream, json: Value) -> Arc<LogLine> {
        Arc::new(LogLine {
            at: at(second),
            function: "F".into(),
            stream,
            text: json.to_string(),
            json: Some(json),
        })
    }

    fn record_line(second: u64, request: &str, record: &str, outcome: &str) -> Arc<LogLine> {
        line(
            second,
            Stream::Stdout,
            json!({"message": "m", "outcome": outcome,
                   "spans": [{"requestId": request}, {"record_id": record}]}),
        )
    }

    fn crash_report(second: u64, request: &str) -> Arc<LogLine> {
        line(
            second,
            Stream::Platform,
            json!({"type": "platform.report",
                   "record": {"requestId": request, "errorType": "Runtime.ExitError"}}),
        )
    }

    fn outcomes(lines: &[Arc<LogLine>], dead: &[&str]) -> Vec<Option<String>> {
        let dead = dead.iter().map(|id| id.to_string()).collect();
        let crashes = crashes_in("F", lines, &dead);
        assert_eq!(crashes.len(), 1);
        crashes[0]
            .records
            .iter()
            .map(|record| record.done.as_ref().map(|(how, _)| how.clone()))
            .collect()
    }

    #[test]
    fn a_record_done_after_the_crash_is_recovered() {
        let lines = [
            record_line(1, "a", "m1", "claimed"),
            crash_report(2, "a"),
            record_line(3, "b", "m1", "replayed"),
        ];
        assert_eq!(
            outcomes(&lines, &[]),
            [Some("replayed from the idempotency store".to_string())]
        );
    }

    #[test]
    fn a_record_another_delivery_finished_before_the_crash_is_accounted_for() {
        let lines = [
            record_line(1, "first", "m1", "claimed"),
            record_line(2, "second", "m1", "in_progress"),
            record_line(3, "first", "m1", "completed"),
            crash_report(4, "second"),
        ];
        assert_eq!(
            outcomes(&lines, &[]),
            [Some("done by another delivery of its message".to_string())]
        );
    }

    #[test]
    fn a_done_line_of_another_crashed_delivery_does_not_count() {
        // The first delivery completed the record but crashed before answering: its message
        // was not deleted, so only a later line may account for it.
        let lines = [
            record_line(1, "first", "m1", "completed"),
            record_line(2, "second", "m1", "in_progress"),
            crash_report(3, "first"),
            crash_report(4, "second"),
        ];
        let crashes = crashes_in("F", &lines, &BTreeSet::new());
        assert!(crashes.iter().all(|crash| crash.recovered() == 0));
        assert!(crashes[1].describe().contains("record m1 not seen done"));
    }

    #[test]
    fn a_dead_letter_stands_for_its_own_id_and_for_the_records_of_the_event_it_carries() {
        let sns = aws_sdk_sqs::types::Message::builder()
            .message_id("dlq-1")
            .body(r#"{"Records":[{"EventSource":"aws:sns","Sns":{"MessageId":"sns-7","Message":"{}"}}]}"#)
            .build();
        assert_eq!(dead_letter_ids(&sns), ["dlq-1", "sns-7"]);
        let plain = aws_sdk_sqs::types::Message::builder()
            .message_id("dlq-2")
            .body("not json")
            .build();
        assert_eq!(dead_letter_ids(&plain), ["dlq-2"]);
    }

    #[test]
    fn a_record_in_a_dead_letter_queue_is_accounted_for_and_one_nowhere_is_not() {
        let lines = [
            record_line(1, "a", "m1", "claimed"),
            record_line(1, "a", "m2", "claimed"),
            crash_report(2, "a"),
        ];
        assert_eq!(
            outcomes(&lines, &["m1"]),
            [Some("moved to its dead-letter queue".to_string()), None]
        );
    }
}
