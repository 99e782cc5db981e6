//! The contender's side of the bench protocol, which the Python and Node harnesses under
//! `xtask/bench/` speak too:
//!
//! 1. read the workload (one SQS event JSON per line, the first one the warm-up batch), build
//!    the clients, run the warm-up batch, print `@bench {"ready":true}`, wait for a line on
//!    stdin (the parent snapshots the proxy's request counters meanwhile);
//! 2. run every batch once (all records new), print the phase's result, wait for a line;
//! 3. run every batch again (all duplicates), print the phase's result, wait for a line (the
//!    parent reads this process's peak memory from `/proc` meanwhile), exit.
//!
//! Each batch goes in as the JSON text Lambda would hand over and its response is written
//! back out as JSON text, so every contender pays for the same parsing and serializing.

use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::sys::resource::{getrusage, UsageWho};
use serde_json::{json, Value};

/// What a contender does with one invocation.
pub trait Contender {
    /// Handles one SQS event (JSON text) and returns how many of its records failed.
    async fn invoke(&self, payload: &str) -> Result<usize>;

    /// How many times the user's function has run so far (a duplicate must not run it).
    fn runs(&self) -> usize;
}

/// The batches of one run: a warm-up batch and the measured ones.
pub struct Workload {
    warmup: String,
    batches: Vec<String>,
}

impl Workload {
    /// Reads the workload file the parent wrote.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the workload {}", path.display()))?;
        let mut lines = text.lines().filter(|line| !line.trim().is_empty());
        let warmup = lines.next().context("the workload is empty")?.to_string();
        let batches: Vec<String> = lines.map(str::to_string).collect();
        if batches.is_empty() {
            bail!("the workload has no measured batches");
        }
        Ok(Self { warmup, batches })
    }
}

/// Runs the whole protocol for `contender`.
pub async fn drive(contender: &impl Contender, workload: &Workload) -> Result<()> {
    let failed = contender.invoke(&workload.warmup).await?;
    if failed > 0 {
        bail!("{failed} records of the warm-up batch failed");
    }
    say(&json!({"ready": true}));
    wait_for_parent()?;
    for phase in ["new", "duplicate"] {
        let runs_before = contender.runs();
        let cpu_before = cpu_seconds()?;
        let system_before = system_cpu_seconds()?;
        let started = Instant::now();
        let mut batch_ms = Vec::with_capacity(workload.batches.len());
        let mut failures = 0;
        for batch in &workload.batches {
            let batch_started = Instant::now();
            failures += contender.invoke(batch).await?;
            batch_ms.push(batch_started.elapsed().as_secs_f64() * 1e3);
        }
        let seconds = started.elapsed().as_secs_f64();
        say(&json!({
            "phase": phase,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds()? - cpu_before,
            "system_cpu_seconds": system_cpu_seconds()? - system_before,
            "batch_ms": batch_ms,
            "failures": failures,
            "ran": contender.runs() - runs_before,
        }));
        wait_for_parent()?;
    }
    Ok(())
}

/// The `eventId` of each record's body in an SQS event (JSON text): what the raw baselines
/// key their records by.
pub fn event_ids(payload: &str) -> Result<Vec<String>> {
    let event: Value = serde_json::from_str(payload).context("parsing the event")?;
    event["Records"]
        .as_array()
        .context("the event has no Records")?
        .iter()
        .map(|record| {
            let body: Value = serde_json::from_str(record["body"].as_str().unwrap_or("{}"))?;
            Ok(body["eventId"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// Seconds a completed record is kept: the layers' default retention, so that the raw
/// contenders write what eventkit writes.
pub const RECORD_TTL_SECS: u64 = eventkit::idempotency::DEFAULT_RECORD_TTL.as_secs();

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Counts the entries of a batch response's `batchItemFailures`.
pub fn failures_in(response: &Value) -> usize {
    response
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// A protocol line; the prefix tells it from the function's own output (logs, EMF).
fn say(value: &Value) {
    println!("@bench {value}");
}

/// Blocks until the parent writes a line (or closes stdin): nothing else runs meanwhile.
fn wait_for_parent() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the parent's go-ahead")?;
    Ok(())
}

/// User plus system CPU time of this whole process (every thread) so far.
pub fn cpu_seconds() -> Result<f64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    Ok(seconds(usage.user_time()) + seconds(usage.system_time()))
}

/// The system part of [`cpu_seconds`]: what the kernel did for the process (its sockets).
pub fn system_cpu_seconds() -> Result<f64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    Ok(seconds(usage.system_time()))
}

fn seconds(time: nix::sys::time::TimeVal) -> f64 {
    time.tv_sec() as f64 + time.tv_usec() as f64 * 1e-6
}
