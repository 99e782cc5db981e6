//! Logging set-up and the per-record span.
//!
//! Every line logged while a record is processed carries `record_id`, `event_id` and
//! `correlation_id` (from the record's span) and the invocation's `requestId` (from the
//! span lambda_runtime opens per invocation), so one order's journey can be followed through
//! the logs by its correlation id.

use tracing::Subscriber;
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{MakeWriter, SubscriberBuilder};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber once, at init: JSON lines when Lambda's log format
/// is JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`), plain text otherwise; the level from `RUST_LOG`
/// (or `AWS_LAMBDA_LOG_LEVEL`), `info` by default. A second call does nothing.
///
/// Every JSON line carries an RFC 3339 `timestamp` and a `level`: Lambda's log-level
/// filtering takes a line without either for INFO, so at WARN and above it would drop them.
///
/// With the feature `otel` and an `OTEL_EXPORTER_OTLP_*` endpoint or `OTEL_SERVICE_NAME`
/// set, the spans are exported too (`telemetry::otel`, feature `otel`), at the same level.
pub fn init_logging() {
    #[cfg(feature = "otel")]
    if let Some(config) = super::otel::ExportConfig::from_env() {
        init_with_export(&config);
        return;
    }
    let (filter, json) = settings();
    // An error means a subscriber is already installed: keep it.
    if json {
        let _ = json_subscriber(filter, std::io::stdout).try_init();
    } else {
        // CloudWatch adds its own timestamp to each plain-text line.
        let _ = base(filter, std::io::stdout).without_time().try_init();
    }
}

/// [`init_logging`] with the OpenTelemetry layer, on a registry (the layer filters which
/// spans it exports, which a plain fmt subscriber cannot host): the same log lines, and the
/// spans exported. When the exporter cannot be built, the logs alone, and the reason said on
/// stderr (no subscriber logs it yet).
#[cfg(feature = "otel")]
fn init_with_export(config: &super::otel::ExportConfig) {
    use tracing_subscriber::fmt;
    use tracing_subscriber::layer::SubscriberExt;
    let (filter, json) = settings();
    let registry = tracing_subscriber::registry().with(filter);
    let unexported = |error: super::otel::OtelError| {
        eprintln!("spans are not exported: {error}");
    };
    // An error of `try_init` means a subscriber is already installed: keep it.
    if json {
        let logs = registry.with(
            fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .with_ansi(false)
                .with_target(false)
                .with_writer(std::io::stdout),
        );
        let export = super::otel::layer(config).map_err(unexported).ok();
        let _ = logs.with(export).try_init();
    } else {
        let logs = registry.with(
            fmt::layer()
                .without_time()
                .with_ansi(false)
                .with_target(false)
                .with_writer(std::io::stdout),
        );
        let export = super::otel::layer(config).map_err(unexported).ok();
        let _ = logs.with(export).try_init();
    }
}

/// The level filter and whether lines are JSON, from Lambda's variables.
fn settings() -> (EnvFilter, bool) {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .map(|level| EnvFilter::new(level.to_lowercase()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    (filter, json)
}

/// Lambda's JSON log lines: `timestamp` (RFC 3339, UTC) and `level` (`TRACE` to `ERROR`, as
/// Lambda's filter reads them), the event's fields at the top level, and the span list, which
/// carries the invocation's `requestId` (lambda_runtime's span) and the record's ids (ours).
fn json_subscriber<W>(
    filter: EnvFilter,
    writer: W,
) -> impl SubscriberInitExt + Subscriber + for<'span> LookupSpan<'span>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    base(filter, writer)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .finish()
}

fn base<W>(
    filter: EnvFilter,
    writer: W,
) -> SubscriberBuilder<DefaultFields, Format<Full, SystemTime>, EnvFilter, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Lambda's logs have no colours.
        .with_ansi(false)
        .with_target(false)
}

/// The span a record is processed in: its id, and its event's id and correlation id (empty
/// when the record is not an event envelope).
pub fn record_span(record_id: &str, event_id: &str, correlation_id: &str) -> tracing::Span {
    tracing::info_span!("record", record_id, event_id, correlation_id)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_in_a_record_span_carries_the_request_and_record_ids() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json_subscriber(EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            // The span lambda_runtime opens per invocation.
            let invocation = tracing::info_span!("Lambda runtime invoke", requestId = "req-7");
            let _invocation = invocation.enter();
            let _record = record_span("m-1", "e-1", "c-9").entered();
            tracing::info!(sku = "A-1", "reserved");
            tracing::warn!("low stock");
        });
        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = output
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        for line in &lines {
            let spans = line["spans"].as_array().unwrap();
            assert_eq!(spans[0]["requestId"], "req-7");
            assert_eq!(spans[1]["record_id"], "m-1");
            assert_eq!(spans[1]["event_id"], "e-1");
            assert_eq!(spans[1]["correlation_id"], "c-9");
        }
        assert_eq!(lines[0]["message"], "reserved");
        assert_eq!(lines[0]["sku"], "A-1");
        assert_eq!(lines[1]["level"], "WARN");
    }

    #[test]
    fn every_json_line_carries_an_rfc3339_timestamp_and_a_lambda_level() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = json_subscriber(EnvFilter::new("trace"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let levels: Vec<String> = output
            .lines()
            .map(|line| {
                let line: Value = serde_json::from_str(line).unwrap();
                let timestamp = line["timestamp"].as_str().unwrap_or_default();
                assert!(
                    chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
                    "not RFC 3339: {line}"
                );
                line["level"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        assert_eq!(levels, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]);
    }
}
