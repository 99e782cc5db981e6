//! The measuring itself, in order: the throughput rounds (every contender once per round,
//! so a disturbance from outside hits all of them alike), the latency runs with every round
//! trip delayed, and the function binaries' cold starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use xtask::progress::Step;

use super::coldstart;
use super::peers::Peers;
use super::procfs;
use super::report::number;
use super::runner::{self, Contender, Programs, Run, Setting};
use super::summary::{Counted, FunctionStarts, Measured};
use super::tables::Tables;
use super::workload::{self, BATCH_SIZE};
use super::{arm64_bootstrap, release_dir, BenchArgs, FUNCTIONS};
use xtask::proxy::Proxy;

/// Everything one `cargo xtask bench` measures.
pub struct Measurements {
    /// Per contender, in [`Contender::ALL`] order.
    pub contenders: Vec<Measured>,
    /// Per function binary.
    pub functions: Vec<FunctionStarts>,
    /// The relay, per event and in batches.
    pub relay: Vec<super::relay::RelayRun>,
    /// The load average before and after measuring (other work on the machine).
    pub load: (String, String),
}

/// Runs every measurement.
pub async fn everything(
    args: &BenchArgs,
    (dynamodb, localstack): (&str, &str),
    dir: &Path,
    peers: Peers,
) -> Result<Measurements> {
    let load_before = load_average();
    let upstream = address(dynamodb)?;
    let programs = Programs {
        bench_eventkit: release_dir().join("bench-eventkit"),
        peers,
        callgrind_out: None,
    };
    let bench = Bench {
        programs,
        tables: Tables::new(dynamodb).await,
        upstream,
        server_pid: dynamodb_local_pid(),
        dir: dir.to_path_buf(),
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
    };
    let throughput = dir.join("workload.jsonl");
    workload::write(&throughput, args.batches)?;
    let latency = dir.join("workload-latency.jsonl");
    workload::write(&latency, args.latency_batches)?;

    let mut rounds: Vec<Vec<Run>> = vec![Vec::new(); Contender::ALL.len()];
    for round in 1..=args.rounds {
        for (index, contender) in Contender::ALL.into_iter().enumerate() {
            let label = format!("round {round}/{}: {}", args.rounds, contender.label());
            let run = bench
                .run(contender, &label, &throughput, args.batches, Duration::ZERO)
                .await?;
            rounds[index].push(run);
        }
    }
    let delay = Duration::from_millis(args.delay_ms);
    let mut contenders = Vec::new();
    for (contender, rounds) in Contender::ALL.into_iter().zip(rounds) {
        let label = format!("{} ms round trips: {}", args.delay_ms, contender.label());
        let latency = bench
            .run(contender, &label, &latency, args.latency_batches, delay)
            .await?;
        contenders.push(Measured {
            contender,
            rounds,
            latency,
            records: args.batches * BATCH_SIZE,
        });
    }

    let sqs_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(xtask::cloud::REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "bench",
        ))
        .endpoint_url(localstack)
        .load()
        .await;
    let relay = super::relay::measure(
        &super::relay::Services {
            bench_eventkit: &bench.programs.bench_eventkit,
            dynamodb: upstream,
            localstack: address(localstack)?,
            tables: &bench.tables,
            sqs: aws_sdk_sqs::Client::new(&sqs_config),
            dir,
            run_id: &bench.run_id,
        },
        args.relay_events,
    )
    .await?;

    // (#34) Traced starts export to a receiver (nothing is sent before the first event; the
    // exporter and its thread are built at init, which is what the traced start measures).
    let spans = dir.join("coldstart-spans.jsonl");
    let receiver = eventkit_local::traces::receiver::Receiver::start(
        eventkit_local::traces::store::SpanStore::create(spans)?,
    )
    .await?;
    let mut functions = Vec::new();
    for function in FUNCTIONS {
        let step = Step::start(format!("cold start: {function}"));
        let binary = release_dir().join(function);
        let starts = coldstart::measure(&binary, function, dynamodb, args.cold_starts, None).await;
        let endpoint = receiver.endpoint();
        let traced = coldstart::measure(
            &binary,
            function,
            dynamodb,
            args.cold_starts,
            Some(endpoint.as_str()),
        )
        .await;
        let (starts, traced_starts) = match (starts, traced) {
            (Ok(starts), Ok(traced)) => (starts, traced),
            (Err(error), _) | (_, Err(error)) => {
                step.fail();
                return Err(error);
            }
        };
        let measured = FunctionStarts {
            name: function.to_string(),
            starts,
            traced_starts,
            binary_bytes: std::fs::metadata(&binary)?.len(),
            arm64_bootstrap_bytes: std::fs::metadata(arm64_bootstrap(function))?.len(),
        };
        step.done(&format!(
            "median {:.1} ms, traced {:.1} ms",
            measured.median_ms(),
            measured.traced_median_ms()
        ));
        functions.push(measured);
    }
    Ok(Measurements {
        contenders,
        functions,
        relay,
        load: (load_before, load_average()),
    })
}

/// `--only`: the throughput rounds of the chosen contenders, nothing else.
pub async fn only(args: &BenchArgs, dynamodb: &str, dir: &Path) -> Result<Vec<Measured>> {
    let bench = Bench::for_only(args, dynamodb, dir, None).await?;
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let workload = dir.join("workload-only.jsonl");
    workload::write(&workload, args.batches)?;
    let mut rounds: Vec<Vec<Run>> = vec![Vec::new(); args.only.len()];
    for round in 1..=args.rounds {
        for (index, contender) in args.only.iter().enumerate() {
            let label = format!("round {round}/{}: {}", args.rounds, contender.label());
            let run = bench
                .run(*contender, &label, &workload, args.batches, Duration::ZERO)
                .await?;
            rounds[index].push(run);
        }
    }
    Ok(args
        .only
        .iter()
        .zip(rounds)
        .map(|(contender, rounds)| Measured {
            contender: *contender,
            latency: rounds[0].clone(),
            rounds,
            records: args.batches * BATCH_SIZE,
        })
        .collect())
}

/// `--instructions`: each `--only` contender run under callgrind at two sizes.
pub async fn instructions(args: &BenchArgs, dynamodb: &str, dir: &Path) -> Result<Vec<Counted>> {
    let out = dir.join("callgrind.out");
    let bench = Bench::for_only(args, dynamodb, dir, Some(out.clone())).await?;
    let small = (args.batches / 5).max(1);
    anyhow::ensure!(
        args.batches > small,
        "--batches must be at least 2 with --instructions"
    );
    let mut counted = Vec::new();
    for contender in &args.only {
        let mut totals = Vec::new();
        for batches in [small, args.batches] {
            let workload = dir.join(format!("workload-instructions-{batches}.jsonl"));
            workload::write(&workload, batches)?;
            let label = format!("{} under callgrind, {batches} batches", contender.label());
            let _ = std::fs::remove_file(&out);
            bench
                .run(*contender, &label, &workload, batches, Duration::ZERO)
                .await?;
            totals.push(callgrind_total(&out)?);
        }
        // Both phases, new and duplicate, of every extra batch.
        let records = ((args.batches - small) * BATCH_SIZE * 2) as f64;
        counted.push(Counted {
            contender: *contender,
            per_record: totals[1].saturating_sub(totals[0]) as f64 / records,
        });
    }
    Ok(counted)
}

/// The instructions a callgrind output file counted in all (its `summary:` or `totals:`).
fn callgrind_total(out: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(out)
        .with_context(|| format!("reading callgrind's output {}", out.display()))?;
    text.lines()
        .find_map(|line| {
            let count = line
                .strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))?;
            count.split_whitespace().next()?.parse().ok()
        })
        .with_context(|| format!("{} has no instruction total", out.display()))
}

/// What every run shares.
struct Bench {
    programs: Programs,
    tables: Tables,
    upstream: SocketAddr,
    server_pid: Option<u32>,
    dir: std::path::PathBuf,
    run_id: String,
}

impl Bench {
    /// The bench of `--only` and `--instructions`: eventkit's contenders only, and under
    /// callgrind when `callgrind_out` is given.
    async fn for_only(
        args: &BenchArgs,
        dynamodb: &str,
        dir: &Path,
        callgrind_out: Option<PathBuf>,
    ) -> Result<Self> {
        let no_peer = Peers {
            python: Default::default(),
            python_harness: Default::default(),
            node_harness: Default::default(),
        };
        Ok(Self {
            programs: Programs {
                bench_eventkit: args
                    .contender
                    .clone()
                    .unwrap_or_else(|| release_dir().join("bench-eventkit")),
                peers: no_peer,
                callgrind_out,
            },
            tables: Tables::new(dynamodb).await,
            upstream: address(dynamodb)?,
            server_pid: dynamodb_local_pid(),
            dir: dir.to_path_buf(),
            run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        })
    }

    /// One run of `contender` on a fresh table behind a fresh proxy.
    async fn run(
        &self,
        contender: Contender,
        label: &str,
        workload: &Path,
        batches: usize,
        delay: Duration,
    ) -> Result<Run> {
        let step = Step::start(label);
        let table = format!(
            "bench-{}-{}-{}",
            contender.slug(),
            self.run_id,
            uuid::Uuid::new_v4().simple()
        );
        let log = self.dir.join(format!("{}.log", contender.slug()));
        let result = async {
            let proxy = Proxy::start(self.upstream, delay).await?;
            self.tables.create(&table).await?;
            let setting = Setting {
                workload,
                records: batches * BATCH_SIZE,
                proxy: &proxy,
                server_pid: self.server_pid,
                log: &log,
            };
            let run = runner::run(&self.programs, contender, &table, &setting).await;
            let deleted = self.tables.delete(&table).await;
            let run = run?;
            deleted?;
            Ok::<_, anyhow::Error>(run)
        }
        .await;
        match result {
            Ok(run) => {
                let rate = |seconds: f64| number((batches * BATCH_SIZE) as f64 / seconds, 0);
                step.done(&format!(
                    "new {} records/s, duplicate {} records/s",
                    rate(run.new.report.seconds),
                    rate(run.duplicate.report.seconds)
                ));
                Ok(run)
            }
            Err(error) => {
                step.fail();
                Err(error)
            }
        }
    }
}

/// `host:port` of an `http://` endpoint.
fn address(endpoint: &str) -> Result<SocketAddr> {
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("the endpoint {endpoint} is not host:port"))
}

/// DynamoDB Local's pid, from the local cloud's pid file, if it names a live DynamoDB Local.
fn dynamodb_local_pid() -> Option<u32> {
    let pid_file = xtask::cloud::workspace_root().join(".local-cloud/dynamodb-local/run.pid");
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    procfs::command_line(pid)
        .is_some_and(|line| line.contains("DynamoDBLocal.jar"))
        .then_some(pid)
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}
