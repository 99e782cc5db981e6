//! A function hosted locally: its invocation queue and its execution environments (each a
//! process of the real binary behind its own Runtime API). Event sources call
//! [`FunctionHost::invoke`] and get the outcome, as Lambda's services do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::invocation::{Invocation, Outcome};
use super::logs::FunctionLog;
pub use super::spec::FunctionSpec;
pub use super::stats::{HostCounts, HostStats};
use super::supervisor::{supervise, EnvironmentControl, EnvironmentLinks};

/// A function with its running environments.
#[derive(Debug)]
pub struct FunctionHost {
    spec: Arc<FunctionSpec>,
    queue: mpsc::UnboundedSender<Invocation>,
    environments: Vec<Arc<EnvironmentControl>>,
    stats: Arc<HostStats>,
    log: FunctionLog,
    pending: Arc<AtomicU64>,
}

impl FunctionHost {
    /// Starts `environments` processes of the function (at least one); they run until
    /// `stopped` is cancelled.
    pub fn start(
        spec: FunctionSpec,
        environments: usize,
        log: FunctionLog,
        stopped: &CancellationToken,
    ) -> Self {
        let spec = Arc::new(spec);
        let (queue, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(tokio::sync::Mutex::new(receiver));
        let stats = Arc::new(HostStats::default());
        let controls: Vec<Arc<EnvironmentControl>> = (0..environments.max(1))
            .map(|_| Arc::new(EnvironmentControl::default()))
            .collect();
        for control in &controls {
            let links = EnvironmentLinks {
                queue: shared.clone(),
                requeue: queue.clone(),
                log: log.clone(),
                stats: stats.clone(),
                control: control.clone(),
                stopped: stopped.clone(),
            };
            tokio::spawn(supervise(spec.clone(), links));
        }
        Self {
            spec,
            queue,
            environments: controls,
            stats,
            log,
            pending: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The function as declared.
    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// The function's log.
    pub fn log(&self) -> &FunctionLog {
        &self.log
    }

    /// Invokes the function with `payload` and waits for the outcome.
    pub async fn invoke(&self, payload: Value) -> Outcome {
        self.invoke_identified(payload).await.1
    }

    /// Invokes the function with `payload` and waits for the outcome, with the invocation's
    /// request id (what its log lines name).
    pub async fn invoke_identified(&self, payload: Value) -> (String, Outcome) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (reply, outcome) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            trace_id: trace_header(),
            reply,
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        let outcome = if self.queue.send(invocation).is_ok() {
            outcome
                .await
                .unwrap_or_else(|_| Outcome::Crashed("the local Lambda stopped".into()))
        } else {
            Outcome::Crashed("the local Lambda stopped".into())
        };
        self.pending.fetch_sub(1, Ordering::SeqCst);
        self.stats.invocations.fetch_add(1, Ordering::SeqCst);
        if !outcome.succeeded() {
            self.stats.errors.fetch_add(1, Ordering::SeqCst);
        }
        if matches!(outcome, Outcome::TimedOut(_)) {
            self.stats.timeouts.fetch_add(1, Ordering::SeqCst);
        }
        (request_id, outcome)
    }

    /// Invocations queued or running.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    /// How many of its environments have a process that finished its init.
    pub fn ready_environments(&self) -> usize {
        self.environments.iter().filter(|e| e.ready()).count()
    }

    /// How many execution environments it has.
    pub fn environments(&self) -> usize {
        self.environments.len()
    }

    /// The counters so far.
    pub fn counts(&self) -> HostCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        HostCounts {
            invocations: read(&self.stats.invocations),
            errors: read(&self.stats.errors),
            crashes: read(&self.stats.crashes),
            timeouts: read(&self.stats.timeouts),
            restarts: read(&self.stats.restarts),
        }
    }

    /// Waits until every environment finished its init and asked for work.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        while !self.environments.iter().all(|env| env.ready()) {
            if started.elapsed() > timeout {
                bail!(
                    "{} did not start within {}s; see {}",
                    self.spec.logical_id,
                    timeout.as_secs(),
                    self.log.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Replaces every process (the binary was rebuilt).
    pub fn restart(&self) {
        self.environments.iter().for_each(|env| env.restart());
    }

    /// Kills (SIGKILL) the process running an invocation, as a crash would; returns its
    /// pid, or `None` when no process is busy.
    pub fn kill_busy_process(&self) -> Option<u32> {
        let busy = self.environments.iter().find(|env| env.busy())?;
        let pid = busy.pid();
        let raw = i32::try_from(pid).ok().filter(|pid| *pid > 0)?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(raw),
            nix::sys::signal::Signal::SIGKILL,
        )
        .ok()?;
        Some(pid)
    }
}

/// An X-Ray trace header for a new trace, as Lambda passes it with active tracing.
fn trace_header() -> String {
    let seconds = chrono::Utc::now().timestamp();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{seconds:08x}-{};Parent={};Sampled=1",
        &id[..24],
        &id[16..32]
    )
}
