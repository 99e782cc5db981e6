//! The faults of a chaos run, injected while the orders flow:
//! - function processes killed (SIGKILL) in the middle of an invocation, at random;
//! - crashes at each dangerous point of a handler (eventkit's `faults` module, switched on
//!   in every function's environment);
//! - DynamoDB behind a fault proxy: a share of requests answered with throttling or an
//!   internal error (for a batch of statements, half of them a successful answer failing
//!   each statement), a share dropped before DynamoDB sees them, a share whose response is
//!   lost after the write happened, a share answered a second late, and outages during
//!   which every request fails;
//! - publishing behind a fault proxy in front of LocalStack: a share of PutEvents requests
//!   fail whole, or fail their entries; and bus outages (`--bus-outages`), long enough for
//!   the relay's stream to give events up to the outbox's sweeper.
//!
//! Only the functions go through the proxies; the local Lambda's own event sources (the
//! service side) reach the local cloud directly, as Lambda's pollers are not behind the
//! function's network.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use eventkit::faults::{CrashPoint, CRASH_POINTS_VAR};
use serde_json::json;
use tokio::time::Instant;

use super::drain::DrainWatch;
use crate::local_lambda::clients::Endpoints;
use crate::local_lambda::stack::Stack;
use crate::local_lambda::LocalPipeline;
use crate::proxy::{Canned, Proxy, Respond};

/// How hard to hit the pipeline.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// About this often a function process busy at that moment is killed (none if none is).
    pub kill_every: Duration,
    /// The chance of a crash each time a record passes a dangerous point.
    pub crash_rate: f64,
    /// Share of the functions' DynamoDB requests answered with throttling or a 500.
    pub dynamodb_fail_share: f64,
    /// Share of the functions' DynamoDB requests whose response is lost, and (as much
    /// again) dropped before DynamoDB sees them.
    pub dynamodb_lose_share: f64,
    /// Share of the functions' DynamoDB requests answered 1 s late.
    pub dynamodb_slow_share: f64,
    /// DynamoDB outages during the run, each `outage` long.
    pub outages: usize,
    /// How long each outage lasts.
    pub outage: Duration,
    /// Share of the functions' publish requests that fail (whole, or entry by entry).
    pub publish_fail_share: f64,
    /// Outages of the bus (every request of the functions to LocalStack fails) during the
    /// run, each `bus_outage` long: long enough to exhaust the relay's stream retries many
    /// times over, so that what the stream gives up on is left to the outbox's sweeper.
    pub bus_outages: usize,
    /// How long each bus outage lasts.
    pub bus_outage: Duration,
    /// How long the sweeper leaves an event to the stream (the run's time scale; 5 minutes
    /// on AWS).
    pub sweep_grace: Duration,
    /// Outages of the payment provider (every charge fails), each `provider_outage` long.
    pub provider_outages: usize,
    /// How long each provider outage lasts.
    pub provider_outage: Duration,
}

/// One outage of a dependency, as it went.
#[derive(Clone, Debug)]
pub struct Outage {
    /// When it began, from the start of the faults.
    pub at: Duration,
    /// How long it lasted.
    pub length: Duration,
    /// Requests the functions sent the dependency while it was down (each answered with
    /// the outage's error): what backoff and breakers are for keeping low.
    pub requests: u64,
    /// How long after it ended the backlog it held back was drained ([`DrainWatch`]);
    /// `None` if not before the run settled.
    pub drained: Option<Duration>,
}

/// One function process killed.
#[derive(Clone, Debug)]
pub struct Kill {
    /// When, from the start of the faults.
    pub at: Duration,
    /// The function's logical id.
    pub function: String,
    /// The process.
    pub pid: u32,
}

/// The faults given, by kind.
#[derive(Clone, Debug, Default)]
pub struct Injected {
    /// Processes killed.
    pub kills: Vec<Kill>,
    /// Outages per dependency (`DynamoDB`, `bus`, `payment provider`).
    pub outages: BTreeMap<&'static str, Vec<Outage>>,
    /// DynamoDB faults by kind (`failed`, `response lost`, `outage`).
    pub dynamodb: BTreeMap<String, u64>,
    /// Publish faults by kind.
    pub publish: BTreeMap<String, u64>,
    /// Payment provider faults by kind.
    pub provider: BTreeMap<String, u64>,
}

/// How many of the orders have reached the pipeline so far (analytics counts every
/// OrderPlaced it receives), kept up to date by the run.
#[derive(Debug, Default)]
pub struct Arrival {
    arrived: AtomicU64,
    orders: u64,
}

impl Arrival {
    /// Nothing arrived yet of `orders`.
    pub fn new(orders: u64) -> Self {
        Self {
            arrived: AtomicU64::new(0),
            orders,
        }
    }

    /// Records the latest count.
    pub fn set(&self, arrived: u64) {
        self.arrived.store(arrived, Ordering::Relaxed);
    }

    /// Orders arrived so far.
    pub fn arrived(&self) -> u64 {
        self.arrived.load(Ordering::Relaxed)
    }

    /// The share arrived, 0 to 1.
    pub fn fraction(&self) -> f64 {
        self.arrived() as f64 / self.orders.max(1) as f64
    }
}

/// The proxies and the schedule.
pub struct Injector {
    plan: FaultPlan,
    dynamodb: Proxy,
    localstack: Proxy,
    /// The payment provider's own way to its ledger (DynamoDB), so that it can go down
    /// alone.
    provider: Proxy,
}

/// The dependencies that go down for long, one schedule each.
pub const DYNAMODB: &str = "DynamoDB";
/// The bus (EventBridge's PutEvents; the queues on the same endpoint stay up).
pub const BUS: &str = "bus";
/// The payment provider.
pub const PROVIDER: &str = "payment provider";

/// A dependency's outages: when each begins (fractions of the orders arrived), how long it
/// lasts, and what went on during the ones that happened.
struct Schedule<'a> {
    name: &'static str,
    proxy: &'a Proxy,
    operations: &'static [&'static str],
    respond: Respond,
    length: Duration,
    left: Vec<f64>,
    current: Option<(Instant, u64)>,
    done: Vec<Outage>,
    started: Instant,
    drain: &'a DrainWatch,
}

impl Schedule<'_> {
    /// Requests the proxy answered with an outage so far.
    fn answered(&self) -> u64 {
        self.proxy.injected().get("outage").copied().unwrap_or(0)
    }

    /// Ends the outage under way if its time is up, begins the next one if its share of the
    /// orders has arrived; says so through `progress`.
    /// Another dependency's outage under way, or just over (`hold`), holds the next one
    /// back, so that each outage's requests are its own dependency's alone and the backlog
    /// of one drains before the next: two outages back to back are one longer outage for a
    /// record that needs both. Returns whether an outage ended.
    fn step(&mut self, now: Instant, arrived: f64, hold: bool, progress: &impl Fn(&str)) -> bool {
        if let Some((began, requests)) = self.current {
            if now >= began + self.length {
                self.end(now, began, requests);
                progress(&format!("{} is back", self.name));
                return true;
            }
            return false;
        }
        if !hold && self.left.first().is_some_and(|at| arrived >= *at) {
            self.left.remove(0);
            self.current = Some((now, self.answered()));
            self.drain.began(self.name);
            self.proxy
                .set_outage_of(self.operations, Some(self.respond.clone()));
            progress(&format!(
                "{} down for {}s",
                self.name,
                self.length.as_secs()
            ));
        }
        false
    }

    fn end(&mut self, now: Instant, began: Instant, requests: u64) {
        self.proxy.set_outage(None);
        self.drain.ended(self.name);
        self.done.push(Outage {
            at: began.saturating_duration_since(self.started),
            length: now.saturating_duration_since(began),
            requests: self.answered().saturating_sub(requests),
            drained: None,
        });
        self.current = None;
    }

    /// Ends an outage still under way (the faults stop); the outages that happened.
    fn finish(mut self) -> Vec<Outage> {
        if let Some((began, requests)) = self.current {
            self.end(Instant::now(), began, requests);
        }
        self.done
    }
}

impl Injector {
    /// Starts both fault proxies, faults off until [`Injector::run`].
    pub async fn start(plan: FaultPlan, endpoints: &Endpoints) -> Result<Self> {
        Ok(Self {
            plan,
            dynamodb: Proxy::start(address(&endpoints.dynamodb)?, Duration::ZERO).await?,
            localstack: Proxy::start(address(&endpoints.localstack)?, Duration::ZERO).await?,
            provider: Proxy::start(address(&endpoints.dynamodb)?, Duration::ZERO).await?,
        })
    }

    /// Points every function at the proxies and switches crash injection on.
    pub fn configure(&self, stack: &mut Stack) {
        let crash_points = CrashPoint::ALL
            .iter()
            .map(|point| format!("{}:{}", point.name(), self.plan.crash_rate))
            .collect::<Vec<_>>()
            .join(",");
        for function in stack.functions.values_mut() {
            let environment = &mut function.spec.environment;
            environment.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), self.dynamodb.endpoint());
            environment.insert("AWS_ENDPOINT_URL".into(), self.localstack.endpoint());
            environment.insert(CRASH_POINTS_VAR.into(), crash_points.clone());
            environment.insert(
                "SWEEP_GRACE_SECONDS".into(),
                self.plan.sweep_grace.as_secs().to_string(),
            );
            environment.insert(payments::PROVIDER_ENDPOINT.into(), self.provider.endpoint());
        }
    }

    /// Injects faults while the orders flow: the shares from the start, the outages when
    /// given fractions of the orders have reached the pipeline (work is going on then,
    /// however far behind the sending it runs), a kill about every `kill_every`. Stops
    /// `tail` after every order has arrived, or at `cap`, and returns with every fault off.
    /// `progress` hears of each kill and outage; `drain` of each outage's beginning and end.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        &self,
        pipeline: &LocalPipeline,
        arrival: &Arrival,
        tail: Duration,
        cap: Duration,
        rng: &mut fastrand::Rng,
        drain: &DrainWatch,
        progress: impl Fn(&str),
    ) -> Injected {
        let started = Instant::now();
        self.dynamodb
            .fail_share(self.plan.dynamodb_fail_share, dynamodb_failure());
        self.dynamodb.lose_share(self.plan.dynamodb_lose_share);
        self.dynamodb.drop_share(self.plan.dynamodb_lose_share);
        self.dynamodb
            .slow_share(self.plan.dynamodb_slow_share, Duration::from_secs(1));
        self.localstack
            .fail_share(self.plan.publish_fail_share, publish_failure());
        // Outage k of n starts once k/(n+1) of the orders have arrived (the bus's and the
        // provider's halfway between, so that two kinds rarely overlap).
        let spread = |n: usize, offset: f64| -> Vec<f64> {
            (1..=n)
                .map(|k| (k as f64 - offset) / (n as f64 + 1.0 - offset))
                .collect()
        };
        let mut schedules = [
            Schedule {
                name: DYNAMODB,
                proxy: &self.dynamodb,
                operations: &[],
                respond: dynamodb_unavailable(),
                length: self.plan.outage,
                left: spread(self.plan.outages, 0.0),
                current: None,
                done: Vec::new(),
                started,
                drain,
            },
            Schedule {
                name: BUS,
                proxy: &self.localstack,
                operations: &["PutEvents"],
                respond: bus_unavailable(),
                length: self.plan.bus_outage,
                left: spread(self.plan.bus_outages, 0.5),
                current: None,
                done: Vec::new(),
                started,
                drain,
            },
            Schedule {
                name: PROVIDER,
                proxy: &self.provider,
                operations: &[],
                respond: dynamodb_unavailable(),
                length: self.plan.provider_outage,
                left: spread(self.plan.provider_outages, 0.25),
                current: None,
                done: Vec::new(),
                started,
                drain,
            },
        ];
        let mut injected = Injected::default();
        let mut caught_up: Option<Instant> = None;
        let mut quiet_until: Option<Instant> = None;
        let mut next_kill = started + self.plan.kill_every.mul_f64(0.5 + rng.f64());
        let functions: Vec<_> = pipeline.hosts().iter().collect();
        let outage_on = |schedules: &[Schedule]| schedules.iter().any(|s| s.current.is_some());
        // Every outage planned happens, whole, before the tail ends the faults.
        let pending = |schedules: &[Schedule]| {
            schedules
                .iter()
                .any(|s| s.current.is_some() || !s.left.is_empty())
        };
        while started.elapsed() < cap
            && (caught_up.is_none_or(|at| at.elapsed() < tail) || pending(&schedules))
        {
            let now = Instant::now();
            let arrived = arrival.fraction();
            if arrived >= 1.0 && caught_up.is_none() {
                caught_up = Some(now);
                progress("every order arrived; faults go on a while");
            }
            for n in 0..schedules.len() {
                let hold = outage_on(&schedules) || quiet_until.is_some_and(|until| now < until);
                if schedules[n].step(now, arrived, hold, &progress) {
                    // Half the outage's length to drain what it held back.
                    quiet_until = Some(now + schedules[n].length / 2);
                }
            }
            // A kill strikes whatever is busy at its moment, and a moment when nothing is
            // busy passes without one. Waiting for the next busy process instead would aim
            // every due kill at the first invocation to start once the pipeline is quiet:
            // in the fault tail those are the retries, and an event whose three
            // asynchronous attempts were all killed on arrival ended in its DLQ (a fault
            // beyond Lambda's retry budget, not one the pipeline could survive).
            if now >= next_kill {
                let mut order = functions.clone();
                rng.shuffle(&mut order);
                let killed = order
                    .into_iter()
                    .find_map(|(logical, host)| host.kill_busy_process().map(|pid| (logical, pid)));
                if let Some((logical, pid)) = killed {
                    injected.kills.push(Kill {
                        at: started.elapsed(),
                        function: logical.clone(),
                        pid,
                    });
                    progress(&format!("killed {logical} (pid {pid})"));
                }
                next_kill = now + self.plan.kill_every.mul_f64(0.5 + rng.f64());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for schedule in schedules {
            let name = schedule.name;
            injected.outages.insert(name, schedule.finish());
        }
        self.stop();
        injected.dynamodb = self.dynamodb.injected();
        injected.publish = self.localstack.injected();
        injected.provider = self.provider.injected();
        injected
    }

    /// What the functions' requests through the proxies cost so far, for `orders` orders
    /// (the payment provider's ledger, not a part of the pipeline, left out).
    pub fn cost(&self, orders: usize) -> super::cost::Cost {
        super::cost::Cost {
            orders,
            dynamodb: self.dynamodb.counts(),
            capacity: self.dynamodb.capacity(),
            messaging: self.localstack.counts(),
        }
    }

    /// Every fault off: the pipeline may settle.
    pub fn stop(&self) {
        self.dynamodb.fail_share(0.0, dynamodb_failure());
        self.dynamodb.lose_share(0.0);
        self.dynamodb.drop_share(0.0);
        self.dynamodb.slow_share(0.0, Duration::ZERO);
        self.dynamodb.set_outage(None);
        self.localstack.fail_share(0.0, publish_failure());
        self.localstack.set_outage(None);
        self.provider.set_outage(None);
    }
}

fn address(endpoint: &str) -> Result<SocketAddr> {
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    authority
        .parse()
        .with_context(|| format!("{endpoint} is not http://<ip>:<port>"))
}

const JSON_1_0: &str = "application/x-amz-json-1.0";
const JSON_1_1: &str = "application/x-amz-json-1.1";

/// Throttling or an internal error, half and half: both are retried by the SDK, and what
/// outlasts its retries reaches the handler as a transient error.
/// A whole request throttled or failing with a 500; or, for a `BatchExecuteStatement` (the
/// batched claims, completions and releases), half the time a request that succeeds and fails
/// each of its statements with a code DynamoDB gives one statement at a time (throttling, an
/// internal error, a conflict with a transaction): nothing of it is written.
fn dynamodb_failure() -> impl Fn(&[u8]) -> Canned + Send + Sync + 'static {
    |body| {
        let statements = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|request| request["Statements"].as_array().map(Vec::len));
        if let Some(statements) = statements.filter(|_| fastrand::bool()) {
            const CODES: [&str; 3] = [
                "ThrottlingError",
                "InternalServerError",
                "TransactionConflict",
            ];
            let responses: Vec<_> = (0..statements)
                .map(|_| {
                    let code = CODES[fastrand::usize(..CODES.len())];
                    json!({"Error": {"Code": code, "Message": "failed statement (chaos)"}})
                })
                .collect();
            return Canned {
                status: 200,
                content_type: JSON_1_0.into(),
                body: json!({ "Responses": responses }).to_string(),
            };
        }
        if fastrand::bool() {
            Canned {
                status: 400,
                content_type: JSON_1_0.into(),
                body: json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                    "message": "Rate of requests exceeds the allowed throughput (chaos)."
                })
                .to_string(),
            }
        } else {
            internal_error(JSON_1_0)
        }
    }
}

/// The bus down: every request of the functions to LocalStack answered with a 503.
fn bus_unavailable() -> Respond {
    Arc::new(|_: &[u8]| Canned {
        status: 503,
        content_type: JSON_1_1.into(),
        body: json!({
            "__type": "ServiceUnavailableException",
            "message": "The bus is unavailable (chaos outage)."
        })
        .to_string(),
    })
}

fn dynamodb_unavailable() -> Respond {
    Arc::new(|_: &[u8]| Canned {
        status: 503,
        content_type: JSON_1_0.into(),
        body: json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
            "message": "DynamoDB is unavailable (chaos outage)."
        })
        .to_string(),
    })
}

/// A whole PutEvents failing with a 500, or every entry failing with a retryable code.
fn publish_failure() -> impl Fn(&[u8]) -> Canned + Send + Sync + 'static {
    |body| {
        if fastrand::bool() {
            return internal_error(JSON_1_1);
        }
        let entries = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|request| request["Entries"].as_array().map(Vec::len))
            .unwrap_or(1);
        let failed: Vec<_> = (0..entries)
            .map(|_| json!({"ErrorCode": "InternalFailure", "ErrorMessage": "chaos"}))
            .collect();
        Canned {
            status: 200,
            content_type: JSON_1_1.into(),
            body: json!({"FailedEntryCount": entries, "Entries": failed}).to_string(),
        }
    }
}

fn internal_error(content_type: &str) -> Canned {
    Canned {
        status: 500,
        content_type: content_type.into(),
        body: json!({
            "__type": "InternalServerError",
            "message": "Internal server error (chaos)."
        })
        .to_string(),
    }
}
