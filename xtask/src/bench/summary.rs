//! The numbers the report shows, derived from the runs: per contender and phase, the median
//! over the throughput rounds; the latency runs' median batch; the cold starts' median.

use std::time::Duration;

use super::coldstart::Start;
use super::runner::{Contender, Phase, Run};

/// Which half of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// All records new.
    New,
    /// All records duplicates.
    Duplicate,
}

impl Which {
    /// Both, in the order they run.
    pub const BOTH: [Self; 2] = [Self::New, Self::Duplicate];

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Duplicate => "duplicate",
        }
    }

    fn of(self, run: &Run) -> &Phase {
        match self {
            Self::New => &run.new,
            Self::Duplicate => &run.duplicate,
        }
    }
}

/// Everything measured for one contender.
pub struct Measured {
    /// Who.
    pub contender: Contender,
    /// The throughput rounds (no added latency).
    pub rounds: Vec<Run>,
    /// The latency run (every round trip delayed).
    pub latency: Run,
    /// Records per phase in a throughput round.
    pub records: usize,
}

impl Measured {
    fn median_over_rounds(&self, which: Which, value: impl Fn(&Phase) -> f64) -> f64 {
        median(self.rounds.iter().map(|run| value(which.of(run))).collect())
    }

    /// Records per second.
    pub fn records_per_second(&self, which: Which) -> f64 {
        let records = self.records as f64;
        self.median_over_rounds(which, |phase| records / phase.report.seconds)
    }

    /// DynamoDB requests per record.
    pub fn requests_per_record(&self, which: Which) -> f64 {
        let records = self.records as f64;
        self.median_over_rounds(which, |phase| {
            phase.requests.values().sum::<u64>() as f64 / records
        })
    }

    /// Write units DynamoDB bills per record.
    pub fn write_units_per_record(&self, which: Which) -> f64 {
        let records = self.records as f64;
        self.median_over_rounds(which, |phase| phase.capacity.write_units / records)
    }

    /// Read units DynamoDB bills per record.
    pub fn read_units_per_record(&self, which: Which) -> f64 {
        let records = self.records as f64;
        self.median_over_rounds(which, |phase| phase.capacity.read_units / records)
    }

    /// DynamoDB requests per second.
    pub fn request_rate(&self, which: Which) -> f64 {
        self.median_over_rounds(which, |phase| {
            phase.requests.values().sum::<u64>() as f64 / phase.report.seconds
        })
    }

    /// The requests of the first round, by operation: `PutItem 1.00, UpdateItem 1.00`.
    pub fn requests_by_operation(&self, which: Which) -> String {
        let Some(run) = self.rounds.first() else {
            return String::new();
        };
        which
            .of(run)
            .requests
            .iter()
            .map(|(operation, count)| {
                format!("{operation} {:.2}", *count as f64 / self.records as f64)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The contender's CPU time per record, in microseconds.
    pub fn cpu_us_per_record(&self, which: Which) -> f64 {
        let records = self.records as f64;
        self.median_over_rounds(which, |phase| phase.report.cpu_seconds * 1e6 / records)
    }

    /// The system part of [`cpu_us_per_record`](Self::cpu_us_per_record), when the
    /// contender reports it (eventkit's do).
    pub fn system_cpu_us_per_record(&self, which: Which) -> Option<f64> {
        let records = self.records as f64;
        let values: Option<Vec<f64>> = self
            .rounds
            .iter()
            .map(|run| Some(which.of(run).report.system_cpu_seconds? * 1e6 / records))
            .collect();
        values.map(median)
    }

    /// DynamoDB Local's CPU time per record, in microseconds, when it could be read.
    pub fn server_cpu_us_per_record(&self, which: Which) -> Option<f64> {
        let records = self.records as f64;
        let values: Option<Vec<f64>> = self
            .rounds
            .iter()
            .map(|run| Some(which.of(run).server_cpu_seconds? * 1e6 / records))
            .collect();
        values.map(median)
    }

    /// The highest peak resident set size over the rounds, in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.rounds
            .iter()
            .map(|run| run.peak_rss_bytes)
            .chain([self.latency.peak_rss_bytes])
            .max()
            .unwrap_or_default()
    }

    /// The median batch's wall time in the latency run, in milliseconds.
    pub fn latency_ms(&self, which: Which) -> f64 {
        median(which.of(&self.latency).report.batch_ms.clone())
    }
}

/// One function binary's cold starts and size.
pub struct FunctionStarts {
    /// The function (its binary's name).
    pub name: String,
    /// Every measured start.
    pub starts: Vec<Start>,
    /// Every start with span export on (`OTEL_EXPORTER_OTLP_ENDPOINT` set).
    pub traced_starts: Vec<Start>,
    /// The size in bytes of the release binary whose starts were measured (this machine's
    /// architecture, x86_64).
    pub binary_bytes: u64,
    /// The size in bytes of the arm64 release bootstrap `cargo lambda build --arm64` makes,
    /// what the template deploys.
    pub arm64_bootstrap_bytes: u64,
}

impl FunctionStarts {
    /// The median start, in milliseconds.
    pub fn median_ms(&self) -> f64 {
        median(self.starts.iter().map(|s| ms(s.ready_after)).collect())
    }

    /// The median start with span export on, in milliseconds.
    pub fn traced_median_ms(&self) -> f64 {
        median(
            self.traced_starts
                .iter()
                .map(|s| ms(s.ready_after))
                .collect(),
        )
    }

    /// The slowest start, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.starts
            .iter()
            .map(|s| ms(s.ready_after))
            .fold(0.0, f64::max)
    }

    /// The highest peak RSS at the moment of readiness, in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.starts
            .iter()
            .map(|s| s.peak_rss_bytes)
            .max()
            .unwrap_or_default()
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The median (the mean of the middle two for an even count); 0 for nothing.
pub fn median(values: Vec<f64>) -> f64 {
    let mut values = values;
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// What `--instructions` counted of one contender.
pub struct Counted {
    /// Who.
    pub contender: super::runner::Contender,
    /// Instructions executed per record, new and duplicate records together: the
    /// difference between a run of `--batches` and a run of a fifth of them, so that
    /// starting, the warm-up and ending cancel out.
    pub per_record: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
