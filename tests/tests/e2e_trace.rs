//! One order's trace, end to end (issue #34's done-when): a producer publishes a declined
//! order inside a traced span (the OpenTelemetry SDK's OTLP exporter, as a service that
//! places orders would), the six functions run as their real binaries on the local Lambda
//! and export their spans to the pipeline's own receiver, and the spans it received must form
//! one connected trace from the order's publish to the last consumer: every function the
//! order passed through, the outbox's stream hop through the relay included, each record
//! hanging off (or linked to) the publish span that sent it, and no span whose parent never
//! arrived. The payment provider is down for the first delivery to payments, so that record
//! is redelivered: its failed attempt must show in the same trace as the attempt that
//! succeeded.

// The pipeline tests' harness, of which this test uses a part.
#[allow(dead_code)]
#[path = "e2e_pipeline/harness.rs"]
mod harness;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventkit::events::{EventEnvelope, OutgoingEvent, SnsPublisher};
use eventkit_local::traces::store::{read_spans, StoredSpan};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use orders::{LineItem, Order, OrderPlaced, SOURCE};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer as _;
use xtask::local_lambda::clients::{Clients, Endpoints};
use xtask::proxy::{Canned, Proxy};

use harness::Run;

/// The service name of the test's producer.
const PRODUCER: &str = "order-entry";

/// The functions a declined order passes through.
const FUNCTIONS: [&str; 5] = [
    "InventoryFunction",
    "RelayFunction",
    "PaymentsFunction",
    "NotificationsFunction",
    "AnalyticsFunction",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_declined_order_is_one_connected_trace_with_its_redelivered_attempt() {
    let endpoints = Endpoints::from_env();
    // The payment provider (its ledger table) behind a proxy of the test's, down at first.
    let provider = Proxy::start(address(&endpoints.dynamodb), Duration::ZERO)
        .await
        .expect("the provider's proxy starts");
    provider.set_outage(Some(Arc::new(|_: &[u8]| internal_error())));
    let provider_endpoint = provider.endpoint();
    let run = Run::start_with(|stack| {
        if let Some(payments) = stack.functions.get_mut("PaymentsFunction") {
            payments
                .spec
                .environment
                .insert(payments::PROVIDER_ENDPOINT.into(), provider_endpoint);
        }
    })
    .await;
    let span_file = run
        .pipeline
        .span_file()
        .expect("the pipeline receives the spans")
        .to_path_buf();
    run.seed(&[("SKU-A", 5)]).await;

    // Declined: cents ending in 13.
    let order_id = eventkit_tests::unique_name("ord");
    let topic = run.pipeline.stack().topics["OrdersTopic"].clone();
    let receiver = run
        .pipeline
        .span_endpoint()
        .expect("the functions export to the pipeline's receiver");
    place_order(order_id.clone(), topic, receiver, endpoints).await;

    // Payments fails its first attempt at the provider; then the provider is back.
    let failed = wait_for(&span_file, Duration::from_secs(120), |spans| {
        spans.iter().any(|span| {
            span.service == "PaymentsFunction"
                && span.name == "StockReserved"
                && span.status == "error"
        })
    })
    .await;
    assert!(
        failed,
        "payments' first attempt failed while the provider was down"
    );
    provider.set_outage(None);
    run.settle().await;
    assert!(
        run.stock().await.get("SKU-A") == Some(&5),
        "the declined order's stock was released"
    );

    let spans = read_spans(&span_file).expect("the span file reads");
    let graph = Graph::new(&spans);

    // No orphan: every parent a span names arrived.
    for span in &spans {
        if let Some(parent) = &span.parent_span_id {
            assert!(
                graph.spans.contains_key(parent.as_str()),
                "{} ({}) names a parent that never arrived",
                span.name,
                span.service
            );
        }
    }

    // The order's publish: the producer's root span and its publish span, child of it.
    let root = one(&spans, |s| s.service == PRODUCER && s.name == "place order");
    assert_eq!(root.parent_span_id, None);
    let order_publish = one(&spans, |s| s.service == PRODUCER && s.kind == "producer");
    assert_eq!(
        order_publish.parent_span_id.as_deref(),
        Some(root.span_id.as_str())
    );
    assert_eq!(order_publish.trace_id, root.trace_id);

    // Every record any function processed (the sweeper's schedule aside) is downstream of
    // the order's publish, through parents and links: one connected trace.
    let records: Vec<&StoredSpan> = spans
        .iter()
        .filter(|s| s.kind == "consumer" && s.attribute("messaging.message.id").is_some())
        .filter(|s| s.service != "OutboxSweeperFunction")
        .collect();
    for record in &records {
        assert!(
            graph.upstream(record).contains(root.span_id.as_str()),
            "{} in {} is not connected to the order's publish",
            record.name,
            record.service
        );
    }
    let services: HashSet<&str> = records.iter().map(|s| s.service.as_str()).collect();
    for function in FUNCTIONS {
        assert!(
            services.contains(function),
            "no record of {function}: {services:?}"
        );
    }

    // Each consumer invocation hangs off what sent it: a batch of one is its child, a batch
    // of several links to it.
    for invocation in spans.iter().filter(|s| {
        s.kind == "consumer"
            && s.attribute("messaging.batch.message_count").is_some()
            && s.service != "OutboxSweeperFunction"
    }) {
        let parent = invocation
            .parent_span_id
            .as_deref()
            .and_then(|id| graph.spans.get(id));
        match parent {
            Some(parent) => assert!(
                parent.kind == "producer" || parent.name.starts_with("handle "),
                "{} in {} is the child of {}, not of a publish or a committing handler",
                invocation.name,
                invocation.service,
                parent.name
            ),
            None => assert!(
                !invocation.links.is_empty(),
                "{} in {} is a root without links",
                invocation.name,
                invocation.service
            ),
        }
    }

    // The stack's first hop: inventory's OrderPlaced comes from the order's publish span.
    let reserved = one(&spans, |s| {
        s.service == "InventoryFunction" && s.name == "OrderPlaced"
    });
    assert_eq!(
        graph.nearest_publish(reserved),
        Some(order_publish.span_id.as_str())
    );
    // Inside inventory: the claim, the handler and the outbox commit, children of the record.
    for step in ["idempotency claim", "handle OrderPlaced", "outbox commit"] {
        let child = one(&spans, |s| {
            s.service == "InventoryFunction"
                && s.name == step
                && s.parent_span_id.as_deref() == Some(reserved.span_id.as_str())
        });
        assert_eq!(child.trace_id, reserved.trace_id, "{step}");
    }
    let handler = one(&spans, |s| {
        s.service == "InventoryFunction" && s.name == "handle OrderPlaced"
    });

    // The stream hop: the relay's publish of StockReserved continues inventory's handler.
    let relayed = one(&spans, |s| {
        s.service == "RelayFunction"
            && s.kind == "producer"
            && s.attribute("eventkit.event_type") == Some("StockReserved")
    });
    assert!(
        graph.upstream(relayed).contains(handler.span_id.as_str()),
        "the relay's publish is not downstream of the committing handler"
    );

    // The redelivered record: payments' failed attempt and its successful retry, both off
    // the relay's publish span, in one trace.
    let attempts: Vec<&StoredSpan> = spans
        .iter()
        .filter(|s| s.service == "PaymentsFunction" && s.name == "StockReserved")
        .collect();
    let (failures, successes): (Vec<&StoredSpan>, Vec<&StoredSpan>) =
        attempts.iter().partition(|s| s.status == "error");
    let [success] = successes[..] else {
        panic!("one successful attempt: {attempts:#?}")
    };
    assert!(!failures.is_empty());
    for failure in &failures {
        assert_eq!(
            failure.trace_id, success.trace_id,
            "the failed attempt is in the trace"
        );
        assert_eq!(
            graph.nearest_publish(failure),
            Some(relayed.span_id.as_str())
        );
        assert!(failure.end_unix_nano <= success.start_unix_nano);
        assert_eq!(failure.attribute("error.type"), Some("transient"));
    }
    assert_eq!(
        graph.nearest_publish(success),
        Some(relayed.span_id.as_str())
    );
    assert_eq!(success.trace_id, relayed.trace_id);
    let redelivered = success
        .attributes
        .get("eventkit.receive_count")
        .and_then(|count| {
            count
                .as_u64()
                .or_else(|| count.as_str().and_then(|text| text.parse().ok()))
        })
        .unwrap_or(0);
    assert!(
        redelivered >= 2,
        "the success was a redelivery: {success:?}"
    );

    // The declined payment's compensation: inventory's PaymentFailed record, downstream of
    // payments' handler through the relay.
    let compensation = one(&spans, |s| {
        s.service == "InventoryFunction" && s.name == "PaymentFailed"
    });
    let payments_handler = one(&spans, |s| {
        s.service == "PaymentsFunction" && s.name == "handle StockReserved" && s.status != "error"
    });
    assert!(graph
        .upstream(compensation)
        .contains(payments_handler.span_id.as_str()));

    // `eventkit-local trace <orderId>` finds the whole of it.
    let selected = eventkit_local::traces::waterfall::select(&spans, &order_id);
    let selected: HashSet<&str> = selected.iter().map(|s| s.service.as_str()).collect();
    for function in FUNCTIONS {
        assert!(
            selected.contains(function),
            "trace {order_id} misses {function}"
        );
    }
    run.finish().await;
}

/// What DynamoDB answers while it is down.
fn internal_error() -> Canned {
    Canned {
        status: 500,
        content_type: "application/x-amz-json-1.0".into(),
        body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"the provider is down"}"#.into(),
    }
}

fn address(endpoint: &str) -> SocketAddr {
    endpoint
        .trim_start_matches("http://")
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .expect("a host:port endpoint")
}

/// Publishes a declined OrderPlaced to `topic` as a traced producer does: inside a root span
/// `place order`, with eventkit's publisher (whose publish span the event carries), the spans
/// exported to `receiver`. On a thread of its own, under a subscriber of its own: the
/// blocking exporter keeps off the test's runtime, and the functions' spans are not the
/// test process's.
async fn place_order(order_id: String, topic: String, receiver: String, endpoints: Endpoints) {
    // A thread outside the test's runtime: the producer's own runtime starts and ends there.
    let producer = std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{receiver}/v1/traces"))
            .build()
            .expect("an OTLP exporter");
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(PRODUCER)
                    .build(),
            )
            .build();
        // The producer's own spans and eventkit's, not the SDK's requests.
        let ours = tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.target().starts_with("eventkit") || metadata.target().starts_with("e2e_trace")
        });
        let subscriber = tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(PRODUCER))
                .with_filter(ours),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("place order", order_id = order_id.as_str());
            let _entered = span.enter();
            runtime.block_on(async {
                let clients = Clients::new(&endpoints).await;
                let order = Order {
                    order_id: order_id.clone(),
                    customer_id: "cus-1".into(),
                    customer_email: "ada@example.com".into(),
                    items: vec![LineItem {
                        sku: "SKU-A".into(),
                        quantity: 2,
                    }],
                    amount_cents: 4513,
                    currency: "EUR".into(),
                };
                let envelope = EventEnvelope::new(SOURCE, OrderPlaced::from(order));
                assert!(
                    envelope.traceparent.is_some(),
                    "created inside the traced span"
                );
                let event = OutgoingEvent::from_envelope(&envelope).expect("serializable");
                SnsPublisher::new(clients.sns.clone(), topic)
                    .publish_one(&event)
                    .await
                    .expect("the order is published");
            });
        });
        provider
            .force_flush()
            .expect("the producer's spans exported");
    });
    tokio::task::spawn_blocking(move || producer.join())
        .await
        .expect("the producer's thread was joined")
        .expect("the producer ran");
}

/// Polls the span file until `seen` holds, or `timeout` passes; whether it held.
async fn wait_for(file: &Path, timeout: Duration, seen: impl Fn(&[StoredSpan]) -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if read_spans(file).is_ok_and(|spans| seen(&spans)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// The one span that `matches`.
fn one(spans: &[StoredSpan], matches: impl Fn(&StoredSpan) -> bool) -> &StoredSpan {
    let found: Vec<&StoredSpan> = spans.iter().filter(|s| matches(s)).collect();
    match found[..] {
        [span] => span,
        _ => panic!(
            "{} spans match, not one: {:#?}",
            found.len(),
            found
                .iter()
                .map(|s| (&s.service, &s.name))
                .collect::<Vec<_>>()
        ),
    }
}

/// The spans by id, and the way up from one: its parent and the spans it links to.
struct Graph<'a> {
    spans: HashMap<&'a str, &'a StoredSpan>,
}

impl<'a> Graph<'a> {
    fn new(spans: &'a [StoredSpan]) -> Self {
        Self {
            spans: spans.iter().map(|s| (s.span_id.as_str(), s)).collect(),
        }
    }

    fn up(&self, span: &'a StoredSpan) -> impl Iterator<Item = &'a StoredSpan> + '_ {
        span.parent_span_id
            .iter()
            .map(String::as_str)
            .chain(span.links.iter().map(|link| link.span_id.as_str()))
            .filter_map(|id| self.spans.get(id).copied())
    }

    /// The ids of every span `span` descends from, through parents and links.
    fn upstream(&self, span: &'a StoredSpan) -> HashSet<&'a str> {
        let mut seen = HashSet::new();
        let mut queue: VecDeque<&StoredSpan> = self.up(span).collect();
        while let Some(next) = queue.pop_front() {
            if seen.insert(next.span_id.as_str()) {
                queue.extend(self.up(next));
            }
        }
        seen
    }

    /// The nearest publish (producer) span above `span`, through its parents and links.
    fn nearest_publish(&self, span: &'a StoredSpan) -> Option<&'a str> {
        let mut seen = HashSet::new();
        let mut queue: VecDeque<&StoredSpan> = self.up(span).collect();
        while let Some(next) = queue.pop_front() {
            if next.kind == "producer" {
                return Some(next.span_id.as_str());
            }
            if seen.insert(next.span_id.as_str()) {
                queue.extend(self.up(next));
            }
        }
        None
    }
}
