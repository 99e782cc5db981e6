//! OTLP's protobuf wire format (an `ExportTraceServiceRequest`), written straight from the
//! SDK's ended spans.
//!
//! Why not opentelemetry-otlp's encoder (#34): it first copies every span into the generated
//! proto structs (an owned `String` per attribute key and value, a `Vec` per id), then prost
//! measures each nested message again at every level it is nested in, then frees the copies.
//! For a batch's fifty spans that was more than half of what tracing cost a record. Here each
//! field is written once, from where the SDK keeps it; a nested message's length is patched
//! in after its body. The tests decode what this writes with opentelemetry-proto's own types
//! and compare it with that crate's conversion of the same spans.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Link, SpanId, SpanKind, Status, TraceFlags};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

/// Wire types of the protobuf encoding.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// OTLP's span flags: the context's trace flags, and whether its parent's remoteness is
/// known (always, here) and true.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// Ended spans, each written as an OTLP `Span` message when it ends, grouped by
/// instrumentation scope: what waits for the next export. Written at once, a span's
/// `SpanData` is freed where it ends, and the buffers keep their room from one export to
/// the next (#34: holding the `SpanData` until the flush grew a vector of them on every
/// invocation and walked them twice).
#[derive(Debug, Default)]
pub(super) struct Encoded {
    /// In the order the scopes first appeared; a scope with no span now is left out of the
    /// request.
    scopes: Vec<ScopeSpans>,
    spans: usize,
}

/// One scope's part of a `ResourceSpans`.
#[derive(Debug)]
struct ScopeSpans {
    scope: InstrumentationScope,
    /// The `ScopeSpans` fields other than its spans: the scope and its schema URL.
    head: Vec<u8>,
    /// The spans, each a `spans` field of `ScopeSpans`.
    spans: Vec<u8>,
}

impl Encoded {
    /// Writes `span` after those written before.
    pub(super) fn push(&mut self, span: &SpanData) {
        let scope = &span.instrumentation_scope;
        let index = match self.scopes.iter().position(|known| known.scope == *scope) {
            Some(index) => index,
            None => {
                let mut head = Vec::new();
                message(&mut head, 1, |out| instrumentation_scope(out, scope));
                string(&mut head, 3, scope.schema_url().unwrap_or_default());
                self.scopes.push(ScopeSpans {
                    scope: scope.clone(),
                    head,
                    spans: Vec::new(),
                });
                self.scopes.len() - 1
            }
        };
        // A span's message is 128 bytes to 16 KiB long: two bytes for its length.
        message_reserving::<2>(&mut self.scopes[index].spans, 2, |out| {
            span_fields(out, span)
        });
        self.spans += 1;
    }

    /// How many spans are written.
    pub(super) fn len(&self) -> usize {
        self.spans
    }

    /// Whether no span is written.
    pub(super) fn is_empty(&self) -> bool {
        self.spans == 0
    }

    /// The body of one OTLP/HTTP export (an `ExportTraceServiceRequest`) of every span
    /// written, all of `resource`: a single `ResourceSpans` with a `ScopeSpans` per scope.
    /// Empties the buffers, which keep their room.
    pub(super) fn take_request(&mut self, resource: &EncodedResource) -> Vec<u8> {
        let scope_spans = |scope: &ScopeSpans| scope.head.len() + scope.spans.len();
        let resource_spans = resource.resource.len()
            + resource.schema_url.len()
            + self
                .scopes
                .iter()
                .filter(|scope| !scope.spans.is_empty())
                .map(|scope| field_size(scope_spans(scope)))
                .sum::<usize>();
        // Every length is known: written once, front to back.
        let mut out = Vec::with_capacity(field_size(resource_spans));
        tag(&mut out, 1, LENGTH_DELIMITED);
        varint(&mut out, resource_spans as u64);
        out.extend_from_slice(&resource.resource);
        for scope in self
            .scopes
            .iter_mut()
            .filter(|scope| !scope.spans.is_empty())
        {
            tag(&mut out, 2, LENGTH_DELIMITED);
            varint(&mut out, scope_spans(scope) as u64);
            out.extend_from_slice(&scope.head);
            out.extend_from_slice(&scope.spans);
            scope.spans.clear();
        }
        out.extend_from_slice(&resource.schema_url);
        self.spans = 0;
        out
    }
}

/// A resource's fields of every `ResourceSpans`, written once.
#[derive(Debug)]
pub(super) struct EncodedResource {
    resource: Vec<u8>,
    schema_url: Vec<u8>,
}

impl EncodedResource {
    pub(super) fn new(resource: &Resource) -> Self {
        let mut message_of_resource = Vec::new();
        message(&mut message_of_resource, 1, |out| {
            for (key, value) in resource.iter() {
                key_value(out, 1, key, value);
            }
        });
        let mut schema_url = Vec::new();
        string(
            &mut schema_url,
            3,
            resource.schema_url().unwrap_or_default(),
        );
        Self {
            resource: message_of_resource,
            schema_url,
        }
    }
}

/// The size of a length-delimited field of `length` bytes with a one-byte tag (fields 1
/// to 15).
fn field_size(length: usize) -> usize {
    1 + varint_bytes(length as u64).1 + length
}

fn instrumentation_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(out, 1, scope.name());
    string(out, 2, scope.version().unwrap_or_default());
    for attribute in scope.attributes() {
        key_value(out, 3, &attribute.key, &attribute.value);
    }
}

/// The fields of a `Span` message.
fn span_fields(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    string(out, 3, &context.trace_state().header());
    if span.parent_span_id != SpanId::INVALID {
        bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    fixed32(
        out,
        16,
        flags(span.parent_span_is_remote, context.trace_flags()),
    );
    string(out, 5, &span.name);
    uint(out, 6, span_kind(&span.span_kind));
    fixed64(out, 7, unix_nanos(span.start_time));
    fixed64(out, 8, unix_nanos(span.end_time));
    attributes(out, 9, &span.attributes);
    uint(out, 10, span.dropped_attributes_count.into());
    for event in span.events.iter() {
        message(out, 11, |out| {
            fixed64(out, 1, unix_nanos(event.timestamp));
            string(out, 2, &event.name);
            attributes(out, 3, &event.attributes);
            uint(out, 4, event.dropped_attributes_count.into());
        });
    }
    uint(out, 12, span.events.dropped_count.into());
    for link in span.links.iter() {
        message(out, 13, |out| link_fields(out, link));
    }
    uint(out, 14, span.links.dropped_count.into());
    // Always present, as the SDK's conversion sends it.
    message(out, 15, |out| {
        if let Status::Error { description } = &span.status {
            string(out, 2, description);
        }
        uint(out, 3, status_code(&span.status));
    });
}

fn link_fields(out: &mut Vec<u8>, link: &Link) {
    let context = &link.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    string(out, 3, &context.trace_state().header());
    attributes(out, 4, &link.attributes);
    uint(out, 5, link.dropped_attributes_count.into());
    fixed32(out, 6, flags(context.is_remote(), context.trace_flags()));
}

fn flags(remote: bool, trace_flags: TraceFlags) -> u32 {
    u32::from(trace_flags.to_u8()) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

/// OTLP's `SpanKind` numbers.
fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// OTLP's `StatusCode` numbers.
fn status_code(status: &Status) -> u64 {
    match status {
        Status::Unset => 0,
        Status::Ok => 1,
        Status::Error { .. } => 2,
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

fn attributes(out: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for attribute in attributes {
        key_value(out, field, &attribute.key, &attribute.value);
    }
}

/// A `KeyValue` message as field `field`.
fn key_value(out: &mut Vec<u8>, field: u32, key: &Key, value: &Value) {
    message(out, field, |out| {
        string(out, 1, key.as_str());
        message(out, 2, |out| any_value(out, value));
    });
}

/// The fields of an `AnyValue`: a oneof, so its field is written even when it holds the
/// default (an empty string, `false`, 0), which is what tells the variant.
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(value) => {
            tag(out, 2, VARINT);
            varint(out, u64::from(*value));
        }
        Value::I64(value) => {
            tag(out, 3, VARINT);
            varint(out, *value as u64);
        }
        Value::F64(value) => {
            tag(out, 4, FIXED64);
            out.extend_from_slice(&value.to_le_bytes());
        }
        Value::String(value) => length_delimited(out, 1, value.as_str().as_bytes()),
        Value::Array(array) => message(out, 5, |out| array_values(out, array)),
        // A kind of value newer than this encoder: sent as its text.
        other => length_delimited(out, 1, other.as_str().as_bytes()),
    }
}

/// The `values` of an `ArrayValue`.
fn array_values(out: &mut Vec<u8>, array: &Array) {
    let mut each = |value: Value| message(out, 1, |out| any_value(out, &value));
    match array {
        Array::Bool(values) => values.iter().for_each(|v| each(Value::Bool(*v))),
        Array::I64(values) => values.iter().for_each(|v| each(Value::I64(*v))),
        Array::F64(values) => values.iter().for_each(|v| each(Value::F64(*v))),
        Array::String(values) => values.iter().for_each(|v| each(Value::String(v.clone()))),
        // A kind of array newer than this encoder: sent as its text.
        other => each(Value::String(other.to_string().into())),
    }
}

/// A nested message as field `field`: its body is written in place, then its length put
/// before it (one byte reserved; a longer length moves the body along).
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    message_reserving::<1>(out, field, body);
}

/// [`message`] with `RESERVED` bytes kept for the length: a body whose length takes as
/// many is not moved.
fn message_reserving<const RESERVED: usize>(
    out: &mut Vec<u8>,
    field: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    tag(out, field, LENGTH_DELIMITED);
    let at = out.len();
    out.extend_from_slice(&[0; RESERVED]);
    body(out);
    let (prefix, size) = varint_bytes((out.len() - at - RESERVED) as u64);
    if size == RESERVED {
        out[at..at + size].copy_from_slice(&prefix[..size]);
    } else {
        out.splice(at..at + RESERVED, prefix[..size].iter().copied());
    }
}

/// A string field; the default (empty) is not written, as proto3 does.
fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    if !value.is_empty() {
        length_delimited(out, field, value.as_bytes());
    }
}

/// A bytes field; the default (empty) is not written.
fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        length_delimited(out, field, value);
    }
}

fn length_delimited(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(out, field, LENGTH_DELIMITED);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// An unsigned integer (or enum) field; 0 is not written.
fn uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, VARINT);
        varint(out, value);
    }
}

/// A `fixed64` field; 0 is not written.
fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, FIXED64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A `fixed32` field; 0 is not written.
fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        tag(out, field, FIXED32);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire_type)));
}

fn varint(out: &mut Vec<u8>, value: u64) {
    // Most tags and lengths take one byte: pushed without the general case's array.
    if value < 0x80 {
        out.push(value as u8);
        return;
    }
    let (bytes, size) = varint_bytes(value);
    out.extend_from_slice(&bytes[..size]);
}

/// `value` as a protobuf varint: its bytes (at most ten) and how many there are.
fn varint_bytes(mut value: u64) -> ([u8; 10], usize) {
    let mut bytes = [0_u8; 10];
    let mut size = 0;
    while value >= 0x80 {
        bytes[size] = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
        size += 1;
    }
    bytes[size] = value as u8;
    (bytes, size + 1)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{SpanContext, SpanId, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;

    use super::*;

    fn context(trace: u128, span: u64, remote: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            TraceState::from_key_value([("vendor", "value")]).unwrap_or_default(),
        )
    }

    /// A span with something in every field OTLP has.
    fn full_span(scope: &InstrumentationScope, n: u64) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_765_000_000_123_456_789 + n);
        let mut events = SpanEvents::default();
        events.events.push(opentelemetry::trace::Event::new(
            "failed once",
            start + Duration::from_micros(5),
            vec![KeyValue::new("error.type", "transient")],
            1,
        ));
        events.dropped_count = 2;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            context(7, 8, true),
            vec![KeyValue::new("messaging.message.id", "m-1")],
            3,
        ));
        links.dropped_count = 4;
        SpanData {
            span_context: context(
                0x0af7651916cd43dd8448eb211c80319c,
                0xb7ad6b7169203331 + n,
                false,
            ),
            parent_span_id: SpanId::from(0x00f067aa0ba902b7),
            parent_span_is_remote: n.is_multiple_of(2),
            span_kind: [SpanKind::Consumer, SpanKind::Client, SpanKind::Internal][n as usize % 3]
                .clone(),
            name: Cow::Owned(format!("process orders {n}")),
            start_time: start,
            end_time: start + Duration::from_millis(3),
            attributes: vec![
                KeyValue::new("messaging.system", "aws_sqs"),
                KeyValue::new("messaging.batch.message_count", 10_i64),
                KeyValue::new("eventkit.idempotency.replayed", false),
                KeyValue::new("ratio", 0.25),
                KeyValue::new("empty", ""),
                KeyValue::new("negative", -3_i64),
                KeyValue::new(
                    "long",
                    "x".repeat(300), // a length of two varint bytes
                ),
                KeyValue::new(
                    "list",
                    Value::Array(Array::String(vec!["a".into(), "b".into()])),
                ),
                KeyValue::new("numbers", Value::Array(Array::I64(vec![1, -2]))),
            ],
            dropped_attributes_count: 5,
            events,
            links,
            status: if n.is_multiple_of(2) {
                Status::error("the idempotency store failed")
            } else {
                Status::Unset
            },
            instrumentation_scope: scope.clone(),
        }
    }

    /// What the exporter sends for `spans`: each written as it ends, then the request.
    fn export_request(spans: &[SpanData], resource: &Resource) -> Vec<u8> {
        let mut encoded = Encoded::default();
        for span in spans {
            encoded.push(span);
        }
        assert_eq!(encoded.len(), spans.len());
        encoded.take_request(&EncodedResource::new(resource))
    }

    fn sdk_encoding(spans: Vec<SpanData>, resource: &Resource) -> ExportTraceServiceRequest {
        let resource = ResourceAttributesWithSchema::from(resource);
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans, &resource),
        }
    }

    /// Resource attributes come from a map: compared in key order.
    fn sorted(mut request: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
        for resource_spans in &mut request.resource_spans {
            if let Some(resource) = &mut resource_spans.resource {
                resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        request
    }

    #[test]
    fn what_is_written_decodes_to_what_the_sdks_own_conversion_gives() {
        let eventkit = InstrumentationScope::builder("eventkit").build();
        let other = InstrumentationScope::builder("other")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
            .with_attributes([KeyValue::new("scope.attribute", 1_i64)])
            .build();
        let spans: Vec<SpanData> = (0..6)
            .map(|n| full_span(if n == 3 { &other } else { &eventkit }, n))
            .collect();
        let resource = Resource::builder()
            .with_service_name("inventory")
            .with_attribute(KeyValue::new("faas.name", "inventory"))
            .build();

        let written = export_request(&spans, &resource);
        let decoded = ExportTraceServiceRequest::decode(written.as_slice());
        let decoded = decoded.map(sorted).expect("what is written decodes");
        let expected = sorted(sdk_encoding(spans, &resource));
        assert_eq!(decoded, expected);
        // Two scopes, in the order they first appear.
        let scopes = &decoded.resource_spans[0].scope_spans;
        let names: Vec<&str> = scopes
            .iter()
            .map(|s| s.scope.as_ref().map_or("", |scope| scope.name.as_str()))
            .collect();
        assert_eq!(names, ["eventkit", "other"]);
        assert_eq!(scopes[0].spans.len(), 5);
    }

    #[test]
    fn a_span_with_nothing_but_its_ids_and_a_batch_of_none_are_written_too() {
        let bare = SpanData {
            span_context: context(1, 2, false),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(""),
            start_time: UNIX_EPOCH,
            end_time: UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("").build(),
        };
        let resource = Resource::builder_empty().build();
        for spans in [vec![bare], Vec::new()] {
            let written = export_request(&spans, &resource);
            let decoded = ExportTraceServiceRequest::decode(written.as_slice())
                .expect("what is written decodes");
            assert_eq!(decoded, sdk_encoding(spans, &resource));
        }
    }

    #[test]
    fn each_export_carries_the_spans_written_since_the_last_and_only_their_scopes() {
        let eventkit = InstrumentationScope::builder("eventkit").build();
        let other = InstrumentationScope::builder("other").build();
        let resource = Resource::builder().with_service_name("inventory").build();
        let encoded_resource = EncodedResource::new(&resource);
        let mut encoded = Encoded::default();
        // The next request carries `spans` (written now), as the SDK's conversion would.
        let mut next_carries = |spans: Vec<SpanData>| {
            spans.iter().for_each(|span| encoded.push(span));
            let written = encoded.take_request(&encoded_resource);
            assert_eq!(
                ExportTraceServiceRequest::decode(written.as_slice()).map(sorted),
                Ok(sorted(sdk_encoding(spans, &resource)))
            );
            assert_eq!(encoded.len(), 0);
        };
        next_carries(vec![full_span(&eventkit, 0), full_span(&other, 1)]);
        // Then spans of the second scope only: the first, now empty, is left out.
        next_carries(vec![full_span(&other, 2), full_span(&other, 3)]);
        next_carries(Vec::new());
    }

    #[test]
    fn lengths_of_every_size_are_put_before_their_message() {
        type Writer = fn(&mut Vec<u8>, u32, Box<dyn FnOnce(&mut Vec<u8>)>);
        let one: Writer = |out, field, body| message_reserving::<1>(out, field, body);
        let two: Writer = |out, field, body| message_reserving::<2>(out, field, body);
        for (reserved, write) in [(1, one), (2, two)] {
            for length in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
                let mut out = vec![0xAA];
                write(
                    &mut out,
                    1,
                    Box::new(move |out| out.extend(std::iter::repeat_n(7, length))),
                );
                let mut expected = vec![0xAA, 0x0A];
                varint(&mut expected, length as u64);
                expected.extend(std::iter::repeat_n(7, length));
                assert_eq!(out, expected, "length {length}, {reserved} reserved");
            }
        }
    }
}
