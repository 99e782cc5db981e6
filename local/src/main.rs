//! `eventkit-local`: run a SAM application's functions locally without Docker, in any
//! directory holding a template. `cargo install --path local`.
//!
//! - `cloud up | down | status | env`: LocalStack and DynamoDB Local, installed into
//!   `./.local-cloud/` on first use;
//! - `run`: build the functions, create the template's resources, run the functions with
//!   their event sources, stream their logs; Ctrl-C stops and deletes the resources;
//! - `invoke FUNCTION --event FILE`: one invocation, as `sam local invoke -e` does, printing
//!   the response and the invocation's log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use eventkit_local::clients::Endpoints;
use eventkit_local::cloud::{self, LocalCloud, Ports};
use eventkit_local::invocation::Outcome;
use eventkit_local::logs::LogLine;
use eventkit_local::{Binaries, LocalPipeline, PipelineOptions};

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
    /// The local cloud (LocalStack and DynamoDB Local) of this directory.
    Cloud {
        #[command(subcommand)]
        action: cloud::Action,
        #[command(flatten)]
        ports: Ports,
    },
    /// Run the application until Ctrl-C: resources, functions, event sources, logs.
    Run(AppArgs),
    /// Invoke one function once with an event file; prints the response and its log.
    Invoke {
        /// The function's logical id in the template.
        function: String,
        /// The event (JSON) the function receives.
        #[arg(long, short = 'e')]
        event: PathBuf,
        #[command(flatten)]
        app: AppArgs,
    },
}

/// Which application, and how it is built.
#[derive(Args, Clone)]
struct AppArgs {
    /// The SAM template.
    #[arg(long, short = 't', default_value = "template.yaml")]
    template: PathBuf,
    /// The stack name every resource name derives from [default: local-<random>].
    #[arg(long)]
    stack_name: Option<String>,
    /// Build with the release profile.
    #[arg(long)]
    release: bool,
    /// Use the binaries in this directory instead of building them.
    #[arg(long, conflicts_with = "release")]
    prebuilt: Option<PathBuf>,
    /// A template parameter, `Name=Value` (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    #[command(flatten)]
    ports: Ports,
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
    let here = std::env::current_dir().context("reading the current directory")?;
    match cli.command {
        Command::Cloud { action, ports } => {
            cloud::run(action, &LocalCloud::in_dir(&here, ports)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(app) => runtime()?.block_on(run_application(&here, &app)),
        Command::Invoke {
            function,
            event,
            app,
        } => runtime()?.block_on(invoke(&here, &app, &function, &event)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The local cloud to use: the one `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_DYNAMODB` name
/// when both are set (already running, brought up by someone else), else this directory's,
/// brought up now.
fn endpoints(here: &Path, ports: Ports) -> Result<Endpoints> {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.is_empty());
    if set("AWS_ENDPOINT_URL") && set("AWS_ENDPOINT_URL_DYNAMODB") {
        return Ok(Endpoints::from_env());
    }
    let cloud = LocalCloud::in_dir(here, ports)?;
    cloud.up()?;
    Ok(Endpoints::of(&cloud))
}

/// Describes how to run the application, on the local cloud.
fn options(here: &Path, app: &AppArgs) -> Result<PipelineOptions> {
    if !app.template.is_file() {
        bail!(
            "no template at {} (pass --template PATH)",
            app.template.display()
        );
    }
    let endpoints = endpoints(here, app.ports)?;
    let stack_name = app.stack_name.clone().unwrap_or_else(|| {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("local-{}", &suffix[..8])
    });
    let mut options = PipelineOptions::new(&app.template, &stack_name);
    options.endpoints = endpoints;
    options.binaries = match &app.prebuilt {
        Some(dir) => Binaries::Prebuilt(dir.clone()),
        None => Binaries::Cargo {
            release: app.release,
        },
    };
    for parameter in &app.parameters {
        let (name, value) = parameter
            .split_once('=')
            .with_context(|| format!("--parameter {parameter}: expected NAME=VALUE"))?;
        options.parameters.insert(name.into(), value.into());
    }
    Ok(options)
}

fn step(text: &str) {
    println!("  {text}");
}

/// What the template declares that does not run here, named once.
fn name_what_is_not_emulated(pipeline: &LocalPipeline) {
    let skipped = &pipeline.stack().skipped;
    if skipped.is_empty() {
        return;
    }
    println!("not emulated locally ({}):", skipped.len());
    for (what, why) in skipped {
        println!("  {what}: {why}");
    }
}

async fn run_application(here: &Path, app: &AppArgs) -> Result<ExitCode> {
    let options = options(here, app)?;
    println!("{}: stack {}", app.template.display(), options.stack_name);
    let logs = options.run.logs.clone();
    let pipeline = LocalPipeline::from_template(options, step).await?;
    name_what_is_not_emulated(&pipeline);
    for (logical, host) in pipeline.hosts() {
        let mut lines = host.log().subscribe();
        let label = logical.clone();
        tokio::spawn(async move {
            while let Ok(line) = lines.recv().await {
                println!("{label} | {}", line.text);
            }
        });
    }
    println!(
        "running; logs in {}; Ctrl-C stops and deletes the resources",
        logs.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("stopping");
    pipeline.shut_down().await;
    Ok(ExitCode::SUCCESS)
}

async fn invoke(here: &Path, app: &AppArgs, function: &str, event: &Path) -> Result<ExitCode> {
    let payload: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(event).with_context(|| format!("reading {}", event.display()))?,
    )
    .with_context(|| format!("{} is not JSON", event.display()))?;
    let mut options = options(here, app)?;
    options.run.event_sources = false;
    let pipeline = LocalPipeline::from_template(options, step).await?;
    name_what_is_not_emulated(&pipeline);
    let outcome = match pipeline.host(function) {
        Ok(host) => {
            let outcome = host.invoke(payload).await;
            println!("--- log of {function}");
            for line in host.log().lines() {
                print_line(&line);
            }
            Ok(outcome)
        }
        Err(error) => Err(error),
    };
    pipeline.shut_down().await;
    match outcome? {
        Outcome::Response(response) => {
            println!("--- response");
            println!("{}", serde_json::to_string_pretty(&response)?);
            Ok(ExitCode::SUCCESS)
        }
        failed => {
            println!("--- failed: {failed}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_line(line: &LogLine) {
    println!("{}", line.text);
}
