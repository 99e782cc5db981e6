//! eventkit-local: a SAM application's functions run locally as their real binaries against
//! a Runtime API of our own, invoked by event sources that behave as Lambda's do, over
//! resources created from the template in the local cloud (LocalStack and DynamoDB Local,
//! see [`cloud`]). No Docker is involved. The `eventkit-local` CLI, `cargo xtask demo | dev`
//! and the end-to-end tests all run applications with it.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use eventkit_local::{LocalPipeline, PipelineOptions};
//! let options = PipelineOptions::new("template.yaml", "my-app");
//! let pipeline = LocalPipeline::from_template(options, |step| println!("{step}")).await?;
//! // ... send events, watch `pipeline.backlog()` ...
//! pipeline.shut_down().await;
//! # Ok(()) }
//! ```
//!
//! The pieces, from the bottom up:
//! - [`template`]: the template read and its intrinsic functions resolved; [`binary`]: which
//!   binary each function runs, decided as `sam build` decides it;
//! - [`stack`] and [`resources`]: the resources created under one stack name;
//! - [`runtime_api`], [`supervisor`] and [`host`]: a function's processes, each behind its own
//!   Runtime API server, restarted when they crash or time out ([`spec`] says what they run,
//!   [`stats`] counts what happened);
//! - [`event_sources`]: SQS polling with partial batch responses, DynamoDB stream reading
//!   per shard (partial batch responses, bisection, retries, OnFailure destinations), and
//!   asynchronous invocation with retries and dead-letter queues for SNS and EventBridge;
//! - [`logs`]: each function's log file, parsed for metrics and journeys;
//! - [`traces`]: the functions' spans received over OTLP, kept, and laid out as a waterfall.

#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod batch_entries;
pub mod binary;
pub mod build;
pub mod clients;
pub mod cloud;
pub mod dead_letters;
pub mod event_sources;
pub mod functions;
pub mod host;
pub mod invocation;
pub mod kept;
pub mod launch;
pub mod logs;
pub mod output;
pub mod progress;
pub mod resolver;
pub mod resources;
pub mod running;
pub mod runtime_api;
pub mod sample_events;
pub mod scaffold;
pub mod send;
pub mod spec;
pub mod stack;
pub mod stats;
pub mod supervisor;
pub mod template;
pub mod traces;
pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use tokio_util::sync::CancellationToken;

pub use launch::{Binaries, PipelineOptions, StoppedBeforeRunning};

use clients::Clients;
use event_sources::stream_poller::InFlight;
use host::FunctionHost;
use logs::FunctionLog;
use resources::QueueInfo;
use stack::Stack;

/// How the functions run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where each function's log goes (`<dir>/<binary>.log`, or `<dir>/<logical id>.log`).
    pub logs: PathBuf,
    /// Whether each log file is named after the function's logical id (as `sam logs -n`
    /// names a function) rather than after its binary.
    pub logs_by_logical_id: bool,
    /// Execution environments (processes) per function.
    pub environments: usize,
    /// Waits before each retry of a failed asynchronous invocation (Lambda: ~1 min, ~2 min),
    /// each at least the function's timeout (see `async_invoker::retry_delay`).
    pub async_retry_delays: Vec<Duration>,
    /// How long a function may take to initialise.
    pub ready_timeout: Duration,
    /// The wait before a failed stream batch is retried (at least the function's timeout
    /// after a crash or timeout).
    pub stream_retry_delay: Duration,
    /// Whether the event sources run (off for a single `invoke`).
    pub event_sources: bool,
    /// Variables every function gets unless its template sets them (`run` passes its span
    /// receiver's endpoint as `OTEL_EXPORTER_OTLP_ENDPOINT` this way).
    pub environment: BTreeMap<String, String>,
    /// Where the functions' spans are kept: the pipeline starts a span receiver of its own
    /// ([`traces::receiver`]) writing there, and the functions export to it, unless an
    /// OTLP endpoint is named already (in [`environment`](Self::environment), or in this
    /// process's `OTEL_EXPORTER_OTLP_ENDPOINT`: a Jaeger, a collector). `None`: no receiver.
    pub spans: Option<PathBuf>,
}

impl RunOptions {
    /// One environment per function, asynchronous retries after 1 s and 2 s, or the
    /// function's timeout when that is longer.
    pub fn new(logs: PathBuf) -> Self {
        Self {
            logs,
            logs_by_logical_id: false,
            environments: 1,
            async_retry_delays: vec![Duration::from_secs(1), Duration::from_secs(2)],
            ready_timeout: Duration::from_secs(60),
            stream_retry_delay: Duration::from_millis(500),
            event_sources: true,
            environment: BTreeMap::new(),
            spans: None,
        }
    }
}

/// Adds `given` to a function's `environment`, each variable unless the template set it; a
/// function that exports spans is named in them by its logical id (its function name
/// carries the stack's), unless its template names it.
fn give_environment(
    logical: &str,
    environment: &mut BTreeMap<String, String>,
    given: &BTreeMap<String, String>,
) {
    for (variable, value) in given {
        environment
            .entry(variable.clone())
            .or_insert_with(|| value.clone());
    }
    if environment.contains_key(traces::ENDPOINT_VARIABLE) {
        environment
            .entry("OTEL_SERVICE_NAME".to_string())
            .or_insert_with(|| logical.to_string());
    }
}

#[cfg(test)]
mod environment_tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn the_span_endpoint_is_given_unless_the_template_sets_one() {
        let receiver = map(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:41000")]);
        let mut plain = map(&[("TABLE", "orders")]);
        give_environment("InventoryFunction", &mut plain, &receiver);
        assert_eq!(
            plain,
            map(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:41000"),
                ("OTEL_SERVICE_NAME", "InventoryFunction"),
                ("TABLE", "orders"),
            ])
        );

        let mut to_jaeger = map(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SERVICE_NAME", "inventory"),
        ]);
        let before = to_jaeger.clone();
        give_environment("InventoryFunction", &mut to_jaeger, &receiver);
        assert_eq!(to_jaeger, before);

        let mut untraced = map(&[("TABLE", "orders")]);
        give_environment("InventoryFunction", &mut untraced, &BTreeMap::new());
        assert_eq!(
            untraced,
            map(&[("TABLE", "orders")]),
            "no endpoint, no service name"
        );
    }
}

/// The span receiver [`RunOptions::spans`] asks for, started; `None` when it asks for none
/// or an OTLP endpoint is named already.
async fn receive_spans(options: &RunOptions) -> Result<Option<traces::receiver::Receiver>> {
    let named = options
        .environment
        .get(traces::ENDPOINT_VARIABLE)
        .cloned()
        .or_else(|| std::env::var(traces::ENDPOINT_VARIABLE).ok())
        .is_some_and(|endpoint| !endpoint.trim().is_empty());
    let Some(file) = options.spans.as_ref().filter(|_| !named) else {
        return Ok(None);
    };
    let store = traces::store::SpanStore::create(file.clone())?;
    let receiver = traces::receiver::Receiver::start(store)
        .await
        .context("starting the span receiver")?;
    Ok(Some(receiver))
}

/// Messages still on their way: per polled queue (visible, in flight or delayed), and
/// invocations queued or running.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Messages per queue name, for queues that have any.
    pub queued: BTreeMap<String, u64>,
    /// Invocations queued or running, per function.
    pub invocations: BTreeMap<String, u64>,
    /// Stream records read and not yet done or given up, per table.
    pub streamed: BTreeMap<String, u64>,
}

impl Backlog {
    /// Whether nothing is on its way.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.invocations.is_empty() && self.streamed.is_empty()
    }

    /// A one-line description, for progress display.
    pub fn describe(&self) -> String {
        let queued: u64 = self.queued.values().sum();
        let running: u64 = self.invocations.values().sum();
        let streamed: u64 = self.streamed.values().sum();
        format!(
            "{queued} message(s) queued, {streamed} stream record(s) in flight, {running} \
             invocation(s) running"
        )
    }
}

/// The stack's functions running, with their event sources.
pub struct LocalPipeline {
    clients: Clients,
    stack: Stack,
    hosts: BTreeMap<String, Arc<FunctionHost>>,
    /// Per stream event source: its table and its records in flight.
    streams: Vec<(String, InFlight)>,
    /// The span receiver the functions export to, when the pipeline started one.
    receiver: Option<traces::receiver::Receiver>,
    /// The event sources' tasks, awaited by [`LocalPipeline::stop`].
    event_sources: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stopped: CancellationToken,
}

/// How long a stop waits for the event sources to hand back what they received and did
/// not invoke yet (their receives wait at most 2 s).
const HAND_BACK: Duration = Duration::from_secs(5);

impl LocalPipeline {
    /// Starts every function of `stack` and waits until each finished its init, then starts
    /// the event sources. When a function cannot start, the stack's resources are deleted.
    pub async fn run(clients: Clients, mut stack: Stack, options: &RunOptions) -> Result<Self> {
        let receiver = receive_spans(options).await?;
        let mut environment = options.environment.clone();
        if let Some(receiver) = &receiver {
            environment.insert(traces::ENDPOINT_VARIABLE.to_string(), receiver.endpoint());
        }
        // Kept in the stack's specs, so that a restart after a rebuild keeps them too.
        for (logical, function) in &mut stack.functions {
            give_environment(logical, &mut function.spec.environment, &environment);
        }
        let mut pipeline = Self {
            clients,
            stack,
            hosts: BTreeMap::new(),
            streams: Vec::new(),
            receiver,
            event_sources: std::sync::Mutex::default(),
            stopped: CancellationToken::new(),
        };
        if let Err(error) = pipeline.start_functions(options).await {
            // Nothing will run on the resources created for it: they go again.
            pipeline.shut_down().await;
            return Err(error);
        }
        if options.event_sources {
            pipeline.start_event_sources(options);
        }
        Ok(pipeline)
    }

    /// Starts every function's environments and waits until each finished its init.
    async fn start_functions(&mut self, options: &RunOptions) -> Result<()> {
        for (logical, function) in &self.stack.functions {
            let stem = function.spec.binary.file_name().map_or_else(
                || logical.clone(),
                |name| name.to_string_lossy().into_owned(),
            );
            let file = if options.logs_by_logical_id {
                logical
            } else {
                &stem
            };
            let log = FunctionLog::create(&options.logs, logical, file)?;
            if !function.spec.binary.is_file() {
                bail!(
                    "{logical}: binary {} not found (build it with cargo build --bin {stem})",
                    function.spec.binary.display()
                );
            }
            let host = FunctionHost::start(
                function.spec.clone(),
                options.environments,
                log,
                &self.stopped,
            );
            self.hosts.insert(logical.clone(), Arc::new(host));
        }
        for host in self.hosts.values() {
            host.wait_ready(options.ready_timeout).await?;
        }
        Ok(())
    }

    fn start_event_sources(&mut self, options: &RunOptions) {
        let mut streams = Vec::new();
        let mut tasks = Vec::new();
        for (logical, function) in &self.stack.functions {
            let Some(host) = self.hosts.get(logical) else {
                continue;
            };
            for source in &function.queue_sources {
                // More pollers than environments would only queue batches at the host.
                let pollers = usize::try_from(source.max_concurrency)
                    .unwrap_or(1)
                    .clamp(1, options.environments.max(1));
                for _ in 0..pollers {
                    tasks.push(tokio::spawn(event_sources::queue_poller::poll_queue(
                        self.clients.clone(),
                        source.clone(),
                        host.clone(),
                        self.stopped.clone(),
                    )));
                }
            }
            for source in &function.stream_sources {
                let in_flight = InFlight::default();
                streams.push((source.table.clone(), in_flight.clone()));
                tasks.push(tokio::spawn(event_sources::stream_poller::poll_stream(
                    self.clients.clone(),
                    source.clone(),
                    host.clone(),
                    in_flight,
                    options.stream_retry_delay,
                    self.stopped.clone(),
                )));
            }
            if let Some(queue) = &function.async_queue {
                for schedule in &function.schedules {
                    tasks.push(tokio::spawn(event_sources::schedule::run_schedule(
                        self.clients.clone(),
                        schedule.clone(),
                        queue.clone(),
                        self.stopped.clone(),
                    )));
                }
            }
            tasks.push(tokio::spawn(event_sources::async_invoker::invoke_async(
                self.clients.clone(),
                function.clone(),
                host.clone(),
                options.async_retry_delays.clone(),
                self.stopped.clone(),
            )));
        }
        self.streams = streams;
        if let Ok(mut running) = self.event_sources.lock() {
            running.extend(tasks);
        }
    }

    /// The file the functions' spans are kept in, when the pipeline received them itself
    /// ([`RunOptions::spans`]): read it with [`traces::store::read_spans`].
    pub fn span_file(&self) -> Option<&std::path::Path> {
        self.receiver
            .as_ref()
            .map(|receiver| receiver.store().path())
    }

    /// The OTLP endpoint of the pipeline's span receiver, when it started one: where another
    /// producer of the same traces (a test's, the demo's) exports its spans.
    pub fn span_endpoint(&self) -> Option<String> {
        self.receiver
            .as_ref()
            .map(traces::receiver::Receiver::endpoint)
    }

    /// The SDK clients.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The created resources.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The function declared as `logical`.
    pub fn host(&self, logical: &str) -> Result<&Arc<FunctionHost>> {
        self.hosts
            .get(logical)
            .with_context(|| format!("the template declares no function {logical}"))
    }

    /// Every function, by logical id.
    pub fn hosts(&self) -> &BTreeMap<String, Arc<FunctionHost>> {
        &self.hosts
    }

    /// What is still on its way through the pipeline.
    pub async fn backlog(&self) -> Result<Backlog> {
        let mut backlog = Backlog::default();
        for queue in self.polled_queues() {
            let count = queue_depth(&self.clients, &queue).await?;
            if count > 0 {
                backlog.queued.insert(queue.name.clone(), count);
            }
        }
        for (table, in_flight) in &self.streams {
            if in_flight.get() > 0 {
                *backlog.streamed.entry(table.clone()).or_default() += in_flight.get();
            }
        }
        for (logical, host) in &self.hosts {
            if host.pending() > 0 {
                backlog.invocations.insert(logical.clone(), host.pending());
            }
        }
        Ok(backlog)
    }

    /// Waits until nothing has been on its way for `quiet` (SNS and EventBridge deliver a
    /// moment after they accept), or fails after `timeout` naming what is still pending.
    pub async fn wait_until_settled(
        &self,
        quiet: Duration,
        timeout: Duration,
        mut progress: impl FnMut(&Backlog),
    ) -> Result<()> {
        let started = Instant::now();
        let mut quiet_since: Option<Instant> = None;
        loop {
            let backlog = self.backlog().await?;
            progress(&backlog);
            if backlog.is_empty() {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= quiet {
                    return Ok(());
                }
            } else {
                quiet_since = None;
            }
            if started.elapsed() > timeout {
                bail!(
                    "the pipeline did not settle within {}s: {:?}",
                    timeout.as_secs(),
                    backlog
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The queues the functions consume (declared and delivery queues).
    pub fn polled_queues(&self) -> Vec<QueueInfo> {
        let mut queues: Vec<QueueInfo> = self
            .stack
            .functions
            .values()
            .flat_map(|f| {
                f.queue_sources
                    .iter()
                    .map(|s| s.queue.clone())
                    .chain(f.async_queue.clone())
            })
            .collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        queues.dedup();
        queues
    }

    /// The messages in each dead-letter queue of the stack (left in place).
    pub async fn dead_letters(&self) -> Result<BTreeMap<String, Vec<Message>>> {
        let mut found = BTreeMap::new();
        for (logical, queue) in self.stack.dead_letter_queues() {
            found.insert(logical, peek(&self.clients, &queue).await?);
        }
        Ok(found)
    }

    /// Stops the event sources and the functions' processes. Returns once the event sources
    /// handed back what they had received and not invoked (a few seconds at most), so that
    /// a stack left in place loses no time to messages hidden by a run that is gone.
    pub async fn stop(&self) {
        self.stopped.cancel();
        let tasks = self
            .event_sources
            .lock()
            .map(|mut running| std::mem::take(&mut *running))
            .unwrap_or_default();
        let _ = tokio::time::timeout(HAND_BACK, async {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
    }

    /// Stops everything and deletes the stack's resources.
    pub async fn shut_down(mut self) {
        self.stop().await;
        // Give the supervisors a moment to stop their processes in order.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stack.delete(&self.clients).await;
    }
}

impl Drop for LocalPipeline {
    fn drop(&mut self) {
        // The processes are killed with their supervisors (kill on drop).
        self.stopped.cancel();
    }
}

/// Messages in `queue`: visible, in flight and delayed.
pub async fn queue_depth(clients: &Clients, queue: &QueueInfo) -> Result<u64> {
    let output = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .with_context(|| format!("reading the depth of {}", queue.name))?;
    Ok(output
        .attributes()
        .map(|attributes| {
            attributes
                .values()
                .filter_map(|value| value.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0))
}

/// Every message of `queue`, received and handed back (visible again) before this returns,
/// so that a second read right after sees the same messages.
pub async fn peek(clients: &Clients, queue: &QueueInfo) -> Result<Vec<Message>> {
    dead_letters::read_all(&clients.sqs, queue).await
}
