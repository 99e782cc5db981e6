//! One contender run: its process started with the SDK pointed at a proxy, driven through the
//! protocol (see `contender/protocol.rs`), its requests counted per phase, its peak memory
//! read from `/proc` before it exits, and its work checked: no record failed, every new
//! record ran the function once and no duplicate ran it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::peers::Peers;
use super::procfs;
use xtask::cloud::REGION;
use xtask::proxy::{Capacity, Counts, Proxy, UNPARSED};

/// How long a phase (or the start-up) may take before the run is abandoned.
const PHASE_TIMEOUT: Duration = Duration::from_secs(900);

/// The contenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contender {
    /// The raw baseline of the batched requests: DynamoDB Local's ceiling for them.
    RawBatched,
    /// The raw baseline of the per-record requests: DynamoDB Local's ceiling for them.
    Raw,
    /// eventkit, batched claims (its default for SQS batches).
    Eventkit,
    /// eventkit, per-record claims.
    EventkitPerRecord,
    /// eventkit (batched claims) with tracing on: every span exported over OTLP to a
    /// receiver of the run's, flushed after each invocation as a deployed function does.
    EventkitTraced,
    /// eventkit's transactional layer: each record's work and event committed with its
    /// completion through the outbox (claims batched, transactions shared).
    EventkitTransactional,
    /// The transactional layer with the event as an item of an outbox table.
    EventkitOutboxItems,
    /// The transactional layer with a handler that only emits an event.
    EventkitEmits,
    /// Powertools for AWS Lambda (Python).
    Python,
    /// Powertools for AWS Lambda (TypeScript).
    Node,
}

impl Contender {
    /// In the order they run.
    pub const ALL: [Self; 10] = [
        Self::RawBatched,
        Self::Raw,
        Self::Eventkit,
        Self::EventkitTraced,
        Self::EventkitPerRecord,
        Self::EventkitTransactional,
        Self::EventkitOutboxItems,
        Self::EventkitEmits,
        Self::Python,
        Self::Node,
    ];

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::RawBatched => "raw batched requests",
            Self::Raw => "raw per-record requests",
            Self::Eventkit => "eventkit",
            Self::EventkitPerRecord => "eventkit, per record",
            Self::EventkitTraced => "eventkit, traced (spans exported)",
            Self::EventkitTransactional => "eventkit, transactional (events on completions)",
            Self::EventkitOutboxItems => "eventkit, transactional (outbox items)",
            Self::EventkitEmits => "eventkit, emits only (events on completions)",
            Self::Python => "Powertools Python",
            Self::Node => "Powertools TypeScript",
        }
    }

    /// The eventkit contender (one `bench-eventkit` runs) whose slug is `slug`.
    pub fn from_slug(slug: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|contender| contender.slug() == slug && contender.runs_bench_eventkit())
            .ok_or_else(|| {
                let slugs: Vec<&str> = Self::ALL
                    .into_iter()
                    .filter(|contender| contender.runs_bench_eventkit())
                    .map(Self::slug)
                    .collect();
                format!("no such contender; one of {}", slugs.join(", "))
            })
    }

    /// Whether `bench-eventkit` runs it (every contender but the peers).
    fn runs_bench_eventkit(self) -> bool {
        !matches!(self, Self::Python | Self::Node)
    }

    /// The name in table and file names, and `bench-eventkit`'s mode.
    pub fn slug(self) -> &'static str {
        match self {
            Self::RawBatched => "raw-batched",
            Self::Raw => "raw",
            Self::Eventkit => "eventkit",
            Self::EventkitPerRecord => "eventkit-per-record",
            Self::EventkitTraced => "eventkit-traced",
            Self::EventkitTransactional => "eventkit-transactional",
            Self::EventkitOutboxItems => "eventkit-outbox-items",
            Self::EventkitEmits => "eventkit-emits",
            Self::Python => "python",
            Self::Node => "node",
        }
    }
}

/// The programs the contenders run.
pub struct Programs {
    /// The release `bench-eventkit` binary (eventkit and the raw baseline).
    pub bench_eventkit: PathBuf,
    /// The installed peers.
    pub peers: Peers,
    /// When set, `bench-eventkit` runs under valgrind's callgrind, which writes its count of
    /// instructions here (`--instructions`).
    pub callgrind_out: Option<PathBuf>,
}

impl Programs {
    fn command(&self, contender: Contender, workload: &Path, table: &str) -> Command {
        let mut command = match contender {
            Contender::RawBatched
            | Contender::Raw
            | Contender::Eventkit
            | Contender::EventkitTraced
            | Contender::EventkitPerRecord
            | Contender::EventkitTransactional
            | Contender::EventkitOutboxItems
            | Contender::EventkitEmits => {
                let mut command = match &self.callgrind_out {
                    Some(out) => {
                        let mut valgrind = Command::new("valgrind");
                        valgrind
                            .arg("--tool=callgrind")
                            .arg(format!("--callgrind-out-file={}", out.display()))
                            .arg(&self.bench_eventkit);
                        valgrind
                    }
                    None => Command::new(&self.bench_eventkit),
                };
                command.arg(contender.slug());
                command
            }
            Contender::Python => {
                let mut command = Command::new(&self.peers.python);
                command.arg(&self.peers.python_harness);
                command
            }
            Contender::Node => {
                let mut command = Command::new("node");
                command.arg(&self.peers.node_harness);
                command
            }
        };
        command.arg(workload).arg(table);
        command
    }
}

/// What a contender reports about a phase.
#[derive(Clone, Debug, Deserialize)]
pub struct PhaseReport {
    /// Wall time of the phase.
    pub seconds: f64,
    /// The contender's CPU time (user + system, all threads) during the phase.
    pub cpu_seconds: f64,
    /// Of which system time (the peers do not report it).
    #[serde(default)]
    pub system_cpu_seconds: Option<f64>,
    /// Wall time of each batch, in milliseconds.
    pub batch_ms: Vec<f64>,
    /// Records reported failed.
    pub failures: usize,
    /// Times the user's function ran.
    pub ran: usize,
}

/// A measured phase.
#[derive(Clone, Debug)]
pub struct Phase {
    /// The contender's own report.
    pub report: PhaseReport,
    /// DynamoDB requests during the phase, by operation.
    pub requests: Counts,
    /// The capacity units those requests are billed.
    pub capacity: Capacity,
    /// DynamoDB Local's CPU time during the phase, when its process is known.
    pub server_cpu_seconds: Option<f64>,
}

/// A measured run: both phases and the process's peak memory.
#[derive(Clone, Debug)]
pub struct Run {
    /// All records new.
    pub new: Phase,
    /// All records duplicates.
    pub duplicate: Phase,
    /// The contender process's peak resident set size.
    pub peak_rss_bytes: u64,
}

/// Where and how a run happens.
pub struct Setting<'a> {
    /// The workload file.
    pub workload: &'a Path,
    /// Records in each phase.
    pub records: usize,
    /// The proxy the contender's SDK talks to.
    pub proxy: &'a Proxy,
    /// DynamoDB Local's process, for its CPU time.
    pub server_pid: Option<u32>,
    /// Where the contender's stderr goes.
    pub log: &'a Path,
}

/// Runs `contender` on `table` in `setting`.
pub async fn run(
    programs: &Programs,
    contender: Contender,
    table: &str,
    setting: &Setting<'_>,
) -> Result<Run> {
    let mut command = programs.command(contender, setting.workload, table);
    // The traced contender's spans go to a receiver of this run's: the export's whole cost
    // (encoding, the request, the receiver's answer) is the contender's, as on Lambda with
    // a collector extension on localhost.
    let receiver = match contender {
        Contender::EventkitTraced => {
            let spans = setting.log.with_extension("spans.jsonl");
            let _ = std::fs::remove_file(&spans);
            let store = eventkit_local::traces::store::SpanStore::create(spans)?;
            let receiver = eventkit_local::traces::receiver::Receiver::start(store).await?;
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
            Some(receiver)
        }
        _ => None,
    };
    let spans_file = receiver
        .as_ref()
        .map(|receiver| receiver.store().path().to_path_buf());
    command
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG")
        .env("AWS_ENDPOINT_URL_DYNAMODB", setting.proxy.endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "AWS_LAMBDA_FUNCTION_NAME",
            format!("bench-{}", contender.slug()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(setting.log)?)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", contender.label()))?;
    let result = drive(&mut child, setting).await;
    drop(receiver);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let run = result.with_context(|| {
        format!(
            "{} did not complete its run; its stderr is in {}",
            contender.label(),
            setting.log.display()
        )
    })?;
    if let Some(spans_file) = spans_file {
        exported_every_record(&spans_file, setting)?;
    }
    Ok(run)
}

/// A traced run only counts if its spans reached the receiver: a failed export is only a
/// warning in the contender's log, and a run whose export failed would measure less than
/// what tracing costs. Every record has a span in each phase.
fn exported_every_record(spans_file: &std::path::Path, setting: &Setting<'_>) -> Result<()> {
    let spans = eventkit_local::traces::store::read_spans(spans_file)?.len();
    let expected = 2 * setting.records;
    if spans < expected {
        bail!(
            "the traced contender exported {spans} spans, fewer than its {expected} records \
             (both phases): its export failed; its stderr is in {}",
            setting.log.display()
        );
    }
    Ok(())
}

async fn drive(child: &mut Child, setting: &Setting<'_>) -> Result<Run> {
    let pid = child.id().context("the contender exited at once")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let server_cpu = || {
        setting
            .server_pid
            .and_then(|pid| procfs::cpu_seconds(pid).ok())
    };

    message(&mut lines).await?;
    let mut mark = (
        setting.proxy.counts(),
        server_cpu(),
        setting.proxy.capacity(),
    );
    let mut phases = Vec::new();
    for phase in ["new", "duplicate"] {
        stdin.write_all(b"go\n").await?;
        let report: PhaseReport = serde_json::from_value(message(&mut lines).await?)
            .with_context(|| format!("reading the {phase} phase's report"))?;
        let now = (
            setting.proxy.counts(),
            server_cpu(),
            setting.proxy.capacity(),
        );
        check(phase, &report, setting.records, &now.0)?;
        phases.push(Phase {
            report,
            requests: difference(&now.0, &mark.0),
            capacity: now.2 - mark.2,
            server_cpu_seconds: now.1.zip(mark.1).map(|(after, before)| after - before),
        });
        mark = now;
    }
    // Read while the process is still alive; its memory is gone once it exits.
    let peak_rss_bytes = procfs::peak_rss_bytes(pid)?;
    stdin.write_all(b"done\n").await?;
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    if !status.success() {
        bail!("the contender exited with {status}");
    }
    let duplicate = phases.pop().context("no duplicate phase")?;
    let new = phases.pop().context("no new phase")?;
    Ok(Run {
        new,
        duplicate,
        peak_rss_bytes,
    })
}

/// The next protocol message, skipping the contender's own output (logs, EMF lines).
async fn message(lines: &mut Lines<BufReader<ChildStdout>>) -> Result<serde_json::Value> {
    let next = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(message) = line.strip_prefix("@bench ") {
                return Ok(serde_json::from_str(message)?);
            }
        }
        bail!("the contender exited")
    };
    tokio::time::timeout(PHASE_TIMEOUT, next)
        .await
        .context("the contender took too long")?
}

/// A run only counts if every contender did the same work.
fn check(phase: &str, report: &PhaseReport, records: usize, counts: &Counts) -> Result<()> {
    if counts.contains_key(UNPARSED) {
        bail!("the proxy could not parse some of the contender's requests");
    }
    if report.failures > 0 {
        bail!("{} records failed in the {phase} phase", report.failures);
    }
    let expected = if phase == "new" { records } else { 0 };
    if report.ran != expected {
        bail!(
            "the function ran {} times in the {phase} phase, not {expected}",
            report.ran
        );
    }
    Ok(())
}

fn difference(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(operation, count)| {
            let earlier = before.get(operation).copied().unwrap_or_default();
            (operation.clone(), count - earlier)
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}
