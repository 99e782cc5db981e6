//! `cargo xtask chaos`: the exactly-once promise, measured. The order pipeline runs locally
//! as in the demo (real binaries, the local cloud, the relay on the outbox's stream) while
//! thousands of generated orders flow through it, a share of them sent several times, and
//! faults are injected ([`faults`]): processes killed mid-batch, crashes at the dangerous
//! points, DynamoDB failing and going down, publishing failing, orders padded near the
//! carriers' limits ([`load`]). Once the faults stop and
//! the pipeline settles, the invariants are read from its tables and queues
//! ([`invariants`]), and the run reports what was lost and what was doubled
//! ([`report`]). It fails if either is not zero.

pub mod cost;
pub mod document;
pub mod drain;
pub mod faults;
pub mod invariants;
pub mod late;
pub mod load;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cloud::{workspace_root, LocalCloud, Ports};
use crate::demo::expectations::derive;
use crate::demo::publish::{publish, Entrances, TopicQueues};
use crate::functions;
use crate::local_lambda::clients::{Clients, Endpoints};
use crate::local_lambda::stack::{Stack, StackOptions};
use crate::local_lambda::template::Template;
use crate::local_lambda::{LocalPipeline, RunOptions};
use crate::progress::Step;
use faults::{FaultPlan, Injector};
use report::Report;

/// Options of `cargo xtask chaos`.
#[derive(Args, Clone)]
pub struct ChaosArgs {
    /// The local cloud's ports.
    #[command(flatten)]
    pub ports: Ports,
    /// Distinct orders to send.
    #[arg(long, default_value_t = 10_000)]
    pub orders: usize,
    /// Share of the orders sent 2 to 5 times.
    #[arg(long, default_value_t = 0.3)]
    pub duplicate_share: f64,
    /// Share of the orders padded near the carriers' limits (at least two if not zero):
    /// half within what every carrier on their way holds, to be carried whole, half too
    /// large for an outbox item, to be refused at staging (see `chaos::load`).
    #[arg(long, default_value_t = 0.002)]
    pub oversized_share: f64,
    /// Messages sent per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seconds the faults go on after every order reached the pipeline.
    #[arg(long, default_value_t = 30)]
    pub fault_tail: u64,
    /// About every this many seconds, a function process busy at that moment is killed
    /// (none if none is).
    #[arg(long, default_value_t = 4.0)]
    pub kill_every: f64,
    /// Chance of a crash each time a record passes a dangerous point.
    #[arg(long, default_value_t = 0.002)]
    pub crash_rate: f64,
    /// Share of the functions' DynamoDB requests that fail (throttling or 500).
    #[arg(long, default_value_t = 0.02)]
    pub dynamodb_fail_share: f64,
    /// Share of the functions' DynamoDB requests whose response is lost after the write
    /// (and as many dropped before DynamoDB sees them).
    #[arg(long, default_value_t = 0.005)]
    pub dynamodb_lose_share: f64,
    /// Share of the functions' DynamoDB requests answered a second late.
    #[arg(long, default_value_t = 0.02)]
    pub dynamodb_slow_share: f64,
    /// DynamoDB outages during the faults (evenly spread over the orders' arrival).
    #[arg(long, default_value_t = 2)]
    pub outages: usize,
    /// Seconds each outage lasts.
    #[arg(long, default_value_t = 10)]
    pub outage_seconds: u64,
    /// Share of the relay's publish requests that fail.
    #[arg(long, default_value_t = 0.05)]
    pub publish_fail_share: f64,
    /// Outages of the bus (every publish fails) during the faults, spread over the orders'
    /// arrival.
    #[arg(long, default_value_t = 0)]
    pub bus_outages: usize,
    /// Seconds each bus outage lasts: long enough to exhaust the relay's stream retries many
    /// times over.
    #[arg(long, default_value_t = 300)]
    pub bus_outage_seconds: u64,
    /// Outages of the payment provider (every charge fails) during the faults.
    #[arg(long, default_value_t = 0)]
    pub provider_outages: usize,
    /// Seconds each payment provider outage lasts.
    #[arg(long, default_value_t = 300)]
    pub provider_outage_seconds: u64,
    /// Seconds the outbox's sweeper leaves an event to the relay's stream before publishing
    /// it itself (5 minutes on AWS; the run's time scale is shorter).
    #[arg(long, default_value_t = 60)]
    pub sweep_grace_seconds: u64,
    /// Seed of the run's randomness (orders, duplicates, fault schedule); random if unset.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds to wait for the pipeline to settle once the faults stop. The orders arrive
    /// faster than the local cloud's SNS, SQS and EventBridge (one LocalStack process) move
    /// them, so the backlog drains after the faults: a 10,000-order run on 2 cores sends for
    /// 23 minutes and needs about 40 more (1800 s fell short by about 5 minutes).
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Execution environments (processes) per function.
    #[arg(long, default_value_t = 2)]
    pub environments: usize,
    /// Visibility timeout (seconds) of the template's queues: the local time scale. It must
    /// exceed the functions' timeout (15 s), as Lambda requires of an SQS event source: a
    /// shorter one hands a message to a second invocation while the first still runs, and
    /// every redelivery of a crashed batch lands inside its claims' in-progress window,
    /// fails as in progress and spends one of the message's three receives (with 10 s, a
    /// CI run dead-lettered three valid analytics records this way).
    #[arg(long, default_value_t = 20)]
    pub visibility_timeout: u32,
    /// Seconds on AWS that one second of the run stands for, in the consumers' per-record
    /// backoff (and the breakers' probe interval): 50 makes a 216-second outage stand for
    /// DynamoDB's 3 hours of October 2025 against the template's 10 receives. By default the
    /// ratio of the template's visibility timeout (100 s) to the run's.
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Switch the consumers' per-record backoff and the circuit breakers off: the paired
    /// run that shows what they save a dependency during its outage.
    #[arg(long)]
    pub without_resilience: bool,
    /// Days after the run the late copies come back (`0`: none): the idempotency records
    /// are aged by that much, the dead letters whose effect completed are redriven, and a
    /// share of the orders and of the derived events come back ([`late`]). The default
    /// reaches past the dead-letter queues' 14 days.
    #[arg(long, default_value_t = 15.0)]
    pub late_days: f64,
    /// Share of the orders sent again, and of the derived events published again, late.
    #[arg(long, default_value_t = 0.1)]
    pub late_share: f64,
    /// Build and run the functions with the release profile.
    #[arg(long)]
    pub release: bool,
    /// Also write the figures as Markdown to this file (RELIABILITY.md for a default run).
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// No faults, no copies: every order sent once, no kill, crash, failure, outage,
    /// oversized order or late copy, whatever the other options say. What the report's
    /// "what the functions spent" then shows is the price of the path alone.
    #[arg(long)]
    pub calm: bool,
}

impl ChaosArgs {
    /// These options with every fault and copy off ([`ChaosArgs::calm`]).
    fn calmed(&self) -> Self {
        Self {
            duplicate_share: 0.0,
            oversized_share: 0.0,
            fault_tail: 0,
            kill_every: f64::from(u32::MAX),
            crash_rate: 0.0,
            dynamodb_fail_share: 0.0,
            dynamodb_lose_share: 0.0,
            dynamodb_slow_share: 0.0,
            outages: 0,
            publish_fail_share: 0.0,
            bus_outages: 0,
            provider_outages: 0,
            late_days: 0.0,
            ..self.clone()
        }
    }

    /// AWS seconds per second of the run (`--time-scale`, or the visibility timeouts' ratio).
    pub fn time_scale(&self) -> f64 {
        self.time_scale.filter(|scale| *scale >= 1.0).unwrap_or(
            f64::from(functions::TEMPLATE_VISIBILITY_TIMEOUT)
                / f64::from(self.visibility_timeout.max(1)),
        )
    }

    /// The late copies, unless `--late-days 0`.
    pub fn late_plan(&self) -> Option<late::LatePlan> {
        (self.late_days > 0.0).then_some(late::LatePlan {
            days: self.late_days,
            share: self.late_share.clamp(0.0, 1.0),
        })
    }

    fn plan(&self) -> FaultPlan {
        FaultPlan {
            kill_every: Duration::from_secs_f64(self.kill_every.max(0.1)),
            crash_rate: self.crash_rate,
            dynamodb_fail_share: self.dynamodb_fail_share,
            dynamodb_lose_share: self.dynamodb_lose_share,
            dynamodb_slow_share: self.dynamodb_slow_share,
            outages: self.outages,
            outage: Duration::from_secs(self.outage_seconds),
            publish_fail_share: self.publish_fail_share,
            bus_outages: self.bus_outages,
            bus_outage: Duration::from_secs(self.bus_outage_seconds),
            sweep_grace: Duration::from_secs(self.sweep_grace_seconds),
            provider_outages: self.provider_outages,
            provider_outage: Duration::from_secs(self.provider_outage_seconds),
        }
    }
}

/// Runs `cargo xtask chaos`: fails unless nothing was lost or doubled.
pub fn run(args: &ChaosArgs) -> Result<()> {
    let calmed;
    let args = if args.calm {
        calmed = args.calmed();
        &calmed
    } else {
        args
    };
    let cloud = LocalCloud::new(args.ports)?;
    cloud.up()?;
    // The paired run without resilience keeps its own logs, so both can run at once.
    let folder = if args.without_resilience {
        "chaos-without-resilience"
    } else {
        "chaos"
    };
    let logs = workspace_root().join(".local-cloud").join(folder);
    let runtime = crate::demo::runtime()?;
    let interrupt = CancellationToken::new();
    runtime.spawn(cancel_on_signal(interrupt.clone()));
    let report = runtime.block_on(run_chaos(args, &Endpoints::of(&cloud), &logs, interrupt))?;
    report.print();
    if let Some(path) = &args.report {
        // The command as given, but the report's path and the seed (the document adds it).
        let mut words = Vec::new();
        let mut given = std::env::args().skip(1);
        while let Some(word) = given.next() {
            match word.as_str() {
                "--report" | "--seed" => {
                    given.next();
                }
                w if w.starts_with("--report=") || w.starts_with("--seed=") => {}
                _ => words.push(word),
            }
        }
        let command = format!("cargo xtask {}", words.join(" "));
        let previous = std::fs::read_to_string(path).ok();
        let text = document::keeping_what_is_written_by_hand(
            document::markdown(&report, &command),
            previous.as_deref(),
        );
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    if report.passed() {
        println!(
            "\n✓ {} orders under faults: nothing lost, nothing doubled (seed {})",
            report.orders, report.seed
        );
        Ok(())
    } else {
        anyhow::bail!(
            "{} effect(s) lost, {} doubled{} (seed {}; logs in {})",
            report.lost(),
            report.doubled(),
            report
                .unsettled
                .as_ref()
                .map(|why| format!(", and the pipeline did not settle: {why}"))
                .unwrap_or_default(),
            report.seed,
            logs.display()
        )
    }
}

/// Cancels `interrupt` on Ctrl-C or SIGTERM (a run started in the background by a script
/// ignores SIGINT; SIGTERM still reaches it). Either signal no longer ends the process at
/// once: the run stops its functions and deletes its stack first.
async fn cancel_on_signal(interrupt: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!("\ninterrupted: stopping the functions and deleting the stack");
    interrupt.cancel();
}

/// A chaos run against the local cloud at `endpoints`, the functions' logs in `logs`.
/// Cancelling `interrupt` ends it early, with an error, once the functions are stopped and
/// the stack's resources deleted.
pub async fn run_chaos(
    args: &ChaosArgs,
    endpoints: &Endpoints,
    logs: &std::path::Path,
    interrupt: CancellationToken,
) -> Result<Report> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let load = load::generate(
        args.orders,
        args.duplicate_share,
        args.oversized_share,
        &mut rng,
    )?;
    let expected = derive(&load.orders, &load.seed);
    let _ = std::fs::remove_dir_all(logs);

    let template_path = workspace_root().join("infra").join("template.yaml");
    let template = Template::load(&template_path)?;
    let step = Step::start("building the functions");
    let build_log = logs.join("build.log");
    let binaries = tokio::select! {
        built = functions::build(&template, args.release, &build_log) => built,
        () = interrupt.cancelled() => Err(anyhow::anyhow!("interrupted while building")),
    };
    let binaries = match binaries.and_then(|dir| keep_binaries(&template, &dir, logs)) {
        Ok(dir) => {
            step.done("built");
            dir
        }
        Err(error) => {
            step.fail();
            return Err(error);
        }
    };

    let clients = Clients::new(endpoints).await;
    let options = StackOptions {
        name: format!("chaos-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]),
        template: template_path,
        parameters: HashMap::new(),
        visibility_timeout: Some(args.visibility_timeout),
        binaries,
        endpoints: endpoints.clone(),
    };
    let step = Step::start("creating what infra/template.yaml declares");
    let mut stack = Stack::create(&clients, &options, |logical| step.detail(logical)).await?;
    step.done(&stack.name);
    if args.without_resilience {
        functions::switch_resilience_off(&mut stack);
    } else {
        functions::shrink_record_backoff(&mut stack, 1.0 / args.time_scale());
        functions::shrink_breakers(&mut stack, 1.0 / args.time_scale());
    }
    let injector = Injector::start(args.plan(), endpoints).await?;
    injector.configure(&mut stack);
    let entrances = Entrances::of(&stack)?;
    // Where an order too large for the topic goes: the queues the topic delivers it to.
    let topic_queues =
        TopicQueues::of(&clients, &stack, &entrances.topic_arn, "OrderPlaced").await?;
    let inventory_table = stack.table("InventoryTable")?.to_string();
    let step = Step::start("starting the functions");
    let mut run_options = RunOptions::new(logs.to_path_buf());
    run_options.environments = args.environments;
    let pipeline = LocalPipeline::run(clients, stack, &run_options).await?;
    crate::demo::load_stock(pipeline.clients(), &inventory_table, &load.seed).await?;
    step.done(&format!(
        "{} functions, stock loaded",
        pipeline.hosts().len()
    ));

    let stack_name = pipeline.stack().name.clone();
    let interrupted =
        || anyhow::anyhow!("interrupted: the functions stopped, stack {stack_name} deleted");
    // The backlog is watched from the first order to the settled pipeline, so that an
    // outage's drain time is measured however late in the run it ends.
    let drain = drain::DrainWatch::default();
    let stop_sampling = CancellationToken::new();
    let sampling = drain.sample(&pipeline, stop_sampling.clone());
    let watched = async {
        let result = drive_and_settle(
            args,
            &pipeline,
            (&entrances, &topic_queues),
            &injector,
            &load,
            &mut rng,
            &drain,
            &interrupt,
        )
        .await;
        stop_sampling.cancel();
        result
    };
    let (watched, ()) = tokio::join!(watched, sampling);
    let (load_time, mut injected, settled, settling, settle_time) = match watched {
        Ok(done) => done,
        Err(error) => {
            pipeline.shut_down().await;
            return Err(match error {
                Stopped::Interrupted => interrupted(),
                Stopped::Failed(error) => error,
            });
        }
    };
    for (dependency, outages) in &mut injected.outages {
        for (outage, drained) in outages.iter_mut().zip(drain.drained(dependency)) {
            outage.drained = drained;
        }
    }
    let step = Step::start("checking the invariants");
    let seed_stock: BTreeMap<String, u64> = load
        .seed
        .iter()
        .filter_map(|item| {
            Some((
                item.get("sku")?.as_str()?.to_string(),
                item.get("available")?.as_u64()?,
            ))
        })
        .collect();
    let copies = load.copies();
    let reading = Reading {
        pipeline: &pipeline,
        load: &load,
        copies: &copies,
        seed_stock: &seed_stock,
        expected: &expected,
        arrivals: arrivals_to_wait_for(args, &load),
    };
    let left = Duration::from_secs(args.timeout).saturating_sub(settling.elapsed());
    let checks = reading.when_quiet(settled.is_ok(), left, &step).await;
    let cost = injector.cost(load.orders.len());
    let held = matches!(&checks, Ok(checks) if checks.iter().all(invariants::Check::holds));
    let mut late = None;
    if let (Some(plan), true, true) = (args.late_plan(), settled.is_ok(), held) {
        match bring_back_late(args, &reading, &entrances, plan, &mut rng).await {
            Ok(brought) => late = Some(brought),
            Err(error) => {
                pipeline.shut_down().await;
                return Err(error);
            }
        }
    }
    let dead_lettered: std::collections::BTreeSet<String> = pipeline
        .dead_letters()
        .await
        .unwrap_or_default()
        .values()
        .flatten()
        .flat_map(report::dead_letter_ids)
        .collect();
    let crashes = report::crashes(&pipeline, &dead_lettered);
    pipeline.shut_down().await;
    let checks = match checks {
        Ok(checks) => {
            step.done("read");
            checks
        }
        Err(error) => {
            step.fail();
            return Err(error);
        }
    };
    let mut outcomes = BTreeMap::new();
    for order in &expected.orders {
        *outcomes
            .entry(order.outcome.describe().to_string())
            .or_default() += 1;
    }
    Ok(Report {
        seed,
        orders: load.orders.len(),
        outcomes,
        duplicated: load.duplicated,
        oversized: load.oversized.values().copied().collect(),
        messages: load.messages(),
        injected,
        crashes,
        load_time,
        settle_time,
        unsettled: settled.err().map(|error| format!("{error:#}")),
        checks,
        cost,
        late,
        time_scale: args.time_scale(),
    })
}

/// Copies the functions' binaries out of cargo's target folder into the run's own (`logs`'s
/// `bin`): a long run restarts killed functions from them for an hour or more, and a build
/// of the workspace meanwhile (another feature set, an edit) must not swap them under it.
fn keep_binaries(
    template: &Template,
    built: &std::path::Path,
    logs: &std::path::Path,
) -> Result<std::path::PathBuf> {
    let kept = logs.join("bin");
    std::fs::create_dir_all(&kept)?;
    for binary in crate::local_lambda::build::function_binaries(template) {
        std::fs::copy(built.join(&binary), kept.join(&binary))
            .map_err(|error| anyhow::anyhow!("keeping {binary} for the run: {error}"))?;
    }
    Ok(kept)
}

/// What reading the invariants needs.
struct Reading<'a> {
    pipeline: &'a LocalPipeline,
    load: &'a load::Load,
    copies: &'a BTreeMap<String, u64>,
    seed_stock: &'a BTreeMap<String, u64>,
    expected: &'a crate::demo::expectations::Expected,
    /// The orders analytics must have counted for the pipeline to be settled.
    arrivals: u64,
}

impl Reading<'_> {
    /// Reads the invariants once nothing runs. A reading counts only if nothing ran while it
    /// was taken: a message whose visibility timeout ran out just after the quiet spell (a
    /// crashed invocation's batch) is delivered again, and its effects would land between
    /// two reads. `settled`: whether the pipeline settled (else one reading, as it is);
    /// `left`: the settling budget left for settling again.
    async fn when_quiet(
        &self,
        settled: bool,
        left: Duration,
        step: &Step,
    ) -> Result<Vec<invariants::Check>> {
        let pipeline = self.pipeline;
        let deadline = Instant::now() + left;
        let mut checks = Err(anyhow::anyhow!("the invariants were not read"));
        for _ in 0..5 {
            let before = activity(pipeline);
            checks = invariants::check(
                pipeline,
                &self.load.orders,
                self.copies,
                self.seed_stock,
                self.expected,
                &self.load.oversized,
            )
            .await;
            let still = pipeline.backlog().await.map(|backlog| backlog.is_empty());
            if !settled || (activity(pipeline) == before && matches!(still, Ok(true))) {
                break;
            }
            step.detail("something ran while reading; settling again");
            let left = deadline.saturating_duration_since(Instant::now());
            let again = settle(pipeline, self.arrivals, left, |detail| step.detail(detail)).await;
            if again.is_err() {
                break;
            }
        }
        checks
    }
}

/// The late copies ([`late`]): records aged, copies sent, the pipeline settled again, and
/// the invariants read again.
async fn bring_back_late(
    args: &ChaosArgs,
    reading: &Reading<'_>,
    entrances: &Entrances,
    plan: late::LatePlan,
    rng: &mut fastrand::Rng,
) -> Result<late::Outcome> {
    let pipeline = reading.pipeline;
    let step = Step::start(format!(
        "{} days later: records aged, the late copies sent",
        plan.days
    ));
    let dead_lettered: std::collections::BTreeSet<&str> = reading
        .expected
        .orders
        .iter()
        // Poison and orders too large to stage never complete at inventory: a copy of one
        // would only fail again (the run has shown where it ends).
        .filter(|order| order.outcome.is_dead_lettered())
        .map(|order| order.order_id.as_str())
        .collect();
    let orders: Vec<(String, String)> = reading
        .load
        .orders
        .iter()
        .map(|sample| (sample.order_id(), sample.text.clone()))
        .filter(|(order_id, _)| !dead_lettered.contains(order_id.as_str()))
        .collect();
    let replays_before = late::replays(pipeline);
    let brought = match late::bring_back(pipeline, entrances, &orders, plan, rng).await {
        Ok(brought) => brought,
        Err(error) => {
            step.fail();
            return Err(error);
        }
    };
    step.done(&brought.describe());
    let step = Step::start("waiting for the late copies to be absorbed");
    let started = Instant::now();
    let budget = Duration::from_secs(args.timeout);
    // Each copy sent is replayed by at least one consumer; the backlog alone can look quiet
    // before SNS and EventBridge have even queued them.
    let wanted = brought.orders_resent.len() as u64 + brought.redriven;
    while late::replays(pipeline).saturating_sub(replays_before) < wanted
        && started.elapsed() < budget
    {
        step.detail(&format!(
            "{} of at least {wanted} late copies replayed",
            late::replays(pipeline).saturating_sub(replays_before)
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let left = budget.saturating_sub(started.elapsed());
    let settled = settle(pipeline, reading.arrivals, left, |detail| {
        step.detail(detail)
    })
    .await;
    let replayed = late::replays(pipeline).saturating_sub(replays_before);
    let left = budget.saturating_sub(started.elapsed());
    let checks = reading.when_quiet(settled.is_ok(), left, &step).await;
    match (&settled, &checks) {
        (Ok(()), Ok(_)) => step.done(&format!("{replayed} replays")),
        _ => step.fail(),
    }
    let checks = checks?;
    let control_reran = match orders.first() {
        Some((order_id, text)) if settled.is_ok() => {
            let step = Step::start(format!(
                "control: order {order_id} sent again past its records' retention"
            ));
            let reran = past_retention(pipeline, entrances, text, plan.days).await?;
            // Crash points stay armed to the end: a crash in the control's own invocation
            // (after its effect) leaves its message in flight until its visibility timeout.
            // The invariants and the crash log are read once it was redelivered and done.
            let left = budget.saturating_sub(started.elapsed());
            let quiet = settle(pipeline, reading.arrivals, left, |detail| {
                step.detail(detail)
            })
            .await;
            step.done(match (reran, quiet.is_ok()) {
                (true, true) => "it ran again",
                (true, false) => "it ran again; the pipeline did not settle after it",
                (false, _) => "it did not run again",
            });
            Some(reran)
        }
        _ => None,
    };
    Ok(late::Outcome {
        brought,
        replayed,
        unsettled: settled.err().map(|error| format!("{error:#}")),
        checks,
        control_reran,
    })
}

/// The control of the late copies: ages the records (already `aged_days` old) a day past
/// their retention and sends `order` again; whether analytics counted it a second time.
async fn past_retention(
    pipeline: &LocalPipeline,
    entrances: &Entrances,
    order: &str,
    aged_days: f64,
) -> Result<bool> {
    let retention_days = eventkit::idempotency::DEFAULT_RECORD_TTL.as_secs_f64() / 86_400.0;
    late::age_records(pipeline, (retention_days - aged_days).max(0.0) + 1.0).await?;
    let before = orders_arrived(pipeline).await?;
    publish(pipeline.clients(), entrances, order).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if orders_arrived(pipeline).await? > before {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(false)
}

/// Why a run stopped before its invariants were read.
enum Stopped {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Something failed.
    Failed(anyhow::Error),
}

/// What [`drive_and_settle`] hands back: the load's time, the faults injected, whether the
/// pipeline settled, when settling began and how long it took.
type Driven = (Duration, faults::Injected, Result<()>, Instant, Duration);

/// The load under faults, then the faults off and the wait for the pipeline to settle.
#[allow(clippy::too_many_arguments)]
async fn drive_and_settle(
    args: &ChaosArgs,
    pipeline: &LocalPipeline,
    entrances: (&Entrances, &TopicQueues),
    injector: &Injector,
    load: &load::Load,
    rng: &mut fastrand::Rng,
    drain: &drain::DrainWatch,
    interrupt: &CancellationToken,
) -> Result<Driven, Stopped> {
    let outcome = tokio::select! {
        outcome = drive(args, pipeline, entrances, injector, load, rng, drain) => outcome,
        () = interrupt.cancelled() => return Err(Stopped::Interrupted),
    };
    injector.stop();
    let (load_time, injected) = outcome.map_err(Stopped::Failed)?;

    let step = Step::start("faults off; waiting for the pipeline to settle");
    let settling = Instant::now();
    let settled = tokio::select! {
        settled = settle(
            pipeline,
            arrivals_to_wait_for(args, load),
            Duration::from_secs(args.timeout),
            |detail| step.detail(detail),
        ) => settled,
        () = interrupt.cancelled() => {
            step.fail();
            return Err(Stopped::Interrupted);
        }
    };
    let settle_time = settling.elapsed();
    match &settled {
        Ok(()) => step.done("nothing left in flight"),
        Err(_) => step.fail(),
    }
    Ok((load_time, injected, settled, settling, settle_time))
}

/// Sends the load at the chosen rate while the injector runs; the faults go on until
/// `fault_tail` after the last order reached the pipeline.
async fn drive(
    args: &ChaosArgs,
    pipeline: &LocalPipeline,
    (entrances, topic_queues): (&Entrances, &TopicQueues),
    injector: &Injector,
    load: &load::Load,
    rng: &mut fastrand::Rng,
    drain: &drain::DrainWatch,
) -> Result<(Duration, faults::Injected)> {
    let rate = f64::from(args.rate.max(1));
    let step = Step::start(format!(
        "sending {} messages ({} orders, {} of them 2 to 5 times) under faults",
        load.messages(),
        load.orders.len(),
        load.duplicated
    ));
    let started = Instant::now();
    let sent = AtomicUsize::new(0);
    let arrival = faults::Arrival::new(load.orders.len() as u64);
    let faults_done = AtomicBool::new(false);
    let last_fault = std::sync::Mutex::new(String::new());
    let show = |fault: Option<&str>| {
        if let (Some(fault), Ok(mut last)) = (fault, last_fault.lock()) {
            *last = fault.to_string();
        }
        let last = last_fault.lock().map(|l| l.clone()).unwrap_or_default();
        step.detail(&format!(
            "{}/{} sent, {}/{} orders arrived; {last}",
            sent.load(Ordering::Relaxed),
            load.messages(),
            arrival.arrived(),
            load.orders.len()
        ));
    };
    let send_all = futures::stream::iter(load.sends.iter().enumerate())
        .map(|(n, index)| {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            let text = &load.orders[*index].text;
            let bypass = load.bypasses_topic(*index);
            let sent = &sent;
            let show = &show;
            async move {
                tokio::time::sleep_until(due).await;
                if bypass {
                    topic_queues.deliver(pipeline.clients(), text).await?;
                } else {
                    send_with_retries(pipeline.clients(), entrances, text).await?;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                show(None);
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let watch_arrivals = async {
        while !faults_done.load(Ordering::Relaxed) {
            if let Ok(arrived) = orders_arrived(pipeline).await {
                arrival.set(arrived);
                show(None);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let faults = async {
        let injected = injector
            .run(
                pipeline,
                &arrival,
                Duration::from_secs(args.fault_tail),
                Duration::from_secs(args.timeout),
                rng,
                drain,
                |fault| show(Some(fault)),
            )
            .await;
        faults_done.store(true, Ordering::Relaxed);
        injected
    };
    let (results, injected, ()) = tokio::join!(send_all, faults, watch_arrivals);
    if let Some(error) = results.into_iter().find_map(Result::err) {
        step.fail();
        return Err(error);
    }
    step.done(&format!(
        "{} kills, {} outage(s)",
        injected.kills.len(),
        injected.outages.values().map(Vec::len).sum::<usize>()
    ));
    Ok((started.elapsed(), injected))
}

/// The orders analytics must have counted before the run may settle: every one, unless
/// backoff and breakers are off, when an outage dead-letters OrderPlaced copies that
/// analytics will never count (then the quiet backlog alone says settled, and the
/// invariants count what was lost).
fn arrivals_to_wait_for(args: &ChaosArgs, load: &load::Load) -> u64 {
    if args.without_resilience {
        0
    } else {
        load.orders.len() as u64
    }
}

/// Orders that reached the pipeline: analytics counts every OrderPlaced (poison too).
async fn orders_arrived(pipeline: &LocalPipeline) -> Result<u64> {
    let table = pipeline.stack().table("AnalyticsTable")?;
    Ok(crate::demo::observed::scan(pipeline, table)
        .await?
        .iter()
        .filter(|item| crate::demo::observed::string(item, "pk").starts_with("OrderPlaced#"))
        .map(|item| crate::demo::observed::number(item, "count"))
        .sum())
}

/// Invocations started or ended so far, over every function: unchanged across a reading
/// means nothing ran during it.
fn activity(pipeline: &LocalPipeline) -> (u64, u64) {
    pipeline
        .hosts()
        .values()
        .fold((0, 0), |(ended, pending), host| {
            (ended + host.counts().invocations, pending + host.pending())
        })
}

/// Waits until nothing is in flight and every order sent has reached the pipeline.
/// LocalStack fans a topic's messages out to its subscriptions in the background, so a
/// quiet backlog alone can come before the last messages are even queued; analytics counts
/// every OrderPlaced (poison too), so its counter tells when all have arrived.
async fn settle(
    pipeline: &LocalPipeline,
    orders: u64,
    timeout: Duration,
    progress: impl Fn(&str),
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        pipeline
            .wait_until_settled(Duration::from_secs(5), left, |backlog| {
                progress(&backlog.describe())
            })
            .await?;
        let arrived = orders_arrived(pipeline).await?;
        if arrived >= orders {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("only {arrived} of {orders} orders reached analytics");
        }
        progress(&format!("{arrived} of {orders} orders arrived so far"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The producer's side is not under test: a message LocalStack refused is sent again.
async fn send_with_retries(clients: &Clients, entrances: &Entrances, text: &str) -> Result<()> {
    let mut attempt = 0;
    loop {
        match publish(clients, entrances, text).await {
            Ok(_) => return Ok(()),
            Err(error) if attempt >= 5 => return Err(error.context("sending an order")),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
}
