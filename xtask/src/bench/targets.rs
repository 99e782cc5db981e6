//! The targets, checked against the measurements, each with what was measured and,
//! when missed, by how much.

use super::runner::Contender;
use super::summary::{FunctionStarts, Measured, Which};

/// Cold start limit, milliseconds.
const COLD_START_MS: f64 = 20.0;
/// Peak RSS limit, bytes (30 MB).
const PEAK_RSS_BYTES: u64 = 30 * 1024 * 1024;

/// One target.
pub struct Target {
    /// What is asked.
    pub goal: &'static str,
    /// What was measured.
    pub measured: String,
    /// Whether it holds.
    pub met: bool,
}

/// The measurements of the contenders, by name.
pub struct Field<'a> {
    /// eventkit with its spans exported.
    pub traced: &'a Measured,
    /// eventkit, batched claims (its default).
    pub eventkit: &'a Measured,
    /// eventkit, per-record claims.
    pub per_record: &'a Measured,
    /// eventkit's transactional (outbox) layer: a write and an event per record.
    pub transactional: &'a Measured,
    /// The transactional layer with the event as an outbox item.
    pub outbox_items: &'a Measured,
    /// The transactional layer with a handler that only emits an event.
    pub emits: &'a Measured,
    /// The raw baseline of the batched requests.
    pub raw_batched: &'a Measured,
    /// The raw baseline of the per-record requests.
    pub raw: &'a Measured,
    /// The two peers.
    pub peers: [&'a Measured; 2],
}

impl<'a> Field<'a> {
    /// Picks the contenders out of `measured`; `None` if one is missing.
    pub fn new(measured: &'a [Measured]) -> Option<Self> {
        let find = |who| measured.iter().find(|m| m.contender == who);
        Some(Self {
            eventkit: find(Contender::Eventkit)?,
            traced: find(Contender::EventkitTraced)?,
            per_record: find(Contender::EventkitPerRecord)?,
            transactional: find(Contender::EventkitTransactional)?,
            outbox_items: find(Contender::EventkitOutboxItems)?,
            emits: find(Contender::EventkitEmits)?,
            raw_batched: find(Contender::RawBatched)?,
            raw: find(Contender::Raw)?,
            peers: [find(Contender::Python)?, find(Contender::Node)?],
        })
    }

    /// The peer with the higher records per second in `which`.
    pub fn faster_peer(&self, which: Which) -> &'a Measured {
        let [a, b] = self.peers;
        if a.records_per_second(which) >= b.records_per_second(which) {
            a
        } else {
            b
        }
    }
}

/// Every target, in the order.
pub fn evaluate(field: &Field, functions: &[FunctionStarts], delay_ms: f64) -> Vec<Target> {
    let ours = field.eventkit;
    let mut targets = Vec::new();

    let mut met = true;
    let measured = Which::BOTH.map(|which| {
        let peer = field.faster_peer(which);
        let ratio = peer.cpu_us_per_record(which) / ours.cpu_us_per_record(which);
        met &= ratio >= 10.0;
        format!(
            "{}: {:.0} µs vs {:.0} µs ({}), {ratio:.1}× less",
            which.label(),
            ours.cpu_us_per_record(which),
            peer.cpu_us_per_record(which),
            peer.contender.label()
        )
    });
    targets.push(Target {
        goal: "client CPU per record at least 10× less than the faster peer's",
        measured: measured.join("; "),
        met,
    });

    // (#34) Tracing's cost: the spans exported against the same binary with export off
    // (what every deployed function runs unless an OTEL_* variable is set).
    let mut met = true;
    let measured = Which::BOTH.map(|which| {
        let ratio = field.traced.cpu_us_per_record(which) / ours.cpu_us_per_record(which);
        met &= ratio <= 1.15;
        format!(
            "{}: {:.0} µs vs {:.0} µs, {ratio:.2}×",
            which.label(),
            field.traced.cpu_us_per_record(which),
            ours.cpu_us_per_record(which),
        )
    });
    targets.push(Target {
        goal: "client CPU per record with tracing on within 15% of off",
        measured: measured.join("; "),
        met,
    });

    let mut met = true;
    let trips = |m: &Measured, which| m.latency_ms(which) / delay_ms;
    let measured = Which::BOTH.map(|which| {
        met &= trips(ours, which) <= 2.5;
        format!(
            "{}: {:.1} ms = {:.1} round trips (per record {:.1}, Python {:.1}, TypeScript {:.1})",
            which.label(),
            ours.latency_ms(which),
            trips(ours, which),
            trips(field.per_record, which),
            trips(field.peers[0], which),
            trips(field.peers[1], which)
        )
    });
    targets.push(Target {
        goal: "a batch of 10 within 2.5 round trips when each costs 5 ms, new and duplicate",
        measured: measured.join("; "),
        met,
    });

    let mut met = true;
    let measured = Which::BOTH.map(|which| {
        let peer = field.faster_peer(which);
        let ratio = ours.records_per_second(which) / peer.records_per_second(which);
        met &= ratio >= 1.0;
        format!(
            "{}: {:.0} vs {:.0} ({}), {ratio:.2}×",
            which.label(),
            ours.records_per_second(which),
            peer.records_per_second(which),
            peer.contender.label()
        )
    });
    targets.push(Target {
        goal: "records per second at least the faster peer's",
        measured: measured.join("; "),
        met,
    });

    let mut met = true;
    let measured = Which::BOTH.map(|which| {
        let ratio = ours.records_per_second(which) / field.per_record.records_per_second(which);
        met &= ratio >= 1.0;
        format!(
            "{}: {:.0} vs {:.0}, {ratio:.2}×",
            which.label(),
            ours.records_per_second(which),
            field.per_record.records_per_second(which),
        )
    });
    targets.push(Target {
        goal: "records per second on DynamoDB Local at least the per-record mode's",
        measured: measured.join("; "),
        met,
    });

    let mut met = true;
    let measured = Which::BOTH.map(|which| {
        let share = ours.records_per_second(which) / field.raw_batched.records_per_second(which);
        met &= share >= 0.9;
        format!(
            "{}: {:.0} of {:.0} records/s ({:.0}%)",
            which.label(),
            ours.records_per_second(which),
            field.raw_batched.records_per_second(which),
            share * 100.0
        )
    });
    targets.push(Target {
        goal:
            "records per second within 10% of the raw batched requests' (DynamoDB Local's ceiling)",
        measured: measured.join("; "),
        met,
    });

    let new = ours.requests_per_record(Which::New);
    let duplicate = ours.requests_per_record(Which::Duplicate);
    targets.push(Target {
        goal: "DynamoDB requests per record, batches of 10: at most 0.25 new and 0.25 duplicate",
        measured: format!(
            "new {new:.2}, duplicate {duplicate:.2} (per record {:.2} and {:.2}; Powertools 2 and 1)",
            field.per_record.requests_per_record(Which::New),
            field.per_record.requests_per_record(Which::Duplicate)
        ),
        met: new <= 0.25 && duplicate <= 0.25,
    });

    // The outbox's cost (issue #35): what a new record costs on the transactional path.
    for (goal, measured, requests, write_units) in [
        (
            "a handler that only emits an event: at most 0.25 requests and 2.0 write units per new record",
            field.emits,
            0.25,
            2.0,
        ),
        (
            "a handler that stages one write and one event: at most 0.35 requests and 5.0 write units per new record",
            field.transactional,
            0.35,
            5.0,
        ),
    ] {
        let (r, w) = (
            measured.requests_per_record(Which::New),
            measured.write_units_per_record(Which::New),
        );
        targets.push(Target {
            goal,
            measured: format!(
                "{r:.2} requests, {w:.2} write units (plain batched idempotency: {:.2} and {:.2})",
                ours.requests_per_record(Which::New),
                ours.write_units_per_record(Which::New)
            ),
            met: r <= requests && w <= write_units,
        });
    }

    let slowest = functions
        .iter()
        .max_by(|a, b| a.median_ms().total_cmp(&b.median_ms()));
    targets.push(Target {
        goal: "cold start at most 20 ms (median, each function)",
        measured: slowest.map_or_else(
            || "not measured".into(),
            |f| format!("slowest: {} {:.1} ms", f.name, f.median_ms()),
        ),
        met: slowest.is_some_and(|f| f.median_ms() <= COLD_START_MS),
    });

    // (#34) The traced start, against the untraced one of the same binary in the same run.
    let slowest_traced = functions
        .iter()
        .max_by(|a, b| a.traced_median_ms().total_cmp(&b.traced_median_ms()));
    targets.push(Target {
        goal: "cold start with tracing on at most 20 ms (median, each function)",
        measured: slowest_traced.map_or_else(
            || "not measured".into(),
            |f| {
                format!(
                    "slowest: {} {:.1} ms ({:.2}× its start with export off)",
                    f.name,
                    f.traced_median_ms(),
                    f.traced_median_ms() / f.median_ms()
                )
            },
        ),
        met: slowest_traced.is_some_and(|f| f.traced_median_ms() <= COLD_START_MS),
    });

    let functions_peak = functions
        .iter()
        .map(FunctionStarts::peak_rss_bytes)
        .max()
        .unwrap_or_default();
    targets.push(Target {
        goal: "peak RSS at most 30 MB",
        measured: format!(
            "bench process {}, functions at first event ≤ {}",
            megabytes(ours.peak_rss_bytes()),
            megabytes(functions_peak)
        ),
        met: ours.peak_rss_bytes() <= PEAK_RSS_BYTES && functions_peak <= PEAK_RSS_BYTES,
    });
    targets
}

/// Bytes as MB with one decimal.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}
