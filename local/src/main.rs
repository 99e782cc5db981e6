//! `eventkit-local`: run a SAM application's functions locally without Docker, in any
//! directory holding a template. `cargo install eventkit-local` (from a checkout:
//! `cargo install --path local`).
//!
//! - `cloud up | down | status | env`: LocalStack and DynamoDB Local, one local cloud per
//!   machine user, installed into a cache folder (`~/.cache/eventkit-local`) on first use; a
//!   cloud another folder started on the ports is used as it is;
//! - `run`: build the functions, create the template's resources, run the functions with
//!   their event sources, stream their logs; Ctrl-C or SIGTERM stops and deletes the
//!   resources (with `--keep` they stay, and the other commands still reach them);
//! - `invoke FUNCTION --event FILE`: one invocation, as `sam local invoke -e` does, printing
//!   the response and the invocation's log;
//! - `send`, `dlq list | show | redrive`, `status`: the running application (found through
//!   the description `run` keeps in `.local-cloud/apps/`), by logical id;
//! - `logs [FUNCTION] [--follow]`: the functions' logs, as `sam logs`;
//! - `generate-event`: a sample event of a supported trigger, as `sam local generate-event`;
//! - `new NAME`, `init`: a new application on eventkit (functions per trigger, template,
//!   sample events, tests, README), in a folder of its own or in the current one;
//! - `trace ID`: an order's (event's, trace's) spans, received from the functions `run`
//!   started, as a waterfall in the terminal and a self-contained HTML file.

mod cli;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use eventkit_local::cloud::{self, LocalCloud, Ports};

use cli::app::{AppArgs, RunArgs};
use cli::dlq::DlqAction;
use cli::generate::GenerateArgs;
use cli::logs::LogsArgs;
use cli::new::{InitArgs, NewArgs};
use cli::send::SendArgs;
use cli::trace::TraceArgs;
use cli::Located;

#[derive(Parser)]
#[command(
    name = "eventkit-local",
    version,
    about = "Run a SAM application's functions locally, without Docker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an application built on eventkit in a new folder: Rust functions per trigger,
    /// the SAM template, sample events, tests and a README.
    New(NewArgs),
    /// The same in the current folder (files that exist are never overwritten).
    Init(InitArgs),
    /// The local cloud (LocalStack and DynamoDB Local) of this machine user.
    Cloud {
        #[command(subcommand)]
        action: cloud::Action,
        #[command(flatten)]
        ports: Ports,
    },
    /// Run the application until Ctrl-C or SIGTERM: resources, functions, event sources, logs.
    Run(RunArgs),
    /// Invoke one function once with an event file; prints the response and its log.
    Invoke {
        /// The function's logical id in the template.
        function: String,
        /// The event (JSON) the function receives.
        #[arg(long, short = 'e')]
        event: std::path::PathBuf,
        #[command(flatten)]
        app: AppArgs,
    },
    /// Send a message to a queue, topic or bus of the running application.
    Send(SendArgs),
    /// The running application's dead-letter queues.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// The running application: functions, queues, dead letters, outputs, logs.
    Status(Located),
    /// A function's log (every function's by default), as `sam logs`; --follow goes on.
    Logs(LogsArgs),
    /// Print a sample event of a trigger the local Lambda runs.
    GenerateEvent(GenerateArgs),
    /// An order's, event's or trace's spans as a waterfall (terminal and HTML file).
    Trace(TraceArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    // A closed stdout (`eventkit-local status | head`) ends a command quietly, as it ends a
    // Unix tool, instead of panicking in `println!`. Not `run` and `invoke`: they own
    // processes and resources, which only their own shutdown stops and deletes; they print
    // on regardless.
    if !matches!(cli.command, Command::Run(_) | Command::Invoke { .. }) {
        sigpipe::reset();
    }
    let here = std::env::current_dir().context("reading the current directory")?;
    match cli.command {
        Command::Cloud { action, ports } => {
            cloud::run(action, &LocalCloud::for_user(ports)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => runtime()?.block_on(cli::app::run_application(&here, &args)),
        Command::Invoke {
            function,
            event,
            app,
        } => runtime()?.block_on(cli::app::invoke(&here, &app, &function, &event)),
        Command::Send(args) => runtime()?.block_on(cli::send::send(&args)),
        Command::Dlq { action } => runtime()?.block_on(cli::dlq::run(action)),
        Command::Status(located) => runtime()?.block_on(cli::status::status(&located)),
        Command::Logs(args) => runtime()?.block_on(cli::logs::logs(&args)),
        Command::GenerateEvent(args) => cli::generate::generate(&args),
        Command::New(args) => cli::new::new(&args),
        Command::Init(args) => cli::new::init(&args),
        Command::Trace(args) => cli::trace::trace(&args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
