//! Logging set-up and the per-record span.
//!
//! Every line logged while a record is processed carries `record_id`, `event_id` and
//! `correlation_id` (from the record's span) and the invocation's `requestId` (from the
//! span lambda_runtime opens per invocation), so one order's journey can be followed through
//! the logs by its correlation id.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use crate::events::EventRecord;

/// Installs the global tracing subscriber once, at init: JSON lines when Lambda's log format
/// is JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`), plain text otherwise; the level from `RUST_LOG`
/// (or `AWS_LAMBDA_LOG_LEVEL`), `info` by default. A second call does nothing.
pub fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .map(|level| EnvFilter::new(level.to_lowercase()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // CloudWatch adds its own timestamps per line; Lambda's logs have no colours.
        .without_time()
        .with_ansi(false)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            // The span list carries the invocation's requestId (lambda_runtime's span) and
            // the record's ids (ours) on every line.
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The ids the envelope carries, read without decoding the payload.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EnvelopeIds {
    event_id: Option<String>,
    correlation_id: Option<String>,
}

/// The span a record is processed in: its id, and the envelope's event and correlation ids
/// when the body is an envelope.
pub fn record_span(record: &EventRecord) -> tracing::Span {
    let ids = record
        .body()
        .ok()
        .and_then(|body| serde_json::from_str::<EnvelopeIds>(body).ok())
        .unwrap_or_default();
    tracing::info_span!(
        "record",
        record_id = %record.id(),
        event_id = ids.event_id.as_deref().unwrap_or(""),
        correlation_id = ids.correlation_id.as_deref().unwrap_or(""),
    )
}
