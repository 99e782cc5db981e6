//! The spans an application's functions exported, one JSON object a line in
//! `<project>/.local-cloud/traces/<stack>.jsonl`: flattened from OTLP to what the waterfall
//! reads (ids in hex, times in Unix nanoseconds, the service on every span), appended as they
//! arrive, readable while the application runs and after it stopped.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the spans of the applications of `project` are kept.
pub fn traces_dir(project: &Path) -> PathBuf {
    project.join(".local-cloud").join("traces")
}

/// The span file of stack `stack` of `project`.
pub fn span_file(project: &Path, stack: &str) -> PathBuf {
    traces_dir(project).join(format!("{stack}.jsonl"))
}

/// Why spans could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The span file could not be opened, written or read.
    #[error("{path}: {source}")]
    Io {
        /// The span file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A span as kept: one line of the span file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSpan {
    /// The trace id, 32 hex digits.
    pub trace_id: String,
    /// The span id, 16 hex digits.
    pub span_id: String,
    /// The parent's span id (in the same trace), when the span has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The span's name.
    pub name: String,
    /// The `service.name` of the process that exported it.
    pub service: String,
    /// `internal`, `server`, `client`, `producer`, `consumer` (or `unspecified`).
    pub kind: String,
    /// When it started, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// When it ended, in nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// `unset`, `ok` or `error`.
    pub status: String,
    /// The status's message (an error's reason).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// The span's attributes, as JSON values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    /// The spans it links to (a consumer's producers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<SpanLink>,
}

/// A link from one span to another, possibly in another trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanLink {
    /// The linked span's trace id.
    pub trace_id: String,
    /// The linked span's id.
    pub span_id: String,
}

impl StoredSpan {
    /// The string value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// How long it took, in nanoseconds (0 for a span that ended before it started).
    pub fn duration_nano(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// The spans of an OTLP export request, flattened; spans whose ids are not of OTLP's sizes
/// are left out (OTLP calls them invalid).
pub fn spans_of(request: &ExportTraceServiceRequest) -> Vec<StoredSpan> {
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|resource| {
                resource
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
            })
            .and_then(|kv| kv.value.as_ref())
            .map_or_else(|| "unknown_service".to_string(), text_of);
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                let (Some(trace_id), Some(span_id)) =
                    (id_hex(&span.trace_id, 16), id_hex(&span.span_id, 8))
                else {
                    continue;
                };
                let links = span
                    .links
                    .iter()
                    .filter_map(|link| {
                        Some(SpanLink {
                            trace_id: id_hex(&link.trace_id, 16)?,
                            span_id: id_hex(&link.span_id, 8)?,
                        })
                    })
                    .collect();
                let status = span.status.as_ref();
                spans.push(StoredSpan {
                    trace_id,
                    span_id,
                    parent_span_id: id_hex(&span.parent_span_id, 8),
                    name: span.name.clone(),
                    service: service.clone(),
                    kind: kind_name(span.kind).to_string(),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    status: match status.map_or(0, |status| status.code) {
                        1 => "ok",
                        2 => "error",
                        _ => "unset",
                    }
                    .to_string(),
                    status_message: status.map(|s| s.message.clone()).unwrap_or_default(),
                    attributes: attributes_of(&span.attributes),
                    links,
                });
            }
        }
    }
    spans
}

/// An id in hex when it has OTLP's size and is not all zeroes.
fn id_hex(bytes: &[u8], size: usize) -> Option<String> {
    (bytes.len() == size && bytes.iter().any(|byte| *byte != 0)).then(|| {
        bytes
            .iter()
            .fold(String::with_capacity(size * 2), |mut hex, byte| {
                hex.push_str(&format!("{byte:02x}"));
                hex
            })
    })
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

fn attributes_of(attributes: &[KeyValue]) -> BTreeMap<String, Value> {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().map_or(Value::Null, json_of);
            (kv.key.clone(), value)
        })
        .collect()
}

fn json_of(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => Value::from(text.clone()),
        Some(any_value::Value::BoolValue(flag)) => Value::from(*flag),
        Some(any_value::Value::IntValue(number)) => Value::from(*number),
        Some(any_value::Value::DoubleValue(number)) => Value::from(*number),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(json_of).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => {
            Value::Object(attributes_of(&list.values).into_iter().collect())
        }
        Some(any_value::Value::BytesValue(bytes)) => Value::from(
            bytes
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>(),
        ),
        _ => Value::Null,
    }
}

fn text_of(value: &AnyValue) -> String {
    match json_of(value) {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Appends spans to one span file; shared by the receiver's requests.
#[derive(Debug)]
pub struct SpanStore {
    path: PathBuf,
    writing: Mutex<()>,
}

impl SpanStore {
    /// A store appending to `path` (its folder created now).
    pub fn create(path: PathBuf) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(Self {
            path,
            writing: Mutex::new(()),
        })
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `spans`, one line each, in one write (lines of two requests never mix).
    pub fn append(&self, spans: &[StoredSpan]) -> Result<(), StoreError> {
        if spans.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for span in spans {
            // A span of strings, numbers and JSON values always serializes.
            if let Ok(line) = serde_json::to_string(span) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)
    }
}

/// Every span kept in `path`; lines that do not read (a write cut short) are skipped.
pub fn read_spans(path: &Path) -> Result<Vec<StoredSpan>, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

    use super::*;

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_otlp_request_is_flattened_to_spans_with_their_service() {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            parent_span_id: vec![],
            name: "process orders".into(),
            kind: 5,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 3_500,
            attributes: vec![string("event_id", "e-1")],
            links: vec![span::Link {
                trace_id: vec![0xcd; 16],
                span_id: vec![2; 8],
                ..Default::default()
            }],
            status: Some(Status {
                message: "not ok".into(),
                code: 2,
            }),
            ..Default::default()
        };
        let invalid = Span {
            trace_id: vec![0; 16],
            span_id: vec![1; 8],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", "inventory")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span, invalid],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let spans = spans_of(&request);
        assert_eq!(spans.len(), 1, "the all-zero trace id is invalid");
        let span = &spans[0];
        assert_eq!(span.trace_id, "ab".repeat(16));
        assert_eq!(span.span_id, "0101010101010101");
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.service, "inventory");
        assert_eq!(span.kind, "consumer");
        assert_eq!(span.duration_nano(), 2_500);
        assert_eq!(
            (span.status.as_str(), span.status_message.as_str()),
            ("error", "not ok")
        );
        assert_eq!(span.attribute("event_id"), Some("e-1"));
        assert_eq!(span.links[0].trace_id, "cd".repeat(16));
    }

    #[test]
    fn appended_spans_read_back_and_a_torn_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("eventkit-spans-{}", uuid::Uuid::new_v4()));
        let store = SpanStore::create(dir.join("app.jsonl")).unwrap();
        let span = StoredSpan {
            trace_id: "ab".repeat(16),
            span_id: "01".repeat(8),
            parent_span_id: Some("02".repeat(8)),
            name: "record".into(),
            service: "inventory".into(),
            kind: "consumer".into(),
            start_unix_nano: 1,
            end_unix_nano: 2,
            status: "unset".into(),
            status_message: String::new(),
            attributes: BTreeMap::from([("orderId".to_string(), Value::from("o-1"))]),
            links: vec![],
        };
        store.append(std::slice::from_ref(&span)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(store.path())
            .unwrap()
            .write_all(b"{\"traceId\": \"cut")
            .unwrap();
        assert_eq!(read_spans(store.path()).unwrap(), [span]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
