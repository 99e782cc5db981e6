//! Developer commands for eventkit, run as `cargo xtask <command>`.
//!
//! - `cloud up | down | status | env`: the local cloud (LocalStack and DynamoDB Local),
//!   installed into `.local-cloud/` on first use.
//! - `test`: the one test command (local cloud, fmt, clippy, the whole test suite), the same
//!   one CI runs.

mod cloud;
mod progress;
mod test;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
    }
}
