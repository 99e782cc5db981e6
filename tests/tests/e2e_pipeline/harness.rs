//! The e2e tests' pipeline: a stack of the template's resources under a unique name, the
//! functions running on the local Lambda, and readers for its tables, queues and logs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::events::EventEnvelope;
use eventkit_tests::{unique_name, Item};
use orders::{LineItem, Order, OrderPlaced, SOURCE};
use serde_json::Value;
use tokio::sync::OnceCell;
use xtask::cloud::workspace_root;
use xtask::demo::publish::{publish, Entrances};
use xtask::functions;
use xtask::local_lambda::clients::{Clients, Endpoints};
use xtask::local_lambda::logs::{LogLine, Stream};
use xtask::local_lambda::stack::{Stack, StackOptions};
use xtask::local_lambda::template::Template;
use xtask::local_lambda::{LocalPipeline, RunOptions};

/// The local time scale: failed records come back after 10 s instead of the template's 100.
const VISIBILITY_TIMEOUT: u32 = 10;
/// InventoryQueue's RedrivePolicy.maxReceiveCount in the template.
pub const MAX_RECEIVE_COUNT: usize = 10;
const SETTLE_TIMEOUT: Duration = Duration::from_secs(240);

static BINARIES: OnceCell<PathBuf> = OnceCell::const_new();

fn template_path() -> PathBuf {
    workspace_root().join("infra").join("template.yaml")
}

/// Builds the functions once for the whole test binary.
async fn binaries() -> PathBuf {
    BINARIES
        .get_or_init(|| async {
            let template = Template::load(&template_path()).expect("the template parses");
            let log = workspace_root().join(".local-cloud/e2e/build.log");
            functions::build(&template, false, &log)
                .await
                .expect("the functions build")
        })
        .await
        .clone()
}

/// One test's pipeline.
pub struct Run {
    pub pipeline: LocalPipeline,
    entrances: Entrances,
    logs: PathBuf,
}

impl Run {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the stack changed by `configure` first (a test-only environment variable
    /// on one function, say).
    pub async fn start_with(configure: impl FnOnce(&mut Stack)) -> Self {
        let binaries = binaries().await;
        let endpoints = Endpoints::from_env();
        let clients = Clients::new(&endpoints).await;
        let name = unique_name("e2e");
        let options = StackOptions {
            name: name.clone(),
            template: template_path(),
            parameters: Default::default(),
            visibility_timeout: Some(VISIBILITY_TIMEOUT),
            binaries,
            endpoints,
        };
        let mut stack = Stack::create(&clients, &options, |_| {}).await.expect(
            "the template's resources are created (is the local cloud up? `cargo xtask cloud up`)",
        );
        functions::scale_record_backoff(&mut stack, VISIBILITY_TIMEOUT);
        configure(&mut stack);
        let entrances = Entrances {
            topic_arn: stack.topics["OrdersTopic"].clone(),
            bus_name: stack.buses["OrdersBus"].clone(),
        };
        let logs = workspace_root().join(".local-cloud/e2e").join(&name);
        let mut options = RunOptions::new(logs.clone());
        // (#34) The functions' spans, received by the pipeline itself.
        options.spans = Some(logs.join("spans.jsonl"));
        let pipeline = LocalPipeline::run(clients, stack, &options)
            .await
            .expect("the functions start");
        Self {
            pipeline,
            entrances,
            logs,
        }
    }

    pub fn table(&self, logical: &str) -> String {
        self.pipeline
            .stack()
            .table(logical)
            .expect("declared table")
            .to_string()
    }

    pub async fn seed(&self, stock: &[(&str, u64)]) {
        for (sku, available) in stock {
            self.pipeline
                .clients()
                .dynamodb
                .put_item()
                .table_name(self.table("InventoryTable"))
                .item("sku", AttributeValue::S((*sku).into()))
                .item("available", AttributeValue::N(available.to_string()))
                .send()
                .await
                .expect("PutItem stock");
        }
    }

    /// Publishes an envelope to the orders topic, as the producer does.
    pub async fn publish(&self, envelope: &str) {
        publish(self.pipeline.clients(), &self.entrances, envelope)
            .await
            .expect("published");
    }

    pub async fn settle(&self) {
        self.pipeline
            .wait_until_settled(Duration::from_secs(3), SETTLE_TIMEOUT, |_| {})
            .await
            .expect("the pipeline settles");
    }

    pub async fn scan(&self, logical: &str) -> Vec<Item> {
        self.pipeline
            .clients()
            .dynamodb
            .scan()
            .table_name(self.table(logical))
            .consistent_read(true)
            .send()
            .await
            .expect("Scan")
            .items
            .unwrap_or_default()
    }

    pub async fn stock(&self) -> BTreeMap<String, u64> {
        self.scan("InventoryTable")
            .await
            .iter()
            .filter(|item| !text(item, "sku").starts_with("reservation#"))
            .map(|item| (text(item, "sku"), number(item, "available")))
            .collect()
    }

    pub async fn reservations(&self) -> Vec<String> {
        let mut orders: Vec<String> = self
            .scan("InventoryTable")
            .await
            .iter()
            .filter_map(|item| {
                text(item, "sku")
                    .strip_prefix("reservation#")
                    .map(str::to_string)
            })
            .collect();
        orders.sort();
        orders
    }

    /// (orderId, kind, correlationId) of every email, sorted.
    pub async fn emails(&self) -> Vec<(String, String, String)> {
        let mut emails: Vec<_> = self
            .scan("NotificationsTable")
            .await
            .iter()
            .map(|item| {
                (
                    text(item, "orderId"),
                    text(item, "kind"),
                    text(item, "correlationId"),
                )
            })
            .collect();
        emails.sort();
        emails
    }

    /// (orderId, outcome, requests) of every charge in the payment provider's ledger, sorted.
    pub async fn charges(&self) -> Vec<(String, String, u64)> {
        let mut charges: Vec<_> = self
            .scan("PaymentsLedgerTable")
            .await
            .iter()
            .map(|item| {
                (
                    text(item, "orderId"),
                    text(item, "outcome"),
                    number(item, "requests"),
                )
            })
            .collect();
        charges.sort();
        charges
    }

    /// Events counted by analytics, per type (all days).
    pub async fn counted(&self) -> BTreeMap<String, u64> {
        let mut counted = BTreeMap::new();
        for item in self.scan("AnalyticsTable").await {
            let event_type = text(&item, "pk")
                .split('#')
                .next()
                .unwrap_or_default()
                .to_string();
            *counted.entry(event_type).or_default() += number(&item, "count");
        }
        counted
    }

    /// Completed idempotency records per function prefix.
    pub async fn completed_keys(&self) -> BTreeMap<String, usize> {
        let mut per_function = BTreeMap::new();
        for item in self.scan("IdempotencyTable").await {
            assert_eq!(text(&item, "status"), "COMPLETED", "{item:?}");
            let function = text(&item, "id")
                .split('#')
                .next()
                .unwrap_or_default()
                .to_string();
            *per_function.entry(function).or_default() += 1;
        }
        per_function
    }

    pub async fn dead_letters(&self) -> BTreeMap<String, Vec<aws_sdk_sqs::types::Message>> {
        self.pipeline.dead_letters().await.expect("DLQs readable")
    }

    pub fn log(&self, function: &str) -> Vec<Arc<LogLine>> {
        self.pipeline
            .host(function)
            .expect("declared function")
            .log()
            .lines()
    }

    /// Every line a function wrote to stdout, as Lambda's log-level filter reads it: JSON with
    /// an RFC 3339 `timestamp` and a Lambda `level` (a line without either is taken for INFO
    /// and dropped at WARN and above). Returns how many lines, and how many were EMF.
    pub fn assert_every_line_has_a_timestamp_and_a_level(&self, function: &str) -> (usize, usize) {
        let lines: Vec<_> = self
            .log(function)
            .into_iter()
            .filter(|line| line.stream == Stream::Stdout)
            .collect();
        for line in &lines {
            let json = line
                .json
                .as_ref()
                .unwrap_or_else(|| panic!("{function}: not a JSON line: {}", line.text));
            let timestamp = json["timestamp"].as_str().unwrap_or_default();
            assert!(
                chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
                "{function}: no RFC 3339 timestamp: {}",
                line.text
            );
            assert!(
                ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
                    .contains(&json["level"].as_str().unwrap_or_default()),
                "{function}: no level: {}",
                line.text
            );
        }
        let emf = lines.iter().filter(|line| line.emf().is_some()).count();
        (lines.len(), emf)
    }

    /// Sums of an EMF metric over a function's invocations.
    pub fn metric(&self, function: &str, name: &str) -> u64 {
        self.log(function)
            .iter()
            .filter_map(|line| line.emf().and_then(|emf| emf[name].as_u64()))
            .sum()
    }

    pub async fn finish(self) {
        for host in self.pipeline.hosts().values() {
            assert_eq!(host.counts().timeouts, 0, "{} timed out", host.spec().name);
        }
        self.pipeline.shut_down().await;
        // Kept only when a test fails, for its post-mortem.
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

fn text(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn number(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// An OrderPlaced envelope (as JSON) for a fresh order, and the order.
pub fn order_placed(items: &[(&str, u32)], amount_cents: u64) -> (String, Order) {
    let order = Order {
        order_id: unique_name("ord"),
        customer_id: "cus-1".into(),
        customer_email: "ada@example.com".into(),
        items: items
            .iter()
            .map(|(sku, quantity)| LineItem {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
        amount_cents,
        currency: "EUR".into(),
    };
    let envelope = EventEnvelope::new(SOURCE, OrderPlaced::from(order.clone()));
    (
        serde_json::to_string(&envelope).expect("serializable"),
        order,
    )
}

pub fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub fn correlation(envelope: &str) -> String {
    let value: Value = serde_json::from_str(envelope).expect("JSON");
    value["correlationId"]
        .as_str()
        .expect("correlationId")
        .to_string()
}
