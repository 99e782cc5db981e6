//! `cargo xtask bench`: eventkit against Powertools for AWS Lambda (Python and TypeScript),
//! measured side by side in one run against the same DynamoDB Local, written to
//! `BENCHMARKS.md` with a plot.
//!
//! Each contender is its own process (so its CPU time and peak memory are its own) running
//! the same workload through its own batch processor and idempotency layer, on its own table,
//! with its SDK pointed at a proxy that counts the DynamoDB requests (and, for the latency
//! runs, makes each round trip cost 5 ms). A raw-request baseline measures what DynamoDB Local itself serves.
//! Then the function binaries' cold starts are timed against a bare Runtime API listener.

mod coldstart;
mod criterion;
mod document;
mod measure;
mod peers;
mod plot;
mod procfs;
mod relay;
mod report;
mod runner;
mod summary;
mod tables;
mod targets;
mod workload;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use clap::Args;
use xtask::cloud::{self, run_logged, workspace_root, LocalCloud};
use xtask::progress::Step;

/// The function binaries whose cold start and size are measured.
pub const FUNCTIONS: [&str; 4] = ["inventory", "payments", "notifications", "analytics"];

/// `cargo xtask bench` options.
#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Batches of 10 records per phase in each throughput round.
    #[arg(long, default_value_t = 200)]
    pub batches: usize,
    /// Throughput rounds per contender; the report shows the median.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Batches per phase in the latency runs.
    #[arg(long, default_value_t = 20)]
    pub latency_batches: usize,
    /// What every DynamoDB round trip costs at least in the latency runs, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub delay_ms: u64,
    /// Starts of each function binary in the cold-start measurement.
    #[arg(long, default_value_t = 20)]
    pub cold_starts: usize,
    /// Events the relay publishes in each of its two runs.
    #[arg(long, default_value_t = 2000)]
    pub relay_events: usize,
    /// Also run the criterion benchmarks of the in-process hot paths.
    #[arg(long)]
    pub criterion: bool,
    /// A quick comparison instead of the whole benchmark: only the throughput rounds of
    /// these eventkit contenders (by their slugs, e.g. `eventkit,eventkit-traced`), printed
    /// as a table against the first; nothing else is measured and `BENCHMARKS.md` is left
    /// as it is.
    #[arg(long, value_delimiter = ',', value_parser = runner::Contender::from_slug)]
    pub only: Vec<runner::Contender>,
    /// With `--only`: count the instructions each contender executes per record, with
    /// valgrind's callgrind, instead of timing it. Each runs at `--batches` and at a fifth
    /// of them, and the difference is divided by the records between: new and duplicate
    /// records together, starting and the warm-up cancelled out. Unlike CPU time, the count
    /// is the same from run to run whatever else the machine is doing (a machine shared
    /// with DynamoDB Local, a build or another tenant moves CPU time by a third), but it
    /// leaves out what the kernel does for the process and what cache misses cost.
    #[arg(long, requires = "only")]
    pub instructions: bool,
    /// With `--only`: run this `bench-eventkit` instead of building the release one (one
    /// built with symbols, to profile it; the tests' debug build, to run the bench small).
    #[arg(long, requires = "only", env = "BENCH_EVENTKIT")]
    pub contender: Option<PathBuf>,
    #[command(flatten)]
    ports: cloud::Ports,
}

/// Runs the whole benchmark and writes `BENCHMARKS.md`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let local_cloud = LocalCloud::new(args.ports)?;
    local_cloud.up()?;
    let dynamodb = endpoint(&local_cloud, "AWS_ENDPOINT_URL_DYNAMODB")?;
    let localstack = endpoint(&local_cloud, "AWS_ENDPOINT_URL")?;
    let dir = workspace_root().join(".local-cloud/bench");
    std::fs::create_dir_all(&dir)?;
    if !args.only.is_empty() {
        if args.contender.is_none() {
            build_contender(&dir)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        if args.instructions {
            let counted = runtime.block_on(measure::instructions(args, &dynamodb, &dir))?;
            println!("{}", report::instructions(&counted).terminal());
            return Ok(());
        }
        let measured = runtime.block_on(measure::only(args, &dynamodb, &dir))?;
        println!("{}", report::quick(&measured).terminal());
        return Ok(());
    }
    build(&dir)?;
    let peers = peers::install(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let measured = runtime.block_on(measure::everything(
        args,
        (&dynamodb, &localstack),
        &dir,
        peers,
    ))?;
    let criterion = if args.criterion {
        Some(criterion::run(&dir)?)
    } else {
        None
    };
    document::publish(args, &measured, criterion.as_deref())
}

/// The URL the local cloud's environment variable `variable` gives its clients.
fn endpoint(local_cloud: &LocalCloud, variable: &str) -> Result<String> {
    local_cloud
        .env_vars()
        .into_iter()
        .find(|(name, _)| *name == variable)
        .map(|(_, url)| url)
        .with_context(|| format!("the local cloud sets no {variable}"))
}

/// The release target folder.
fn release_dir() -> PathBuf {
    target_dir().join("release")
}

/// Where cargo builds: `CARGO_TARGET_DIR` when set, else the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Where `cargo lambda build --arm64` puts a function's bootstrap.
fn arm64_bootstrap(function: &str) -> PathBuf {
    target_dir().join("lambda").join(function).join("bootstrap")
}

/// Builds, in release, the eventkit contender only (for `--only`).
fn build_contender(dir: &std::path::Path) -> Result<()> {
    let step = Step::start("building the contender (release)");
    let built = run_logged(&mut contender_build(), &dir.join("build.log"), &step);
    finished(step, built)
}

/// `cargo build` of the release `bench-eventkit`.
fn contender_build() -> Command {
    let mut command = Command::new(crate::test::cargo());
    command
        .args([
            "build",
            "--release",
            "-p",
            "xtask",
            "--bin",
            "bench-eventkit",
        ])
        .current_dir(workspace_root());
    command
}

/// Ends `step` as `result` says, and hands the result on.
fn finished(step: Step, result: Result<()>) -> Result<()> {
    match &result {
        Ok(()) => step.done("built"),
        Err(_) => step.fail(),
    }
    result
}

/// Builds, in release, the eventkit contender and the function binaries, for this machine
/// (to start them) and as arm64 bootstraps (to weigh what is deployed).
fn build(dir: &std::path::Path) -> Result<()> {
    let step = Step::start("building the contender and the functions (release; x86_64 and arm64)");
    let cargo = crate::test::cargo();
    let log = dir.join("build.log");
    let mut functions = vec!["build", "--release"];
    let mut arm64 = vec!["lambda", "build", "--release", "--arm64"];
    for function in FUNCTIONS {
        functions.extend(["-p", function]);
        arm64.extend(["-p", function]);
    }
    let tools_bin = crate::tools::install()?;
    let path = std::env::join_paths(std::iter::once(tools_bin.clone()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let result = run_logged(&mut contender_build(), &log, &step)
        .and_then(|()| {
            run_logged(
                Command::new(&cargo)
                    .args(&functions)
                    .current_dir(workspace_root()),
                &log,
                &step,
            )
        })
        .and_then(|()| {
            // cargo-lambda finds zig, its cross linker, on the PATH.
            run_logged(
                Command::new(tools_bin.join("cargo-lambda"))
                    .args(&arm64)
                    .env("PATH", &path)
                    .current_dir(workspace_root()),
                &log,
                &step,
            )
        });
    finished(step, result)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    /// `cargo xtask bench --only`, small, on the tests' debug build of the contender: each
    /// contender runs every record of both phases against DynamoDB Local (the runner refuses
    /// a run that did less), the traced one's spans reach its receiver (refused too
    /// otherwise), and both report their CPU time. A debug build's figures mean nothing; the
    /// full-size run is `cargo xtask bench`.
    #[test]
    fn a_small_comparison_runs_tracing_off_and_on_and_the_traced_run_exports() {
        let built = Command::new(crate::test::cargo())
            .args(["build", "-p", "xtask", "--bin", "bench-eventkit"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(built.success(), "the contender builds");
        let contender = target_dir().join("debug").join("bench-eventkit");
        let args = Cli::parse_from([
            "bench",
            "--only=eventkit,eventkit-traced",
            "--rounds=1",
            "--batches=3",
            &format!("--contender={}", contender.display()),
        ])
        .bench;
        let local_cloud = LocalCloud::new(args.ports).expect("the local cloud's ports");
        local_cloud.up().expect("the local cloud is up");
        let dynamodb =
            endpoint(&local_cloud, "AWS_ENDPOINT_URL_DYNAMODB").expect("a DynamoDB endpoint");
        let dir = workspace_root().join(".local-cloud/bench-test");
        std::fs::create_dir_all(&dir).expect("a folder for the run");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let measured = runtime
            .block_on(measure::only(&args, &dynamodb, &dir))
            .expect("the small comparison runs");

        let contenders: Vec<runner::Contender> = measured.iter().map(|m| m.contender).collect();
        assert_eq!(
            contenders,
            [
                runner::Contender::Eventkit,
                runner::Contender::EventkitTraced
            ]
        );
        for contender in &measured {
            assert_eq!(contender.records, 30);
            let run = &contender.rounds[0];
            for phase in [&run.new, &run.duplicate] {
                assert!(
                    phase.report.cpu_seconds > 0.0,
                    "{:?} reported no CPU time",
                    contender.contender
                );
            }
        }
        let table = report::quick(&measured).terminal().to_string();
        assert!(
            table.contains("eventkit, traced (spans exported)"),
            "{table}"
        );
    }
}
