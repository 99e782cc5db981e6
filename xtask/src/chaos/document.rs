//! RELIABILITY.md: a chaos run's figures as Markdown, the way BENCHMARKS.md reports speed:
//! the command that reproduces it, the machine, the load, the faults, the invariants with
//! their lost and doubled effects, and the crash log's summary. What follows the
//! [`WRITTEN_BY_HAND`] marker in the file (why the promise holds, and over what horizon)
//! is kept from run to run.

use std::fmt::Write as _;

use super::report::{OutageRow, Report};

/// Where the part of the document written by hand begins: a new run's figures replace what
/// comes before it and keep it and what follows (the horizon section, say).
pub const WRITTEN_BY_HAND: &str =
    "<!-- written by hand: `cargo xtask chaos --report` keeps what follows -->";

/// `generated`, followed by the part of `previous` (the document as it was) written by hand,
/// if it has one.
pub fn keeping_what_is_written_by_hand(generated: String, previous: Option<&str>) -> String {
    match previous.and_then(|text| text.find(WRITTEN_BY_HAND).map(|at| &text[at..])) {
        Some(kept) => format!("{}\n\n{kept}", generated.trim_end()),
        None => generated,
    }
}

/// The document for `report`, run as `command`.
pub fn markdown(report: &Report, command: &str) -> String {
    let mut out = String::new();
    let verdict = if report.passed() {
        "nothing lost, nothing doubled"
    } else {
        "INVARIANTS BROKEN"
    };
    let _ = writeln!(
        out,
        "# Reliability: the exactly-once promise under faults\n"
    );
    let _ = writeln!(
        out,
        "{} orders, {} messages, {} crashes: **{} lost, {} doubled** ({verdict}).\n",
        report.orders,
        report.messages,
        report.crashes.len() + count_kills_without_crash(report),
        report.lost(),
        report.doubled()
    );
    let _ = writeln!(out, "Reproduce with `{command} --seed {}`.\n", report.seed);
    let _ = writeln!(out, "Machine: {}.\n", machine());

    let _ = writeln!(out, "## Load\n\n| | |\n| --- | ---: |");
    let _ = writeln!(out, "| orders | {} |", report.orders);
    for (outcome, count) in &report.outcomes {
        let _ = writeln!(out, "| {outcome} | {count} |");
    }
    let _ = writeln!(out, "| orders sent 2 to 5 times | {} |", report.duplicated);
    let _ = writeln!(out, "| messages sent | {} |", report.messages);
    let _ = writeln!(
        out,
        "| load and faults | {:.0} s |",
        report.load_time.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| time to settle once the faults stopped | {} |\n",
        match &report.unsettled {
            None => format!("{:.0} s", report.settle_time.as_secs_f64()),
            Some(why) => format!("did not settle: {why}"),
        }
    );

    let _ = writeln!(
        out,
        "## What the functions spent\n\nCounted by the proxies every function's requests \
         pass, until the invariants were read (faults and duplicates included).\n\n\
         | per order | |\n| --- | ---: |"
    );
    for (what, per_order) in report.cost.rows() {
        let _ = writeln!(out, "| {} | {per_order} |", what.trim_start());
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "## Faults injected\n\n| fault | count |\n| --- | ---: |"
    );
    for (kind, count) in report.faults() {
        let _ = writeln!(out, "| {kind} | {count} |");
    }
    let outages = report.outages();
    if !outages.is_empty() {
        let _ = writeln!(
            out,
            "\n### Long outages\n\n| {} |\n| --- | ---: | ---: | ---: | ---: | ---: |",
            OutageRow::HEADERS.join(" | ")
        );
        for row in outages {
            let _ = writeln!(out, "| {} |", row.cells().join(" | "));
        }
    }
    let _ = writeln!(
        out,
        "\n## Invariants\n\n| invariant | expected | lost | doubled | flagged |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for check in &report.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            check.name, check.expected, check.lost, check.doubled, check.flagged
        );
    }
    let _ = writeln!(
        out,
        "| **all** | | **{}** | **{}** | |\n\nFlagged: dead letters whose effect had already happened (their \
         idempotency record is COMPLETED; `dlq redrive` leaves them, and forced with \
         `--include-completed` they replay while their record lives). Nothing of theirs is lost.\n",
        report.checks.iter().map(|c| c.lost).sum::<u64>(),
        report.checks.iter().map(|c| c.doubled).sum::<u64>()
    );
    let late = report.late_rows();
    if !late.is_empty() {
        let _ = writeln!(
            out,
            "## Late copies\n\nOnce the run had settled, the idempotency records were aged \
             (their expiry moved back, as they read that many days later) and copies came \
             back: the dead letters whose effect had completed redriven (forced, as `dlq \
             redrive --include-completed` does), a share of the orders sent again, a share \
             of the derived events published again by the relay. The invariants were read \
             again.\n\n| late copies | |\n| --- | ---: |"
        );
        for (what, count) in late {
            let _ = writeln!(out, "| {what} | {count} |");
        }
        let _ = writeln!(out);
    }
    let records: usize = report.crashes.iter().map(|c| c.records.len()).sum();
    let recovered: usize = report.crashes.iter().map(|c| c.recovered()).sum();
    let _ = writeln!(
        out,
        "## Crashes and what recovered them\n\n{} invocations died ({}); they were running \
         {records} records, {recovered} of which were seen done afterwards. The first ones:\n",
        report.crashes.len(),
        report
            .crashes_by_kind()
            .iter()
            .map(|(kind, count)| format!("{count} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for crash in report.crashes.iter().take(10) {
        let _ = writeln!(out, "- {}", crash.describe());
    }
    out
}

/// Kills that landed between invocations leave no crashed invocation in the logs.
fn count_kills_without_crash(report: &Report) -> usize {
    let kills_seen = report
        .crashes
        .iter()
        .filter(|crash| crash.kind == "SIGKILL")
        .count();
    report.injected.kills.len().saturating_sub(kills_seen)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|name| name.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!("{cpu}, {cores} cores; load average {load} when the run ended")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_keeps_what_is_written_by_hand_and_replaces_the_rest() {
        let previous = format!("# old figures\n\n{WRITTEN_BY_HAND}\n\n## Horizon\n\nwhy\n");
        let kept = keeping_what_is_written_by_hand("# new figures\n".into(), Some(&previous));
        assert_eq!(
            kept,
            format!("# new figures\n\n{WRITTEN_BY_HAND}\n\n## Horizon\n\nwhy\n")
        );
        let fresh = keeping_what_is_written_by_hand("# new\n".into(), Some("# old\n"));
        assert_eq!(fresh, "# new\n");
        assert_eq!(
            keeping_what_is_written_by_hand("# new\n".into(), None),
            "# new\n"
        );
    }
}
