//! Spans exported by real OpenTelemetry exporters (OTLP over HTTP, protobuf) reach the
//! receiver `run` starts, and `eventkit-local trace` shows them connected: a producer's span
//! (the OpenTelemetry SDK, service `orders`), the toolkit's invocation and record spans of a
//! batch of one (service `inventory`, eventkit's `otel` export through its runtime wrapper),
//! and a batch of two that links to that record. An OTLP/JSON body is received too.
//!
//! One test in this file: it installs the process's global subscriber.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use eventkit::batch::RecordError;
use eventkit::events::EventEnvelope;
use eventkit::handler::{Handler, Json};
use eventkit::runtime::EventFunction;
use eventkit_local::traces::receiver::Receiver;
use eventkit_local::traces::store::{read_spans, span_file, SpanStore};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use serde_json::{json, Value};
use tower::Service;

/// Exports one producer span (service `orders`, attribute `order_id`) with the SDK's OTLP
/// exporter to `endpoint`, and returns its W3C context. On a thread of its own: the blocking
/// HTTP client the exporter uses keeps off the test's runtime.
fn produce(endpoint: String) -> String {
    std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .build()
            .expect("an OTLP exporter");
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("orders")
                    .build(),
            )
            .build();
        let tracer = provider.tracer("orders");
        let span = tracer
            .span_builder("place order")
            .with_kind(SpanKind::Producer)
            .with_attributes([KeyValue::new("order_id", "o-42")])
            .start(&tracer);
        let context = opentelemetry::Context::current_with_span(span);
        let mut carrier = HashMap::new();
        opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .inject_context(&context, &mut carrier);
        std::thread::sleep(std::time::Duration::from_millis(5));
        context.span().end();
        provider
            .force_flush()
            .expect("the producer's span exported");
        carrier.remove("traceparent").expect("a traceparent")
    })
    .join()
    .expect("the producer's thread")
}

fn sqs_event(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("m-{i}"), "receiptHandle": "r", "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "md5OfBody": "x", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn order_placed(event_id: &str, traceparent: Option<&str>) -> Value {
    let mut event = json!({
        "eventId": event_id, "eventType": "OrderPlaced", "eventVersion": 1,
        "source": "orders", "time": "2026-12-01T00:00:00Z",
        "correlationId": "c-42", "causationId": event_id, "data": {"orderId": "o-42"}
    });
    if let Some(traceparent) = traceparent {
        event["traceparent"] = json!(traceparent);
    }
    event
}

/// The events the consumer published, as their consumers would receive them.
static PUBLISHED: Mutex<Vec<Value>> = Mutex::new(Vec::new());

/// Stock reserved for the order: the event it publishes is made while its record's span is
/// current, so it carries that span's context.
async fn reserve(Json(placed): Json<EventEnvelope<Value>>) -> Result<(), RecordError> {
    if placed.event_type != "OrderPlaced" {
        return Ok(());
    }
    let reserved =
        EventEnvelope::from_parts("StockReserved", 1, "inventory", json!({})).following(&placed);
    let reserved = serde_json::to_value(reserved).map_err(RecordError::permanent)?;
    PUBLISHED
        .lock()
        .map_err(|_| RecordError::transient("poisoned"))?
        .push(reserved);
    Ok(())
}

async fn invoke<S>(service: &mut S, payload: Value) -> Value
where
    S: Service<lambda_runtime::LambdaEvent<Value>, Response = Value>,
    S::Error: std::fmt::Debug,
{
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-1".into();
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap() + 30_000;
    service
        .call(lambda_runtime::LambdaEvent::new(payload, context))
        .await
        .expect("the invocation succeeds")
}

fn trace(project: &Path, id: &str) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .args(["trace", id, "--width", "20"])
        .current_dir(project)
        .output()
        .expect("eventkit-local runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "trace {id} failed: {stdout}{stderr}"
    );
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_spans_are_received_and_shown_as_one_connected_trace() {
    let project = std::env::temp_dir().join(format!("eventkit-traces-{}", uuid::Uuid::new_v4()));
    let store = SpanStore::create(span_file(&project, "traced")).unwrap();
    let receiver = Receiver::start(store).await.unwrap();
    let endpoint = receiver.endpoint();

    // The producer, another service, exports with the SDK alone.
    let traceparent = produce(endpoint.clone());

    // The consumer exports through eventkit, configured as `run` configures a function.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_SERVICE_NAME", "inventory");
    eventkit::telemetry::init_logging();
    assert!(eventkit::telemetry::otel::is_exporting());
    let mut service = EventFunction::new(Handler::new(reserve)).into_service();

    // A batch of one: it continues the producer's trace.
    let first = invoke(
        &mut service,
        sqs_event(&[order_placed("e-42", Some(&traceparent))]),
    )
    .await;
    assert_eq!(first["batchItemFailures"], json!([]));
    // The reservation's event, as its consumer would receive it: it carries the context of
    // the handler span it was made in, inside the record's span. Consumed in a batch of two,
    // it is linked, not joined.
    let reserved = PUBLISHED
        .lock()
        .unwrap()
        .pop()
        .expect("one event published");
    let events = read_spans(&span_file(&project, "traced")).unwrap();
    let record = events
        .iter()
        .find(|span| span.attribute("event_id") == Some("e-42"))
        .expect("the record span was flushed when the invocation returned");
    let made_in = events
        .iter()
        .find(|span| reserved["traceparent"] == format!("00-{}-{}-01", span.trace_id, span.span_id))
        .unwrap_or_else(|| panic!("no span is the event's context {}", reserved["traceparent"]));
    assert_eq!(
        made_in.parent_span_id.as_deref(),
        Some(record.span_id.as_str()),
        "the event was made in a span of the record ({})",
        made_in.name
    );
    let derived_id = reserved["eventId"].as_str().unwrap().to_string();
    let second = invoke(
        &mut service,
        sqs_event(&[reserved, order_placed("e-77", None)]),
    )
    .await;
    assert_eq!(second["batchItemFailures"], json!([]));

    let spans = read_spans(&span_file(&project, "traced")).unwrap();
    let producer_trace = &traceparent[3..35];
    let invocations: Vec<_> = spans
        .iter()
        .filter(|span| span.name == "process orders")
        .collect();
    assert_eq!(invocations.len(), 2, "{spans:#?}");
    assert_eq!(invocations[0].trace_id, producer_trace);
    assert_eq!(
        invocations[0].parent_span_id.as_deref(),
        Some(&traceparent[36..52])
    );
    assert_ne!(invocations[1].trace_id, producer_trace);
    assert_eq!(invocations[1].links.len(), 1);
    assert_eq!(invocations[1].links[0].span_id, made_in.span_id);
    assert!(spans
        .iter()
        .all(|span| span.service == "orders" || span.service == "inventory"));

    // Found by the order id on the producer's span: both traces, connected.
    let (text, _) = trace(&project, "o-42");
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "trace {producer_trace} (+1 linked): 9 span(s), 2 service(s)"
        )),
        "{text}"
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("no row {name}: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    // Number, hop, service, then the (indented) name.
    assert_eq!(row("place order")[..3], ["1", "1", "orders"]);
    assert_eq!(row("process orders")[..3], ["2", "2", "inventory"]);
    assert_eq!(row("OrderPlaced")[..3], ["3", "2", "inventory"]);
    assert!(
        lines.iter().any(|line| line.contains("StockReserved")),
        "{text}"
    );
    // The second invocation follows the first record through its link.
    let linked = lines
        .iter()
        .filter(|line| line.contains("process orders"))
        .nth(1)
        .unwrap_or_else(|| panic!("two invocations: {text}"));
    // It links the handler span the StockReserved was made in (#4, inside the record #3).
    assert!(linked.contains("link #4"), "{text}");
    let html = project.join(".local-cloud/traces/trace-o-42.html");
    assert!(
        text.contains("waterfall written to") && text.contains("trace-o-42.html"),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).expect("the HTML file is written");
    assert!(
        page.contains("<svg") && page.contains("place order") && page.contains("StockReserved")
    );

    // The same trace by the derived event's id, or by the trace id.
    let (by_event, _) = trace(&project, &derived_id);
    assert!(
        by_event.lines().next().unwrap_or("").contains("9 span(s)"),
        "{by_event}"
    );
    let (by_trace, _) = trace(&project, producer_trace);
    assert!(
        by_trace.lines().next().unwrap_or("").contains("9 span(s)"),
        "{by_trace}"
    );

    // An OTLP/JSON body is received too.
    let json_trace = "5b8efff798038103d269b633813fc60c";
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": json_trace, "spanId": "eee19b7ec3c1b174", "name": "charge", "kind": 1,
            "startTimeUnixNano": "1764547200000000000", "endTimeUnixNano": "1764547200250000000",
            "status": {"code": 2, "message": "card declined"}
        }]}]
    }]});
    let response = ureq::post(&format!("{endpoint}/v1/traces"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .expect("the JSON body is accepted");
    assert_eq!(response.status(), 200);
    let (charged, _) = trace(&project, json_trace);
    assert!(
        charged.contains("charge") && charged.contains("error: card declined"),
        "{charged}"
    );

    // Nothing known is said so, as an error.
    let unknown = Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .args(["trace", "no-such-order"])
        .current_dir(&project)
        .output()
        .expect("eventkit-local runs");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no span has no-such-order"));

    drop(receiver);
    let _ = std::fs::remove_dir_all(&project);
}
