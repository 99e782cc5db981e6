//! Developer commands for eventkit, run as `cargo xtask <command>`.
//!
//! - `cloud up | down | status | env`: the local cloud (LocalStack and DynamoDB Local),
//!   installed into `.local-cloud/` on first use.
//! - `test`: the one test command (local cloud, fmt, clippy, the whole test suite), the same
//!   one CI runs.
//! - `tools`: the infra checks' tools (SAM CLI, cfn-lint, cargo-lambda, checkov), installed
//!   into `.local-cloud/tools/` on first use.
//! - `demo | dev | send`: the order pipeline run locally, end to end, as real Lambda
//!   binaries (the library's `local_lambda`).
//! - `schemas`: the events' JSON Schemas (`events/schemas/`) and the template's schema
//!   registry, generated from the event types; refuses a breaking change within a version.
//! - `seed`: the stock loaded into a deployed stack's inventory table.
//! - `chaos`: the fault-injection run: lost and doubled effects under kills, crashes,
//!   DynamoDB and publish faults; writes its figures as tables.
//! - `guide`: the user guide (`guide/`) built with mdBook into `target/guide/`.
//! - `release-check`: the published packages (eventkit-lambda, eventkit-local) packaged and
//!   built from their packages, their contents and sizes, and semver against the last release.
//! - `bench`: eventkit measured against Powertools for AWS Lambda (Python and TypeScript);
//!   writes `BENCHMARKS.md`.

mod bench;
mod guide;
mod release;
mod test;
mod tools;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::{chaos, cloud, demo, dev, progress, schemas, seed, send};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "eventkit developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the local cloud: LocalStack (SNS, SQS, EventBridge) and DynamoDB Local.
    Cloud {
        #[command(subcommand)]
        action: cloud::Action,
        #[command(flatten)]
        ports: cloud::Ports,
    },
    /// Bring the local cloud up, then run fmt, clippy and the whole workspace test suite.
    Test {
        #[command(flatten)]
        ports: cloud::Ports,
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
    /// Install the infra checks' tools (SAM CLI, cfn-lint, cargo-lambda, checkov) on first use.
    Tools,
    /// Run the order pipeline locally: resources from infra/template.yaml, the six functions
    /// as real binaries, the sample orders sent, a summary; fails if it did not settle as
    /// expected.
    Demo(demo::DemoArgs),
    /// The demo, then keep running: rebuild and restart a function when its code changes.
    Dev(demo::DemoArgs),
    /// Publish an event (an envelope JSON file) into the pipeline `dev` runs.
    Send(send::SendArgs),
    /// Load the stock (events/inventory/seed.json) into a deployed stack's inventory table,
    /// found by the stack's name; AWS credentials and region from the usual chain.
    Seed(seed::SeedArgs),
    /// Write the events' JSON Schemas (events/schemas/) and the template's schema registry
    /// from the event types; refuses a breaking change within a version.
    Schemas(schemas::SchemasArgs),
    /// The exactly-once promise measured: thousands of orders (duplicates among them)
    /// through the local pipeline while processes are killed, crashes injected, DynamoDB
    /// and publishing fail; reports lost and doubled effects, fails unless both are zero.
    Chaos(chaos::ChaosArgs),
    /// Measure eventkit against Powertools for AWS Lambda (Python and TypeScript) and write
    /// BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Check what `cargo publish` would upload: both packages built from their packaged
    /// sources, their files and sizes, and the API against the last release.
    ReleaseCheck,
    /// Build the user guide (guide/) with mdBook into target/guide/ (mdBook installed on
    /// first use).
    Guide,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Cloud { action, ports } => cloud::run(action, &cloud::LocalCloud::new(ports)?),
        Command::Test {
            ports,
            cargo_test_args,
        } => test::run(&cloud::LocalCloud::new(ports)?, &cargo_test_args),
        Command::Tools => tools::run(),
        Command::Demo(args) => demo::run(&args),
        Command::Dev(args) => dev::run(&args),
        Command::Send(args) => send::run(&args),
        Command::Seed(args) => seed::run(&args),
        Command::Schemas(args) => schemas::run(&cloud::workspace_root(), &args),
        Command::Chaos(args) => chaos::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::ReleaseCheck => release::run(),
        Command::Guide => guide::run(),
    }
}
