//! The spans of a traced invocation (feature `otel`), by the OpenTelemetry messaging
//! conventions: an invocation span over the batch and a span per record, both `consumer`
//! spans with `messaging.*` attributes.
//!
//! A batch mixes records of many traces, so where it has several records the invocation
//! span links to every record's producer context, and each record span to its own; a batch
//! of one record (every SNS and EventBridge invocation) continues its producer's trace: the
//! invocation span is the producer span's child. Failures are recorded on the record span
//! (status error, `error.type` the class), where the waterfall shows them.
//!
//! The contexts come from the records themselves (the envelope's `traceparent`, else the
//! `traceparent` message attribute). Without an OpenTelemetry layer in the subscriber the
//! spans are plain `tracing` spans: nothing is parsed, linked or exported.

use opentelemetry::trace::{SpanContext, Status, TraceContextExt};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::context::{extract, inject, TRACEPARENT_ATTRIBUTE};
use super::logging::remember_trace_id;
use crate::batch::RecordFailure;
use crate::events::{EventRecord, OutgoingEvent, PublishFailure, Source};
use crate::handler::Invocation;

/// `messaging.system` of records from `source`.
fn messaging_system(source: Source) -> &'static str {
    match source {
        Source::Sqs | Source::SnsViaSqs { .. } | Source::EventBridgeViaSqs => "aws_sqs",
        Source::Sns => "aws.sns",
        Source::EventBridge => "aws.eventbridge",
        Source::DynamoDbStream => "aws.dynamodb",
    }
}

/// Whether the current subscriber exports spans to OpenTelemetry (it has the layer).
pub(crate) fn traced(span: &tracing::Span) -> bool {
    !span.is_disabled() && span.context().span().span_context().is_valid()
}

/// The span of one invocation's batch of `records`.
pub(crate) fn invocation_span(records: &[EventRecord], invocation: &Invocation) -> tracing::Span {
    let first = records.first();
    let system = first.map_or("aws", |record| messaging_system(record.source()));
    let destination = first
        .and_then(EventRecord::destination)
        .filter(|name| records.iter().all(|r| r.destination() == Some(*name)));
    let name = format!("process {}", destination.unwrap_or(system));
    let span = tracing::info_span!(
        "invocation",
        otel.name = %name,
        otel.kind = "consumer",
        messaging.system = system,
        messaging.operation.type = "process",
        messaging.batch.message_count = records.len(),
        messaging.destination.name = destination,
        faas.invocation_id = invocation.request_id(),
        eventkit.records_failed = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let producers: Vec<SpanContext> = records.iter().filter_map(producer_context).collect();
    match (records.len(), producers.as_slice()) {
        (1, [producer]) => {
            let parent = opentelemetry::Context::new().with_remote_span_context(producer.clone());
            // Fails only without an OpenTelemetry layer: then there is nothing to join.
            let _ = span.set_parent(parent);
        }
        _ => {
            for producer in producers {
                span.add_link(producer);
            }
        }
    }
    remember_trace_id(&span);
    span
}

/// The span a record is processed in: [`record_span`](super::record_span)'s ids and the
/// messaging attributes, linked to the record's producer context unless the current
/// (invocation) span already continues that trace.
pub(crate) fn record_span(
    record: &EventRecord,
    event_id: &str,
    correlation_id: &str,
) -> tracing::Span {
    let event_type = record
        .json()
        .ok()
        .and_then(|json| json.get("eventType"))
        .and_then(serde_json::Value::as_str);
    let span = tracing::info_span!(
        "record",
        record_id = record.id(),
        event_id,
        correlation_id,
        otel.name = event_type.unwrap_or("record"),
        otel.kind = "consumer",
        messaging.system = messaging_system(record.source()),
        messaging.operation.type = "process",
        messaging.message.id = record.id(),
        messaging.destination.name = record.destination(),
        eventkit.event_type = event_type,
        eventkit.receive_count = record.receive_count(),
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(producer) = producer_context(record) {
        let current = tracing::Span::current();
        let joined = traced(&current)
            && current.context().span().span_context().trace_id() == producer.trace_id();
        if !joined {
            span.add_link(producer);
        }
    }
    remember_trace_id(&span);
    span
}

/// Records `failure` on the record's span: status error with its reason, `error.type` its
/// class (`permanent` or `transient`), `eventkit.failure` what happened.
pub(crate) fn record_failure(span: &tracing::Span, failure: &RecordFailure) {
    if span.is_disabled() {
        return;
    }
    span.set_status(Status::error(failure.reason.clone()));
    span.set_attribute("error.type", failure.class.to_string());
    span.set_attribute("eventkit.failure", format!("{:?}", failure.kind));
}

/// The context the record's producer propagated: the envelope's `traceparent` (with its
/// `tracestate`), else the `traceparent` message attribute; for a stream record of the
/// outbox, the context its committing handler stored with the event (the item's
/// `attributes`, or the first event's on a record that carries events). `None` when there is
/// none or it does not parse.
pub(crate) fn producer_context(record: &EventRecord) -> Option<SpanContext> {
    let json = record.json().ok();
    let field = |name| {
        json.and_then(|json| json.get(name))
            .and_then(serde_json::Value::as_str)
    };
    if let Some(traceparent) = field("traceparent") {
        return extract(traceparent, field("tracestate"));
    }
    if let Some(traceparent) = record.attribute(TRACEPARENT_ATTRIBUTE) {
        return extract(traceparent, None);
    }
    if record.source() != Source::DynamoDbStream {
        return None;
    }
    let json = json?;
    let stored = |item: &serde_json::Value| {
        item.get("attributes")?
            .get(TRACEPARENT_ATTRIBUTE)?
            .as_str()
            .map(str::to_string)
    };
    let traceparent =
        stored(json).or_else(|| json.get(OUTBOX_EVENTS)?.as_array()?.iter().find_map(stored))?;
    extract(&traceparent, None)
}

/// The attribute of an idempotency record that carries its completion's events (the
/// outbox's `OUTBOX_LIST`, which exists only with the feature `dynamodb`).
const OUTBOX_EVENTS: &str = "outbox";

/// The producer spans of one publish call: one per event, each event rewritten to carry
/// its span's context (the envelope's `traceparent` and the message attribute), so that
/// the consumer's record span is the publish span's child and the time between them (the
/// carrier's delivery, the queue's wait) shows as the wait before the consumer.
pub(crate) struct PublishSpans {
    spans: Vec<tracing::Span>,
    events: Vec<OutgoingEvent>,
}

impl PublishSpans {
    /// Opens a `producer` span per event of `events`, sent to `destination` of `system`:
    /// the child of the current span, or, for an event whose stored context is of another
    /// trace (the relay publishing what a handler committed), the child of that context
    /// with a link to the current span. `None` when nothing is traced: the events go as
    /// they are.
    pub(crate) fn open(
        events: &[OutgoingEvent],
        system: &'static str,
        destination: &str,
    ) -> Option<Self> {
        let current = tracing::Span::current();
        let current_context =
            traced(&current).then(|| current.context().span().span_context().clone());
        if current_context.is_none() && !super::otel::is_exporting() {
            return None;
        }
        let destination = short_name(destination);
        let mut spans = Vec::with_capacity(events.len());
        let mut rewritten = Vec::with_capacity(events.len());
        for event in events {
            let span = tracing::info_span!(
                "publish",
                otel.name = format!("publish {destination}"),
                otel.kind = "producer",
                messaging.system = system,
                messaging.operation.type = "send",
                messaging.destination.name = destination,
                messaging.message.id = event.event_id.as_str(),
                eventkit.event_type = event.event_type.as_str(),
                eventkit.outcome = Empty,
            );
            if span.is_disabled() {
                return None;
            }
            let stored = event
                .attributes
                .get(TRACEPARENT_ATTRIBUTE)
                .and_then(|traceparent| extract(traceparent, None));
            if let Some(stored) = stored {
                let same_trace = current_context
                    .as_ref()
                    .is_some_and(|current| current.trace_id() == stored.trace_id());
                if !same_trace {
                    let parent = opentelemetry::Context::new().with_remote_span_context(stored);
                    let _ = span.set_parent(parent);
                    if let Some(current) = &current_context {
                        span.add_link(current.clone());
                    }
                }
            }
            let context = inject(&span.context())?;
            remember_trace_id(&span);
            rewritten.push(carrying(event, &context.traceparent));
            spans.push(span);
        }
        Some(Self {
            spans,
            events: rewritten,
        })
    }

    /// The events as they are sent: each carrying its publish span's context.
    pub(crate) fn events(&self) -> &[OutgoingEvent] {
        &self.events
    }

    /// Ends the spans, each failed one with its code and message.
    pub(crate) fn close(self, failures: &[PublishFailure]) {
        for (index, span) in self.spans.into_iter().enumerate() {
            match failures.iter().find(|failure| failure.index == index) {
                Some(failure) => {
                    span.record("eventkit.outcome", "failed");
                    span.set_status(Status::error(format!(
                        "{}: {}",
                        failure.code, failure.message
                    )));
                    span.set_attribute("error.type", failure.code.clone());
                }
                None => {
                    span.record("eventkit.outcome", "published");
                }
            }
        }
    }
}

/// `event` carrying `traceparent`: as its message attribute, and in its envelope (the
/// value it had replaced, or, for an envelope without one, added as its first field), so
/// that a carrier without attributes (EventBridge) carries it too. A body that is not an
/// envelope is left as it is.
fn carrying(event: &OutgoingEvent, traceparent: &str) -> OutgoingEvent {
    let mut event = event.clone();
    let field = |value: &str| format!("\"{TRACEPARENT_ATTRIBUTE}\":\"{value}\"");
    let previous = event
        .attributes
        .insert(TRACEPARENT_ATTRIBUTE.to_string(), traceparent.to_string());
    match previous {
        Some(previous) => {
            // The envelope's fields come before its data, so the first occurrence is its own.
            event.body = event
                .body
                .replacen(&field(&previous), &field(traceparent), 1);
        }
        None if event.body.starts_with("{\"eventId\":") => {
            event.body = format!("{{{},{}", field(traceparent), &event.body[1..]);
        }
        None => {}
    }
    event
}

/// The last part of an ARN, URL or name: what `messaging.destination.name` shows.
fn short_name(destination: &str) -> &str {
    destination
        .rsplit(['/', ':'])
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or(destination)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use aws_lambda_events::sqs::SqsEvent;
    use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use serde_json::{json, Value};
    use tracing::instrument::WithSubscriber;
    use tracing_subscriber::layer::SubscriberExt;

    use super::PublishSpans;
    use crate::batch::{Deadline, RecordError};
    use crate::events::EventEnvelope;
    use crate::handler::{Handler, Json};
    use crate::runtime::EventFunction;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    const PRODUCER_A: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const PRODUCER_B: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    /// Runs `future` under a subscriber that records its spans with OpenTelemetry, and
    /// returns its output with the spans that ended.
    async fn traced<F: Future>(future: F) -> (F::Output, Vec<SpanData>) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let output = future.with_subscriber(subscriber).await;
        provider.force_flush().unwrap();
        (output, exporter.get_finished_spans().unwrap())
    }

    fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
        spans.iter().filter(|span| span.name == name).collect()
    }

    fn attribute(span: &SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    /// An SQS event from queue `orders`, one message per body, with a `traceparent` message
    /// attribute where `attribute` gives one.
    fn sqs_event(bodies: &[(Value, Option<&str>)]) -> SqsEvent {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, (body, attribute))| {
                let attributes = match attribute {
                    Some(value) => {
                        json!({"traceparent": {"stringValue": value, "dataType": "String"}})
                    }
                    None => json!({}),
                };
                json!({
                    "messageId": format!("m-{i}"), "receiptHandle": "r", "body": body.to_string(),
                    "attributes": {"ApproximateReceiveCount": "2"},
                    "messageAttributes": attributes, "md5OfBody": "x", "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn envelope(event_id: &str, traceparent: Option<&str>, ok: bool) -> Value {
        let mut envelope = json!({
            "eventId": event_id, "eventType": "OrderPlaced", "eventVersion": 1,
            "source": "orders", "time": "2026-12-01T00:00:00Z",
            "correlationId": "c-1", "causationId": event_id, "data": {"ok": ok}
        });
        if let Some(traceparent) = traceparent {
            envelope["traceparent"] = json!(traceparent);
        }
        envelope
    }

    async fn judge(Json(body): Json<Value>) -> Result<(), RecordError> {
        if body["data"]["ok"] == json!(true) {
            Ok(())
        } else {
            Err(RecordError::permanent("not ok"))
        }
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(30))
    }

    fn trace_of(traceparent: &str) -> TraceId {
        TraceId::from_hex(&traceparent[3..35]).unwrap()
    }

    fn span_of(traceparent: &str) -> SpanId {
        SpanId::from_hex(&traceparent[36..52]).unwrap()
    }

    #[tokio::test]
    async fn a_batch_of_one_continues_its_producers_trace() {
        let function = EventFunction::new(Handler::new(judge));
        let event = sqs_event(&[(envelope("e-1", Some(PRODUCER_A), true), None)]);
        let (response, spans) = traced(function.handle_sqs(&event, deadline())).await;
        assert!(response.unwrap().batch_item_failures.is_empty());

        let [invocation] = named(&spans, "process orders")[..] else {
            panic!("one invocation span: {spans:#?}")
        };
        assert_eq!(invocation.span_context.trace_id(), trace_of(PRODUCER_A));
        assert_eq!(invocation.parent_span_id, span_of(PRODUCER_A));
        assert!(invocation.links.is_empty());
        assert_eq!(invocation.span_kind, SpanKind::Consumer);
        assert_eq!(
            attribute(invocation, "messaging.batch.message_count").as_deref(),
            Some("1")
        );

        let [record] = named(&spans, "OrderPlaced")[..] else {
            panic!("one record span: {spans:#?}")
        };
        assert_eq!(record.parent_span_id, invocation.span_context.span_id());
        assert_eq!(record.span_context.trace_id(), trace_of(PRODUCER_A));
        assert!(record.links.is_empty(), "a child needs no link");
        for (key, value) in [
            ("messaging.system", "aws_sqs"),
            ("messaging.operation.type", "process"),
            ("messaging.message.id", "m-0"),
            ("messaging.destination.name", "orders"),
            ("event_id", "e-1"),
            ("correlation_id", "c-1"),
            ("eventkit.receive_count", "2"),
        ] {
            assert_eq!(attribute(record, key).as_deref(), Some(value), "{key}");
        }
    }

    #[tokio::test]
    async fn a_batch_of_several_links_each_record_to_its_producer() {
        let function = EventFunction::new(Handler::new(judge));
        let event = sqs_event(&[
            (envelope("e-1", Some(PRODUCER_A), true), None),
            // A body without a context: the message attribute's is used.
            (envelope("e-2", None, true), Some(PRODUCER_B)),
            // No context anywhere: no link, and nothing fails.
            (envelope("e-3", None, true), None),
        ]);
        let (response, spans) = traced(function.handle_sqs(&event, deadline())).await;
        assert!(response.unwrap().batch_item_failures.is_empty());

        let [invocation] = named(&spans, "process orders")[..] else {
            panic!("one invocation span: {spans:#?}")
        };
        let linked: Vec<(TraceId, SpanId)> = invocation
            .links
            .iter()
            .map(|link| (link.span_context.trace_id(), link.span_context.span_id()))
            .collect();
        assert_eq!(
            linked,
            [
                (trace_of(PRODUCER_A), span_of(PRODUCER_A)),
                (trace_of(PRODUCER_B), span_of(PRODUCER_B))
            ]
        );
        // A trace of its own, not any producer's.
        let trace = invocation.span_context.trace_id();
        assert_ne!(trace, trace_of(PRODUCER_A));
        assert_ne!(trace, trace_of(PRODUCER_B));
        assert_eq!(invocation.parent_span_id, SpanId::INVALID);

        let records = named(&spans, "OrderPlaced");
        assert_eq!(records.len(), 3);
        for record in &records {
            assert_eq!(record.parent_span_id, invocation.span_context.span_id());
            assert_eq!(record.span_context.trace_id(), trace);
            let links: Vec<SpanId> = record
                .links
                .iter()
                .map(|link| link.span_context.span_id())
                .collect();
            let expected: Vec<SpanId> = match attribute(record, "event_id").as_deref() {
                Some("e-1") => vec![span_of(PRODUCER_A)],
                Some("e-2") => vec![span_of(PRODUCER_B)],
                _ => vec![],
            };
            assert_eq!(links, expected);
        }
    }

    #[tokio::test]
    async fn a_failed_record_carries_its_error_and_class() {
        let function = EventFunction::new(Handler::new(judge));
        let event = sqs_event(&[
            (envelope("e-1", None, true), None),
            (envelope("e-2", None, false), None),
        ]);
        let (response, spans) = traced(function.handle_sqs(&event, deadline())).await;
        assert_eq!(response.unwrap().batch_item_failures.len(), 1);
        let records = named(&spans, "OrderPlaced");
        let failed: Vec<_> = records
            .iter()
            .filter(|span| matches!(span.status, opentelemetry::trace::Status::Error { .. }))
            .collect();
        let [failed] = failed[..] else {
            panic!("one failed record: {records:#?}")
        };
        assert_eq!(attribute(failed, "event_id").as_deref(), Some("e-2"));
        assert_eq!(
            attribute(failed, "error.type").as_deref(),
            Some("permanent")
        );
        assert!(matches!(
            &failed.status,
            opentelemetry::trace::Status::Error { description } if description.contains("not ok")
        ));
        let [invocation] = named(&spans, "process orders")[..] else {
            panic!("one invocation span")
        };
        assert_eq!(
            attribute(invocation, "eventkit.records_failed").as_deref(),
            Some("1")
        );
    }

    #[tokio::test]
    async fn an_event_created_while_a_record_is_handled_carries_the_records_context() {
        async fn forward(Json(body): Json<Value>) -> Result<String, RecordError> {
            let cause: EventEnvelope<Value> = serde_json::from_value(body).unwrap();
            let next = EventEnvelope::from_parts("StockReserved", 1, "inventory", json!({}))
                .following(&cause);
            Ok(next.traceparent.unwrap_or_default())
        }
        let function = EventFunction::new(Handler::new(forward));
        let event = sqs_event(&[(envelope("e-1", Some(PRODUCER_A), true), None)]);
        let records = crate::events::records_from(&event, &Default::default());
        let (outcome, spans) = traced(function.process(records, deadline())).await;
        let traceparent = outcome.records[0].result.as_ref().unwrap().output.clone();

        let [record] = named(&spans, "OrderPlaced")[..] else {
            panic!("one record span: {spans:#?}")
        };
        let [handler] = named(&spans, "handle OrderPlaced")[..] else {
            panic!("one handler span: {spans:#?}")
        };
        assert_eq!(handler.parent_span_id, record.span_context.span_id());
        assert_eq!(
            attribute(handler, "eventkit.outcome").as_deref(),
            Some("ok")
        );
        // The next hop's producer is the handler's span, in the first producer's trace.
        assert_eq!(
            traceparent,
            format!(
                "00-{}-{}-01",
                handler.span_context.trace_id(),
                handler.span_context.span_id()
            )
        );
        assert_eq!(record.span_context.trace_id(), trace_of(PRODUCER_A));
    }

    #[tokio::test]
    async fn a_claimed_record_shows_claim_handler_and_completion_and_its_duplicate_a_replay() {
        use crate::handler::RecordHandlerExt as _;
        use crate::idempotency::{IdempotencyConfig, IdempotencyLayer, InMemoryStore};
        let store = std::sync::Arc::new(InMemoryStore::new());
        let layer = IdempotencyLayer::new(store, IdempotencyConfig::new("orders"));
        let function = EventFunction::new(Handler::new(judge).layer(layer));
        let event = sqs_event(&[(envelope("e-1", Some(PRODUCER_A), true), None)]);
        let ((), spans) = traced(async {
            for _ in 0..2 {
                let response = function.handle_sqs(&event, deadline()).await;
                assert!(response.unwrap().batch_item_failures.is_empty());
            }
        })
        .await;

        let records = named(&spans, "OrderPlaced");
        let claims = named(&spans, "idempotency claim");
        assert_eq!((records.len(), claims.len()), (2, 2), "{spans:#?}");
        let child_of = |span: &SpanData, parent: &SpanData| {
            span.parent_span_id == parent.span_context.span_id()
                && span.span_context.trace_id() == parent.span_context.trace_id()
        };
        // The first delivery: claimed, the handler ran, its result stored.
        let first = claims.iter().find(|c| child_of(c, records[0])).unwrap();
        assert_eq!(
            attribute(first, "eventkit.idempotency.outcome").as_deref(),
            Some("claimed")
        );
        assert_eq!(
            attribute(first, "eventkit.idempotency.replayed").as_deref(),
            Some("false")
        );
        assert!(attribute(first, "eventkit.idempotency.key")
            .is_some_and(|key| key.starts_with("orders#")));
        let [handler] = named(&spans, "handle OrderPlaced")[..] else {
            panic!("the handler ran once: {spans:#?}")
        };
        assert!(child_of(handler, records[0]));
        let [complete] = named(&spans, "idempotency complete")[..] else {
            panic!("one completion: {spans:#?}")
        };
        assert!(child_of(complete, records[0]));
        assert_eq!(
            attribute(complete, "eventkit.idempotency.outcome").as_deref(),
            Some("completed")
        );
        assert!(handler.end_time <= complete.start_time);
        // The duplicate: replayed, nothing else.
        let second = claims.iter().find(|c| child_of(c, records[1])).unwrap();
        assert_eq!(
            attribute(second, "eventkit.idempotency.outcome").as_deref(),
            Some("replayed")
        );
        assert_eq!(
            attribute(second, "eventkit.idempotency.replayed").as_deref(),
            Some("true")
        );
        // Both deliveries join the producer's trace.
        for record in records {
            assert_eq!(record.span_context.trace_id(), trace_of(PRODUCER_A));
        }
    }

    #[tokio::test]
    async fn claims_made_in_one_batched_request_are_told_on_the_records_spans() {
        use crate::handler::RecordHandlerExt as _;
        use crate::idempotency::{IdempotencyConfig, IdempotencyLayer, InMemoryStore};
        let store = std::sync::Arc::new(InMemoryStore::new());
        let layer = IdempotencyLayer::new(store, IdempotencyConfig::new("orders"));
        let function = EventFunction::new(Handler::new(judge).layer(layer));
        let first = sqs_event(&[
            (envelope("e-1", Some(PRODUCER_A), true), None),
            (envelope("e-2", Some(PRODUCER_B), true), None),
        ]);
        // e-2 again, with a new one: one replay, one claim.
        let second = sqs_event(&[
            (envelope("e-2", Some(PRODUCER_B), true), None),
            (envelope("e-3", Some(PRODUCER_A), true), None),
        ]);
        let ((), spans) = traced(async {
            for event in [&first, &second] {
                let response = function.handle_sqs(event, deadline()).await;
                assert!(response.unwrap().batch_item_failures.is_empty());
            }
        })
        .await;

        // One span per batched request; none per record, which would last no time.
        assert_eq!(named(&spans, "idempotency claim batch").len(), 2);
        assert!(named(&spans, "idempotency claim").is_empty(), "{spans:#?}");
        let outcomes: Vec<(String, String, String)> = named(&spans, "OrderPlaced")
            .into_iter()
            .map(|record| {
                let value = |key| attribute(record, key).unwrap_or_default();
                (
                    value("messaging.message.id"),
                    value("eventkit.idempotency.outcome"),
                    value("eventkit.idempotency.replayed"),
                )
            })
            .collect();
        let count = |outcome: &str, replayed: &str| {
            outcomes
                .iter()
                .filter(|(_, o, r)| o == outcome && r == replayed)
                .count()
        };
        assert_eq!(
            (count("claimed", "false"), count("replayed", "true")),
            (3, 1),
            "{outcomes:?}"
        );
        assert_eq!(named(&spans, "handle OrderPlaced").len(), 3);
        // Completed alike: a span per shared request, the outcome on each record.
        assert_eq!(named(&spans, "idempotency complete batch").len(), 2);
        assert!(named(&spans, "idempotency complete").is_empty());
        let completed = named(&spans, "OrderPlaced")
            .into_iter()
            .filter(|record| {
                attribute(record, "eventkit.idempotency.completion").as_deref() == Some("completed")
            })
            .count();
        assert_eq!(completed, 3);
    }

    #[tokio::test]
    async fn a_record_released_unrun_has_one_span_not_two() {
        use crate::handler::RecordHandlerExt as _;
        use crate::idempotency::{IdempotencyConfig, IdempotencyLayer, InMemoryStore};
        let store = std::sync::Arc::new(InMemoryStore::new());
        let layer = IdempotencyLayer::new(store, IdempotencyConfig::new("orders"));
        let function = EventFunction::new(Handler::new(judge).layer(layer));
        // One message group: after the first record fails, the second is not run, and its
        // batched claim is released.
        let mut event = sqs_event(&[
            (envelope("e-1", Some(PRODUCER_A), false), None),
            (envelope("e-2", Some(PRODUCER_B), true), None),
        ]);
        for record in &mut event.records {
            record
                .attributes
                .insert("MessageGroupId".into(), "customer-1".into());
        }
        let (response, spans) = traced(function.handle_sqs(&event, deadline())).await;
        assert_eq!(response.unwrap().batch_item_failures.len(), 2);
        let records = named(&spans, "OrderPlaced");
        let ids: Vec<Option<String>> = records.iter().map(|r| attribute(r, "event_id")).collect();
        assert_eq!(records.len(), 2, "one span a record: {ids:?}");
    }

    fn outgoing(traceparent: Option<&str>) -> crate::events::OutgoingEvent {
        let mut envelope = EventEnvelope::from_parts("StockReserved", 1, "inventory", json!({}));
        envelope.traceparent = traceparent.map(str::to_string);
        crate::events::OutgoingEvent::from_envelope(&envelope).unwrap()
    }

    fn carried(event: &crate::events::OutgoingEvent) -> (String, String) {
        let body: Value = serde_json::from_str(&event.body).unwrap();
        (
            body["traceparent"].as_str().unwrap_or_default().to_string(),
            event.attributes["traceparent"].clone(),
        )
    }

    #[tokio::test]
    async fn a_publish_span_is_the_handlers_child_and_its_context_travels_with_the_event() {
        let topic = "arn:aws:sns:us-east-1:000000000000:orders-events";
        let (events, spans) = traced(async {
            let handler = tracing::info_span!("handler");
            let _ = handler.set_parent(opentelemetry::Context::new().with_remote_span_context(
                crate::telemetry::context::extract(PRODUCER_A, None).unwrap(),
            ));
            let _entered = handler.enter();
            let events = [outgoing(Some(PRODUCER_A)), outgoing(None)];
            let opened = PublishSpans::open(&events, "aws.sns", topic).unwrap();
            let sent = opened.events().to_vec();
            opened.close(&[]);
            sent
        })
        .await;
        let publishes = named(&spans, "publish orders-events");
        let [handler] = named(&spans, "handler")[..] else {
            panic!("{spans:#?}")
        };
        assert_eq!(publishes.len(), 2);
        for (event, publish) in events.iter().zip(&publishes) {
            assert_eq!(publish.span_kind, SpanKind::Producer);
            assert_eq!(publish.parent_span_id, handler.span_context.span_id());
            assert_eq!(publish.span_context.trace_id(), trace_of(PRODUCER_A));
            let expected = format!(
                "00-{}-{}-01",
                publish.span_context.trace_id(),
                publish.span_context.span_id()
            );
            // In the envelope (added to one that had none) and as the attribute.
            assert_eq!(carried(event), (expected.clone(), expected));
            assert_eq!(
                attribute(publish, "eventkit.outcome").as_deref(),
                Some("published")
            );
            assert_eq!(
                attribute(publish, "messaging.destination.name").as_deref(),
                Some("orders-events")
            );
        }
    }

    #[tokio::test]
    async fn the_relays_publish_continues_the_committing_handlers_trace_and_links_the_relay() {
        let (events, spans) = traced(async {
            // The relay's record span, in a trace of its own (a batch of several).
            let relay = tracing::info_span!("relay record");
            let _entered = relay.enter();
            let events = [outgoing(Some(PRODUCER_B))];
            let failure = crate::events::PublishFailure {
                index: 0,
                event_id: events[0].event_id.clone(),
                code: "InternalFailure".into(),
                message: "down".into(),
                attempts: 4,
            };
            let opened = PublishSpans::open(&events, "aws.eventbridge", "orders-bus").unwrap();
            let sent = opened.events().to_vec();
            opened.close(&[failure]);
            sent
        })
        .await;
        let [relay] = named(&spans, "relay record")[..] else {
            panic!("{spans:#?}")
        };
        let [publish] = named(&spans, "publish orders-bus")[..] else {
            panic!("{spans:#?}")
        };
        assert_eq!(publish.span_context.trace_id(), trace_of(PRODUCER_B));
        assert_eq!(publish.parent_span_id, span_of(PRODUCER_B));
        let linked: Vec<SpanId> = publish
            .links
            .iter()
            .map(|link| link.span_context.span_id())
            .collect();
        assert_eq!(linked, [relay.span_context.span_id()]);
        assert!(matches!(
            publish.status,
            opentelemetry::trace::Status::Error { .. }
        ));
        assert_eq!(
            attribute(publish, "error.type").as_deref(),
            Some("InternalFailure")
        );
        let (body, attribute) = carried(&events[0]);
        assert_eq!(body, attribute);
        assert!(body.contains(&publish.span_context.span_id().to_string()));
    }

    #[tokio::test]
    async fn without_a_traced_span_or_export_events_go_as_they_are() {
        assert!(PublishSpans::open(&[outgoing(Some(PRODUCER_A))], "aws.sns", "t").is_none());
    }

    #[tokio::test]
    async fn without_an_opentelemetry_layer_nothing_is_traced_or_propagated() {
        async fn make(_: Json<Value>) -> Result<Option<String>, RecordError> {
            Ok(EventEnvelope::from_parts("StockReserved", 1, "inventory", json!({})).traceparent)
        }
        let function = EventFunction::new(Handler::new(make));
        let event = sqs_event(&[(envelope("e-1", Some(PRODUCER_A), true), None)]);
        let records = crate::events::records_from(&event, &Default::default());
        // Logs only, as a function with the feature and no export configured runs.
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish();
        let outcome = function
            .process(records, deadline())
            .with_subscriber(subscriber)
            .await;
        assert_eq!(outcome.records[0].result.as_ref().unwrap().output, None);
    }
}
