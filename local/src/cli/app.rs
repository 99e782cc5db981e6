//! `run` and `invoke`: the application from its template, on the local cloud.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use eventkit_local::clients::Endpoints;
use eventkit_local::cloud::{LocalCloud, Ports};
use eventkit_local::invocation::Outcome;
use eventkit_local::logs::LogLine;
use eventkit_local::running::RunningApp;
use eventkit_local::stack::outputs;
use eventkit_local::template::find_template;
use eventkit_local::traces::receiver::Receiver;
use eventkit_local::traces::store::{span_file, SpanStore};
use eventkit_local::traces::ENDPOINT_VARIABLE;
use eventkit_local::watch::{Rebuilt, Watch};
use eventkit_local::{Binaries, LocalPipeline, PipelineOptions, StoppedBeforeRunning};
use tokio_util::sync::CancellationToken;

/// Options of `run`.
#[derive(Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Leave the resources (and the messages in them) when stopped; a later `run` with the
    /// same --stack-name takes them over.
    #[arg(long)]
    pub keep: bool,
    /// Do not watch the sources: by default a changed Rust source or manifest rebuilds the
    /// functions and restarts those whose binary changed (with --prebuilt, a replaced binary
    /// restarts its function).
    #[arg(long)]
    pub no_watch: bool,
}

/// Which application, and how it is built.
#[derive(Args, Clone)]
pub struct AppArgs {
    /// The SAM template [default: template.yaml, template.yml or template.json, the first
    /// that exists, as SAM looks for them].
    #[arg(long, short = 't')]
    pub template: Option<PathBuf>,
    /// The stack name every resource name derives from [default: local-<random>].
    #[arg(long)]
    pub stack_name: Option<String>,
    /// Build with the release profile.
    #[arg(long)]
    release: bool,
    /// Use the binaries in this directory instead of building them.
    #[arg(long, conflicts_with = "release")]
    prebuilt: Option<PathBuf>,
    /// A visibility timeout (seconds) for every declared queue instead of the template's,
    /// so that failed messages come back (and reach their DLQ) sooner. Below the timeout
    /// of a function that consumes the queue (which AWS refuses) it earns a warning.
    #[arg(long, value_name = "SECONDS")]
    pub visibility_timeout: Option<u32>,
    /// A template parameter, `Name=Value` (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    #[command(flatten)]
    ports: Ports,
}

/// The local cloud to use: the one `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_DYNAMODB` name
/// when both are set (already running, brought up by someone else), else this machine
/// user's, brought up now (or found running).
fn endpoints(ports: Ports) -> Result<Endpoints> {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.is_empty());
    if set("AWS_ENDPOINT_URL") && set("AWS_ENDPOINT_URL_DYNAMODB") {
        return Ok(Endpoints::from_env());
    }
    let cloud = LocalCloud::for_user(ports)?;
    cloud.up()?;
    Ok(Endpoints::of(&cloud))
}

impl AppArgs {
    /// The template: the one `--template` names, else the one SAM would find here.
    pub fn template(&self, here: &Path) -> Result<PathBuf> {
        let Some(named) = &self.template else {
            let found = find_template(here)?;
            // Shown as the user would type it.
            return Ok(found
                .strip_prefix(here)
                .map_or_else(|_| found.clone(), Path::to_path_buf));
        };
        if !named.is_file() {
            bail!("no template at {} (pass --template PATH)", named.display());
        }
        Ok(named.clone())
    }
}

/// Describes how to run the application, on the local cloud.
fn options(here: &Path, app: &AppArgs) -> Result<PipelineOptions> {
    let template = app.template(here)?;
    let endpoints = endpoints(app.ports)?;
    let stack_name = app.stack_name.clone().unwrap_or_else(|| {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("local-{}", &suffix[..8])
    });
    let mut options = PipelineOptions::new(template, &stack_name);
    options.endpoints = endpoints;
    options.binaries = match &app.prebuilt {
        // Absolute: the functions' processes do not run in this directory.
        Some(dir) => Binaries::Prebuilt(
            dir.canonicalize()
                .with_context(|| format!("--prebuilt {}", dir.display()))?,
        ),
        None => Binaries::Cargo {
            release: app.release,
            features: Vec::new(),
        },
    };
    options.visibility_timeout = app.visibility_timeout;
    // `logs FUNCTION` and the user find a function's log by the name the template gives it.
    options.run.logs_by_logical_id = true;
    for parameter in &app.parameters {
        let (name, value) = parameter
            .split_once('=')
            .with_context(|| format!("--parameter {parameter}: expected NAME=VALUE"))?;
        options.parameters.insert(name.into(), value.into());
    }
    Ok(options)
}

fn step(text: &str) {
    say!("  {text}");
}

/// What the template declares that does not run here, named once; what runs here and
/// would not deploy, warned about.
fn name_what_is_not_emulated(pipeline: &LocalPipeline) {
    for warning in &pipeline.stack().warnings {
        say!("warning: {warning}");
    }
    let skipped = &pipeline.stack().skipped;
    if skipped.is_empty() {
        return;
    }
    say!("not emulated locally ({}):", skipped.len());
    for (what, why) in skipped {
        say!("  {what}: {why}");
    }
}

/// Runs the application until Ctrl-C or SIGTERM, described in `.local-cloud/apps/<stack>.json` for the
/// other commands meanwhile.
pub async fn run_application(here: &Path, args: &RunArgs) -> Result<ExitCode> {
    let app = &args.app;
    let mut options = options(here, app)?;
    let project = options.project.clone();
    // A stack kept by a run that stopped is taken over; one that runs is not.
    if let Some(running) = RunningApp::find(&project, Some(&options.stack_name))
        .ok()
        .filter(RunningApp::is_alive)
    {
        bail!(
            "stack {} already runs (pid {}): stop it first, or choose another --stack-name",
            running.stack,
            running.pid
        );
    }
    let template = options.template.clone();
    say!("{}: stack {}", template.display(), options.stack_name);
    // From here on, Ctrl-C and SIGTERM stop the run in order, from the build onwards.
    let stop = CancellationToken::new();
    stop_on_signal(stop.clone())?;
    options.stop = Some(stop.clone());
    let logs = options.run.logs.clone();
    let endpoints = options.endpoints.clone();
    let watch = Watch {
        binaries: options.binaries.clone(),
        project: options.project.clone(),
        build_log: logs.join("build.log"),
    };
    // Held until the run ends: the functions export to it.
    let _receiver = receive_spans(&mut options).await?;
    let pipeline = match LocalPipeline::from_template(options, step).await {
        Ok(pipeline) => pipeline,
        Err(error) => {
            if let Some(stopped) = error.downcast_ref::<StoppedBeforeRunning>() {
                say!("{stopped}");
                return Ok(ExitCode::SUCCESS);
            }
            return Err(error);
        }
    };
    name_what_is_not_emulated(&pipeline);
    for (logical, host) in pipeline.hosts() {
        let mut lines = host.log().subscribe();
        let label = logical.clone();
        tokio::spawn(async move {
            while let Ok(line) = lines.recv().await {
                say!("{label} | {}", line.text);
            }
        });
    }
    if !pipeline.stack().outputs.is_empty() {
        say!("outputs");
        for line in outputs::describe(&pipeline.stack().outputs) {
            say!("{line}");
        }
    }
    let mut described = RunningApp::describe(&pipeline, &template, &endpoints, &logs)?;
    let state = described.save(&project)?;
    say!(
        "running; logs in {}; described in {}; {}Ctrl-C (or SIGTERM) stops{}",
        logs.display(),
        state.display(),
        if args.no_watch {
            ""
        } else {
            "watching for changes; "
        },
        if args.keep {
            " (the resources stay: --keep)"
        } else {
            " and deletes the resources"
        }
    );
    let then = match watch.binaries {
        Binaries::Cargo { .. } => "; rebuilding",
        Binaries::Prebuilt(_) => "",
    };
    let changed = |paths: &[PathBuf]| match paths {
        [one] => say!("changed: {}{then}", one.display()),
        more => say!("{} files changed{then}", more.len()),
    };
    let mut watching: Pin<Box<dyn Future<Output = Result<()>> + '_>> = if args.no_watch {
        Box::pin(std::future::pending())
    } else {
        Box::pin(pipeline.watch(&watch, changed, report_rebuild))
    };
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            watched = &mut watching => {
                // The watch cannot start (no inotify watches left, say): run on without it.
                if let Err(error) = watched {
                    say!("not watching for changes: {error:#}");
                }
                watching = Box::pin(std::future::pending());
            }
            _ = refresh.tick() => {
                described.refresh(&pipeline);
                // A failed refresh leaves the last description, still true but for counts.
                let _ = described.save(&project);
            }
        }
    }
    // The watch borrows the pipeline; it ends before the pipeline stops.
    drop(watching);
    say!("stopping");
    if args.keep {
        pipeline.stop().await;
        // Still described, as kept: `dlq`, `send` and `status` reach what is left.
        described.refresh(&pipeline);
        if let Err(error) = described.keep(&project) {
            say!("the kept stack is not described ({error:#}): `dlq` will not find it");
            RunningApp::remove(&project, &described.stack);
        }
        say!("stack {} left in place", described.stack);
    } else {
        // Described no more before anything is deleted: no command reaches a half-gone stack.
        RunningApp::remove(&project, &described.stack);
        pipeline.shut_down().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Points the functions' span exporters at a receiver of ours, started now, whose spans go
/// to `.local-cloud/traces/<stack>.jsonl`, unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set
/// here (a Jaeger, a collector): then at that.
async fn receive_spans(options: &mut PipelineOptions) -> Result<Option<Receiver>> {
    let chosen = std::env::var(ENDPOINT_VARIABLE)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty());
    let (endpoint, receiver) = match chosen {
        Some(endpoint) => {
            say!("spans go to {endpoint} ({ENDPOINT_VARIABLE})");
            (endpoint, None)
        }
        None => {
            let store = SpanStore::create(span_file(&options.project, &options.stack_name))?;
            let receiver = Receiver::start(store)
                .await
                .context("starting the span receiver")?;
            say!(
                "spans kept in {} (see one order's: eventkit-local trace <id>)",
                receiver.store().path().display()
            );
            (receiver.endpoint(), Some(receiver))
        }
    };
    options
        .run
        .environment
        .insert(ENDPOINT_VARIABLE.to_string(), endpoint);
    Ok(receiver)
}

/// Cancels `stop` on Ctrl-C (SIGINT) or SIGTERM (`kill`, a service manager, a container's
/// stop), naming which: both stop the application the same way, whatever phase it is in.
fn stop_on_signal(stop: CancellationToken) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "interrupted (Ctrl-C)",
            _ = terminate.recv() => "terminated (SIGTERM)",
        };
        say!("{name}");
        stop.cancel();
    });
    Ok(())
}

fn report_rebuild(rebuilt: &Rebuilt) {
    match rebuilt {
        Rebuilt::Failed(error) => {
            say!("build failed; the running functions stay as they are:\n{error}");
        }
        Rebuilt::Restarted(functions) if functions.is_empty() => {
            say!("no function's binary changed");
        }
        Rebuilt::Restarted(functions) => say!("restarted {}", functions.join(", ")),
    }
}

/// Invokes `function` once with the event in `event`, as `sam local invoke -e` does.
pub async fn invoke(here: &Path, app: &AppArgs, function: &str, event: &Path) -> Result<ExitCode> {
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
            Ok((outcome, host.log().lines()))
        }
        Err(error) => Err(error),
    };
    pipeline.shut_down().await;
    let (outcome, lines) = outcome?;
    say!("--- log of {function}");
    for line in lines {
        print_line(&line);
    }
    match outcome {
        Outcome::Response(response) => {
            say!("--- response");
            say!("{}", serde_json::to_string_pretty(&response)?);
            Ok(ExitCode::SUCCESS)
        }
        failed => {
            say!("--- failed: {failed}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_line(line: &LogLine) {
    say!("{}", line.text);
}
