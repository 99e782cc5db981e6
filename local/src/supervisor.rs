//! One execution environment of a function: its binary run as a child process with the
//! environment Lambda gives it, restarted as Lambda would replace the environment when the
//! process crashes, fails to initialise or runs past its timeout. Output goes to the
//! function's log, never to the terminal.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::invocation::{Invocation, Outcome};
use super::logs::FunctionLog;
use super::output::ProcessOutput;
use super::runtime_api::{FunctionFacts, InvocationQueue, RuntimeApi, Signal};
use super::spec::FunctionSpec;
use super::stats::HostStats;

/// A process that lived at least this long before crashing is restarted at once.
const HEALTHY_UPTIME: Duration = Duration::from_secs(5);
/// The longest wait between restarts of a process that keeps crashing.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the host can do to a running environment.
#[derive(Debug, Default)]
pub struct EnvironmentControl {
    current: Mutex<Option<Arc<RuntimeApi>>>,
    pid: AtomicU32,
    restart: Notify,
}

impl EnvironmentControl {
    fn current(&self) -> Option<Arc<RuntimeApi>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the current process finished its init and waits for (or runs) invocations.
    pub fn ready(&self) -> bool {
        self.current().is_some_and(|api| api.reached_next())
    }

    /// Whether the current process is running an invocation.
    pub fn busy(&self) -> bool {
        self.current().is_some_and(|api| api.busy())
    }

    /// The current process's pid (0 when none runs).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// Replaces the process with a new one (for a rebuilt binary); an invocation in flight
    /// fails as it would when Lambda replaces an environment.
    pub fn restart(&self) {
        self.restart.notify_one();
    }
}

/// The channels an environment shares with its host.
pub struct EnvironmentLinks {
    /// The function's invocation queue.
    pub queue: InvocationQueue,
    /// For invocations handed back by a process that stopped before taking them.
    pub requeue: mpsc::UnboundedSender<Invocation>,
    /// The function's log.
    pub log: FunctionLog,
    /// The function's counters.
    pub stats: Arc<HostStats>,
    /// What the host can do to this environment.
    pub control: Arc<EnvironmentControl>,
    /// Cancelled when the pipeline stops.
    pub stopped: CancellationToken,
}

/// Runs the environment until the pipeline stops: start, supervise, restart.
pub async fn supervise(spec: Arc<FunctionSpec>, links: EnvironmentLinks) {
    let mut backoff = Duration::from_millis(250);
    while !links.stopped.is_cancelled() {
        let started = Instant::now();
        let crashed = match run_once(&spec, &links).await {
            Ok(crashed) => crashed,
            Err(error) => {
                links.log.platform(
                    "platform.initError",
                    json!({"errorMessage": format!("{error:#}")}),
                );
                true
            }
        };
        if links.stopped.is_cancelled() {
            break;
        }
        links.stats.restarts.fetch_add(1, Ordering::SeqCst);
        if crashed && started.elapsed() < HEALTHY_UPTIME {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = links.stopped.cancelled() => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            backoff = Duration::from_millis(250);
        }
    }
}

/// One process's life; true when it ended by crashing (not by a timeout, a restart or the
/// pipeline stopping).
async fn run_once(spec: &FunctionSpec, links: &EnvironmentLinks) -> Result<bool> {
    let (signals_tx, mut signals) = mpsc::unbounded_channel();
    let facts = FunctionFacts {
        arn: spec.arn.clone(),
        timeout: spec.timeout,
        memory_mb: spec.memory_mb,
    };
    let api = Arc::new(
        RuntimeApi::start(
            facts,
            links.queue.clone(),
            links.requeue.clone(),
            links.log.clone(),
            signals_tx,
        )
        .await?,
    );
    let mut child = match spawn(spec, &api) {
        Ok(child) => child,
        Err(error) => {
            api.stop(|| Outcome::Crashed(format!("{error:#}")));
            return Err(error);
        }
    };
    let pid = child.id().unwrap_or(0);
    *links
        .control
        .current
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(api.clone());
    links.control.pid.store(pid, Ordering::SeqCst);
    let output = match ProcessOutput::copy(&mut child, &links.log) {
        Ok(output) => output,
        Err(error) => {
            let _ = child.start_kill();
            api.stop(|| Outcome::Crashed(format!("reading its output: {error}")));
            return Err(error).context("reading the process's output");
        }
    };
    // The report line of each invocation comes after the lines the function wrote for it.
    api.attach_output(output.drain());

    let ended = tokio::select! {
        status = child.wait() => Ended::Exited(status.map_or_else(|e| e.to_string(), |s| s.to_string())),
        Some(signal) = signals.recv() => Ended::Signalled(signal),
        () = links.control.restart.notified() => Ended::Replaced,
        () = links.stopped.cancelled() => Ended::Stopped,
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    // The last lines (a panic message) may still be in the pipes.
    output.drain().drain();
    let last_stderr = output.last_stderr_line();
    let _ = tokio::time::timeout(Duration::from_secs(1), output.finish()).await;
    let (reason, crashed) = match ended {
        Ended::Exited(status) => {
            let mut reason = format!("the process exited ({status})");
            if let Some(line) = last_stderr {
                reason.push_str(&format!("; its last stderr line: {line}"));
            }
            (reason, true)
        }
        Ended::Signalled(Signal::TimedOut(request_id)) => {
            (format!("invocation {request_id} timed out"), false)
        }
        Ended::Signalled(Signal::InitError(message)) => (format!("init error: {message}"), true),
        Ended::Replaced => ("the environment was replaced".to_string(), false),
        Ended::Stopped => ("the pipeline stopped".to_string(), false),
    };
    links.control.pid.store(0, Ordering::SeqCst);
    api.stop(|| Outcome::Crashed(reason.clone()));
    if crashed {
        links.stats.crashes.fetch_add(1, Ordering::SeqCst);
        if !api.reached_next() {
            fail_one_queued(links, &reason);
        }
    }
    links.log.platform(
        "platform.processEnded",
        json!({"pid": pid, "reason": reason, "crashed": crashed}),
    );
    Ok(crashed)
}

/// A process that dies during init fails the invocation that was waiting for it, as Lambda
/// fails an invocation whose environment cannot initialise (otherwise it would wait forever
/// behind a function that never starts).
fn fail_one_queued(links: &EnvironmentLinks, reason: &str) {
    let Ok(mut queue) = links.queue.try_lock() else {
        return; // another process is taking work: it is alive
    };
    if let Ok(invocation) = queue.try_recv() {
        let _ = invocation
            .reply
            .send(Outcome::Crashed(format!("init failed: {reason}")));
    }
}

fn spawn(spec: &FunctionSpec, api: &RuntimeApi) -> Result<Child> {
    let mut command = Command::new(&spec.binary);
    command
        // Lambda's environment is exactly what it sets, nothing of the caller's shell.
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&spec.environment)
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own process group: a Ctrl-C in the terminal reaches the supervisor, which
        // then stops the function in order.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = spec.binary.parent() {
        command.current_dir(dir);
    }
    command
        .spawn()
        .with_context(|| format!("starting {}", spec.binary.display()))
}

/// Why a process's life ended.
enum Ended {
    Exited(String),
    Signalled(Signal),
    Replaced,
    Stopped,
}
