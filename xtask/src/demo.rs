//! `cargo xtask demo`: the order pipeline, end to end, on this machine. It brings the local
//! cloud up, builds the six functions, creates what `infra/template.yaml` declares, runs
//! the functions as real Lambda binaries, loads the stock, sends the sample orders from
//! `events/orders/`, waits until the pipeline settles, prints a summary, and fails when the
//! end state differs from what the samples say it must be.

pub(crate) mod expectations;
pub(crate) mod observed;
pub mod publish;
pub(crate) mod samples;
pub(crate) mod summary;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloud::{workspace_root, LocalCloud, Ports};
use crate::functions;
use crate::local_lambda::build::function_binaries;
use crate::local_lambda::clients::{Clients, Endpoints};
use crate::local_lambda::stack::{Stack, StackOptions};
use crate::local_lambda::template::Template;
use crate::local_lambda::traces::html;
use crate::local_lambda::traces::store::{read_spans, span_file, traces_dir, StoredSpan};
use crate::local_lambda::traces::waterfall::{select, Waterfall};
use crate::local_lambda::{LocalPipeline, RunOptions};
use crate::progress::Step;
use expectations::Expected;
use publish::Entrances;
use samples::Sample;

/// Options of `demo` and `dev`.
#[derive(Args, Clone)]
pub struct DemoArgs {
    /// The local cloud's ports.
    #[command(flatten)]
    pub ports: Ports,
    /// Build and run the functions with the release profile.
    #[arg(long)]
    pub release: bool,
    /// Seconds to wait for the pipeline to settle.
    #[arg(long, default_value_t = 240)]
    pub timeout: u64,
    /// Visibility timeout (seconds) of the template's queues, replacing the declared one so
    /// that a failed record comes back in seconds rather than minutes: the local time
    /// scale. Keep it above the batching window (5 s) plus a batch's run time, or records
    /// come back while still being gathered, as they would in AWS.
    #[arg(long, default_value_t = 10)]
    pub visibility_timeout: u32,
    /// Execution environments (processes) per function.
    #[arg(long, default_value_t = 1)]
    pub environments: usize,
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<()> {
    let cloud = LocalCloud::new(args.ports)?;
    cloud.up()?;
    runtime()?.block_on(async {
        let session = Session::start(args, &cloud, "demo").await?;
        let outcome = session.demonstrate(args).await;
        session.pipeline.stop().await;
        outcome
    })
}

/// A multi-threaded tokio runtime for the local Lambda.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What `send` needs to find the running pipeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningPipeline {
    /// The stack's name.
    pub stack: String,
    /// Where events enter.
    pub entrances: Entrances,
    /// The local cloud's endpoints.
    pub localstack: String,
    /// DynamoDB Local's endpoint.
    pub dynamodb: String,
    /// The pid of the `cargo xtask` process that runs it.
    pub pid: u32,
    /// Whether it keeps running (`dev`) or stops after its summary (`demo`).
    pub keeps_running: bool,
}

impl RunningPipeline {
    /// Where the running pipeline is described.
    pub fn state_file() -> PathBuf {
        demo_dir().join("pipeline.json")
    }

    /// The recorded pipeline, if any.
    pub fn read() -> Option<Self> {
        let text = std::fs::read_to_string(Self::state_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether the process that runs it is still alive.
    pub fn alive(&self) -> bool {
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("xtask"))
    }
}

/// Where the demo's logs and state live.
pub fn demo_dir() -> PathBuf {
    workspace_root().join(".local-cloud").join("demo")
}

/// A demo pipeline up and running, with its inputs and expected end state.
pub struct Session {
    /// The running pipeline.
    pub pipeline: LocalPipeline,
    samples: Vec<Sample>,
    expected: Expected,
    entrances: Entrances,
}

impl Session {
    /// Builds, creates the stack (named `<prefix>-<random>`), starts the functions and loads
    /// the stock.
    pub async fn start(args: &DemoArgs, cloud: &LocalCloud, prefix: &str) -> Result<Self> {
        let root = workspace_root();
        let template_path = root.join("infra").join("template.yaml");
        if let Some(previous) = RunningPipeline::read() {
            if previous.alive() && previous.pid != std::process::id() {
                bail!(
                    "a pipeline already runs (stack {}, pid {}): stop it (Ctrl-C in its terminal) first",
                    previous.stack,
                    previous.pid
                );
            }
        }
        let samples = samples::load_orders(&root.join("events").join("orders"))?;
        let seed = samples::load_seed(&root.join("events").join("inventory").join("seed.json"))?;
        let expected = expectations::derive(&samples, &seed);
        let logs = demo_dir().join("logs");
        let _ = std::fs::remove_dir_all(&logs);

        let template = Template::load(&template_path)?;
        let binaries = function_binaries(&template);
        let step = Step::start(format!("building the functions ({})", binaries.join(", ")));
        let binaries_dir =
            match functions::build(&template, args.release, &logs.join("build.log")).await {
                Ok(dir) => dir,
                Err(error) => {
                    step.fail();
                    return Err(error);
                }
            };
        step.done("built");

        let endpoints = Endpoints::of(cloud);
        let clients = Clients::new(&endpoints).await;
        remove_previous_stack(&clients).await;
        let options = StackOptions {
            name: format!(
                "{prefix}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ),
            template: template_path,
            parameters: HashMap::new(),
            visibility_timeout: Some(args.visibility_timeout),
            binaries: binaries_dir,
            endpoints: endpoints.clone(),
        };
        let step = Step::start("creating what infra/template.yaml declares");
        let mut stack =
            match Stack::create(&clients, &options, |logical| step.detail(logical)).await {
                Ok(stack) => stack,
                Err(error) => {
                    step.fail();
                    return Err(error);
                }
            };
        functions::scale_record_backoff(&mut stack, args.visibility_timeout);
        step.done(&describe_stack(&stack));
        let entrances = Entrances::of(&stack)?;
        let inventory_table = stack.table("InventoryTable")?.to_string();

        let step = Step::start("starting the functions as Lambda binaries");
        let mut run_options = RunOptions::new(logs.clone());
        run_options.environments = args.environments;
        // (#34) The functions' spans, where `eventkit-local trace <id>` finds them.
        run_options.spans = Some(span_file(&root, &stack.name));
        let pipeline = match LocalPipeline::run(clients, stack, &run_options).await {
            Ok(pipeline) => pipeline,
            Err(error) => {
                step.fail();
                return Err(error);
            }
        };
        let names: Vec<String> = pipeline
            .hosts()
            .values()
            .map(|host| host.spec().name.clone())
            .collect();
        step.done(&format!(
            "{} ready; logs in {}",
            names.join(", "),
            relative(&logs)
        ));
        let running = RunningPipeline {
            stack: pipeline.stack().name.clone(),
            entrances: entrances.clone(),
            localstack: endpoints.localstack.clone(),
            dynamodb: endpoints.dynamodb.clone(),
            pid: std::process::id(),
            keeps_running: prefix == "dev",
        };
        std::fs::write(
            RunningPipeline::state_file(),
            serde_json::to_string_pretty(&running)?,
        )?;

        let step = Step::start("loading the stock (events/inventory/seed.json)");
        load_stock(pipeline.clients(), &inventory_table, &seed).await?;
        step.done(&format!("{} SKUs", seed.len()));
        Ok(Self {
            pipeline,
            samples,
            expected,
            entrances,
        })
    }

    /// Sends the samples, waits, prints the summary; fails when the end state is not the
    /// expected one.
    pub async fn demonstrate(&self, args: &DemoArgs) -> Result<()> {
        self.send_samples().await?;
        let step = Step::start("waiting for the pipeline to settle");
        let settled = self
            .pipeline
            .wait_until_settled(
                Duration::from_secs(3),
                Duration::from_secs(args.timeout),
                |backlog| {
                    step.detail(&backlog.describe());
                },
            )
            .await;
        match &settled {
            Ok(()) => step.done("nothing left in flight"),
            Err(_) => step.fail(),
        }
        let observed = observed::observe(&self.pipeline).await?;
        let mut differences = summary::print(&self.pipeline, &self.expected, &observed);
        differences.extend(observed::differences(
            &self.expected,
            &observed,
            &self.pipeline,
        ));
        if let Err(error) = settled {
            differences.insert(0, format!("{error:#}"));
        }
        // (#34) The declined order's trace: reservation, charge failure, compensation.
        if let Err(error) = self.show_declined_trace() {
            differences.push(format!("the declined order's trace: {error:#}"));
        }
        if differences.is_empty() {
            println!("\n✓ the pipeline settled as the samples say it must");
            Ok(())
        } else {
            println!("\n✗ the pipeline did not settle as expected:");
            for difference in &differences {
                println!("  - {difference}");
            }
            bail!(
                "{} difference(s) from the expected end state",
                differences.len()
            )
        }
    }

    /// Prints the waterfall of the first declined order's trace and writes it as HTML next
    /// to the spans (what `eventkit-local trace <orderId>` shows).
    fn show_declined_trace(&self) -> Result<()> {
        let Some(order) = self
            .expected
            .orders
            .iter()
            .find(|order| order.outcome == expectations::OrderOutcome::Declined)
        else {
            return Ok(());
        };
        let Some(file) = self.pipeline.span_file() else {
            bail!("no span receiver ran (OTEL_EXPORTER_OTLP_ENDPOINT names another)");
        };
        let spans = read_spans(file)?;
        // Its record spans carry its correlation id (the envelope's): every hop's.
        let selected = select(&spans, &order.correlation_id);
        if selected.is_empty() {
            bail!(
                "no span carries order {}'s correlation id {}",
                order.order_id,
                order.correlation_id
            );
        }
        let waterfall = Waterfall::build(of_order(selected, &order.correlation_id));
        println!(
            "\nthe trace of the declined order {} (reservation, charge failure, compensation):\n",
            order.order_id
        );
        println!("{}", waterfall.render_text(40).trim_end());
        let html = traces_dir(&workspace_root()).join(format!("trace-{}.html", order.order_id));
        std::fs::write(&html, html::render(&waterfall, &order.order_id))
            .with_context(|| format!("writing {}", html.display()))?;
        println!(
            "\nwaterfall written to {} (any order: eventkit-local trace <correlationId>)",
            relative(&html)
        );
        Ok(())
    }

    async fn send_samples(&self) -> Result<()> {
        let step = Step::start("sending the sample orders (events/orders/)");
        for sample in &self.samples {
            step.detail(&sample.file);
            if let Err(error) =
                publish::publish(self.pipeline.clients(), &self.entrances, &sample.text).await
            {
                step.fail();
                return Err(error.context(format!("sending {}", sample.file)));
            }
        }
        step.done(&format!(
            "{} orders published to the orders topic",
            self.samples.len()
        ));
        Ok(())
    }
}

/// Deletes the stack the previous demo or dev run left for inspection.
/// The spans of one order among `spans` (which hold whole batches: a batch's invocation links
/// every order it carried): those inside a span that carries its `correlation_id` (its
/// records, and what ran inside them, the relay's publishes of what they committed among
/// them), with the invocations they ran in.
fn of_order(spans: Vec<StoredSpan>, correlation_id: &str) -> Vec<StoredSpan> {
    let by_id: HashMap<&str, &StoredSpan> = spans
        .iter()
        .map(|span| (span.span_id.as_str(), span))
        .collect();
    let ancestors = |span: &StoredSpan| {
        let mut chain = Vec::new();
        let mut parent = span.parent_span_id.as_deref();
        while let Some(next) = parent.and_then(|id| by_id.get(id)) {
            if chain.len() > 64 {
                break;
            }
            chain.push(next.span_id.clone());
            parent = next.parent_span_id.as_deref();
        }
        chain
    };
    let mut kept: HashSet<String> = HashSet::new();
    for span in &spans {
        let chain = ancestors(span);
        let ours = span.attribute("correlation_id") == Some(correlation_id)
            || chain.iter().any(|id| {
                by_id
                    .get(id.as_str())
                    .is_some_and(|s| s.attribute("correlation_id") == Some(correlation_id))
            });
        if ours {
            kept.insert(span.span_id.clone());
            kept.extend(chain);
        }
    }
    spans
        .into_iter()
        .filter(|span| kept.contains(&span.span_id))
        .collect()
}

async fn remove_previous_stack(clients: &Clients) {
    let Some(previous) = RunningPipeline::read() else {
        return;
    };
    let step = Step::start(format!(
        "removing the previous run's stack {}",
        previous.stack
    ));
    crate::local_lambda::stack::delete_by_name(clients, &previous.stack).await;
    let _ = std::fs::remove_file(RunningPipeline::state_file());
    step.done("removed");
}

pub(crate) async fn load_stock(
    clients: &Clients,
    table: &str,
    seed: &[serde_json::Map<String, Value>],
) -> Result<()> {
    crate::seed::load(&clients.dynamodb, table, seed, true).await?;
    Ok(())
}

fn describe_stack(stack: &Stack) -> String {
    let async_queues = stack
        .functions
        .values()
        .filter(|f| f.async_queue.is_some())
        .count();
    format!(
        "{} tables, {} topic(s), {} queues, {} bus(es), {} functions (+{} delivery queues); {} not needed locally",
        stack.tables.len(),
        stack.topics.len(),
        stack.queues.len(),
        stack.buses.len(),
        stack.functions.len(),
        async_queues,
        stack.skipped.len()
    )
}

fn relative(path: &std::path::Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
