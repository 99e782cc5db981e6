//! What a chaos run reports: the load, the faults by kind, the time to settle, each
//! invariant with its lost and doubled effects, and a short log of the crashes with what
//! recovered each one. Crashes are read from the functions' logs: every invocation that
//! ended in `Runtime.ExitError` (a kill or an injected crash), its records, and the first
//! later line that shows each record done.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::faults::Injected;
use super::invariants::Check;
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
}

impl Report {
    /// Expected effects missing, over every invariant.
    pub fn lost(&self) -> u64 {
        self.checks.iter().map(|check| check.lost).sum()
    }

    /// Effects doubled or unwanted, over every invariant.
    pub fn doubled(&self) -> u64 {
        self.checks.iter().map(|check| check.doubled).sum()
    }

    /// Whether every invariant holds and the pipeline settled.
    pub fn passed(&self) -> bool {
        self.unsettled.is_none() && self.checks.iter().all(Check::holds)
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
        rows.push((
            "DynamoDB outages".into(),
            self.injected.outages.len() as u64,
        ));
        for (kind, count) in &self.injected.dynamodb {
            rows.push((format!("DynamoDB requests: {kind}"), *count));
        }
        for (kind, count) in &self.injected.publish {
            rows.push((format!("publish requests: {kind}"), *count));
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

        let mut faults = table(&["fault injected", "count"]);
        for (kind, count) in self.faults() {
            faults.add_row(vec![kind, count.to_string()]);
        }
        println!("{faults}");

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
            self.lost().to_string(),
            self.doubled().to_string(),
            String::new(),
        ]);
        println!("{checks}");
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
    /// The records it was running, each with what later showed it done or given up on by
    /// its queue (and when).
    pub records: Vec<(String, Option<(String, Duration)>)>,
}

impl Crash {
    /// Records done after the crash.
    pub fn recovered(&self) -> usize {
        self.records
            .iter()
            .filter(|(_, done)| done.is_some())
            .count()
    }

    fn slowest_recovery(&self) -> Option<Duration> {
        self.records
            .iter()
            .filter_map(|(_, done)| done.as_ref().map(|(_, after)| *after))
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
        for (_, done) in &self.records {
            let outcome = done
                .as_ref()
                .map_or("NOT RECOVERED", |(how, _)| how.as_str());
            *how.entry(outcome).or_default() += 1;
        }
        let how = how
            .iter()
            .map(|(outcome, count)| format!("{count} {outcome}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{at} {} {}: {} record(s) → {how}{}",
            self.function,
            self.kind,
            self.records.len(),
            self.slowest_recovery()
                .map(|d| format!(" (within {:.1} s)", d.as_secs_f64()))
                .unwrap_or_default()
        )
    }
}

/// Every crashed invocation in the pipeline's logs. `dead_lettered` holds the message ids in
/// the dead-letter queues: a record whose crashed delivery was its last allowed receive is
/// moved there by its queue, with no line of the function's to say so.
pub fn crashes(pipeline: &LocalPipeline, dead_lettered: &BTreeSet<String>) -> Vec<Crash> {
    let mut crashes = Vec::new();
    for (function, host) in pipeline.hosts() {
        let lines = host.log().lines();
        for report in lines.iter().filter(|line| is_crash_report(line)) {
            let Some(request_id) = report
                .json
                .as_ref()
                .and_then(|json| json["record"]["requestId"].as_str())
            else {
                continue;
            };
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
                    let done = recovery(&lines, id, report.at).or_else(|| {
                        dead_lettered
                            .contains(id)
                            .then(|| ("moved to its dead-letter queue".to_string(), Duration::ZERO))
                    });
                    (id.to_string(), done)
                })
                .collect();
            crashes.push(Crash {
                function: function.clone(),
                at: report.at,
                kind,
                records,
            });
        }
    }
    crashes.sort_by_key(|crash| crash.at);
    crashes
}

fn is_crash_report(line: &LogLine) -> bool {
    line.stream == Stream::Platform
        && line.json.as_ref().is_some_and(|json| {
            json["type"] == "platform.report" && json["record"]["errorType"] == "Runtime.ExitError"
        })
}

/// The first line after `after` that shows record `id` done, as (how, how long after).
fn recovery(
    lines: &[std::sync::Arc<LogLine>],
    id: &str,
    after: SystemTime,
) -> Option<(String, Duration)> {
    lines.iter().find_map(|line| {
        if line.at <= after || line.span_field("record_id") != Some(id) {
            return None;
        }
        let how = match (line.field("outcome"), line.message()) {
            (Some("completed"), _) => "ran again and committed",
            (Some("replayed"), _) => "replayed from the idempotency store",
            (_, "outbox event published") => "published again under its id",
            (_, "record failed") if line.field("class") == Some("permanent") => {
                "failed for good (poison: dead-lettered)"
            }
            _ => return None,
        };
        Some((
            how.to_string(),
            line.at.duration_since(after).unwrap_or_default(),
        ))
    })
}
