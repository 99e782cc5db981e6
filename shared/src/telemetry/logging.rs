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
    use tracing_subscriber::filter::FilterFn;
    use tracing_subscriber::fmt;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer as _;
    let (filter, json) = settings();
    let registry = tracing_subscriber::registry().with(filter);
    let unexported = |error: super::otel::OtelError| {
        eprintln!("spans are not exported: {error}");
    };
    // An error of `try_init` means a subscriber is already installed: keep it.
    if json {
        let logs = registry.with(json_layer_with_trace_id(std::io::stdout));
        let export = super::otel::layer(config).map_err(unexported).ok();
        let _ = logs.with(export).try_init();
    } else {
        let logs = registry.with(
            fmt::layer()
                .without_time()
                .with_ansi(false)
                .with_target(false)
                .with_writer(std::io::stdout)
                .with_filter(FilterFn::new(is_logged)),
        );
        let export = super::otel::layer(config).map_err(unexported).ok();
        let _ = logs.with(export).try_init();
    }
}

/// The target of the step spans (`telemetry::steps`), which only exported traces have.
#[cfg(feature = "otel")]
const STEP_SPANS: &str = "eventkit::telemetry::steps";

/// Lambda's JSON log lines as [`json_subscriber`] writes them, each written inside a traced
/// span led by its W3C `trace_id`: the lines of one trace are found by the id a tracing
/// backend shows (CloudWatch Logs Insights: `filter trace_id = "…"`).
#[cfg(feature = "otel")]
fn json_layer_with_trace_id<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_ansi(false)
        .with_target(false)
        .with_writer(writer)
        .map_event_format(WithTraceId)
        .with_filter(tracing_subscriber::filter::FilterFn::new(is_logged))
}

/// Whether the log layer sees `metadata`'s span or event: all but the step spans (claim,
/// handler, completion), which exist only for export. So the log lines are the same with
/// export as without (but for the trace id), and the log layer does not format the step
/// spans' fields (#34: a tenth of what export cost).
#[cfg(feature = "otel")]
fn is_logged(metadata: &tracing::Metadata<'_>) -> bool {
    !(metadata.is_span() && metadata.target().starts_with(STEP_SPANS))
}

/// An event format that puts the current span's W3C trace id first in each JSON line
/// (`"trace_id":"<32 hex>"`), when the span is traced; other lines are left as written.
#[cfg(feature = "otel")]
struct WithTraceId<F>(F);

#[cfg(feature = "otel")]
impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // The nearest span that knows its trace: the dispatcher cannot be asked from inside
        // a formatter (tracing refuses re-entry), so the id was kept on the span when it was
        // created ([`remember_trace_id`]).
        let trace_id = ctx.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<KnownTraceId>().map(|known| known.0))
        });
        let Some(trace_id) = trace_id else {
            return self.0.format_event(ctx, writer, event);
        };
        // Formatted aside, then led by the id: the JSON format has no hook for a field of
        // ours, and this costs a copy of the line only on traced lines.
        let mut line = String::new();
        self.0.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

/// The W3C trace id of a traced span, kept in the span's extensions for the log lines.
#[cfg(feature = "otel")]
#[derive(Clone, Copy)]
struct KnownTraceId(opentelemetry::trace::TraceId);

/// Keeps `span`'s trace id with it (when it is traced), so that every line logged inside it,
/// or inside its children, carries the id ([`WithTraceId`]). The invocation, record and
/// publish spans call this; the step spans inside them share their trace.
#[cfg(feature = "otel")]
pub(crate) fn remember_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if !span_context.is_valid() {
        return;
    }
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() {
            if let Some(data) = registry.span(id) {
                data.extensions_mut()
                    .insert(KnownTraceId(span_context.trace_id()));
            }
        }
    });
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

    /// Runs `logging` under the subscriber [`init_with_export`] installs for JSON (the
    /// OpenTelemetry layer beside the JSON log layer); what it returned, and what it logged.
    #[cfg(feature = "otel")]
    fn logged_with_export<T>(logging: impl FnOnce() -> T) -> (T, String) {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;
        let captured = Captured::default();
        let writer = captured.clone();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(json_layer_with_trace_id(move || writer.clone()));
        let returned = tracing::subscriber::with_default(subscriber, logging);
        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (returned, output)
    }

    #[cfg(feature = "otel")]
    #[test]
    fn a_json_line_written_in_a_traced_span_leads_with_its_w3c_trace_id() {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let (trace_id, output) = logged_with_export(|| {
            tracing::info!("before any span");
            let record = record_span("m-1", "e-1", "c-9");
            remember_trace_id(&record);
            let trace_id = record.context().span().span_context().trace_id();
            record.in_scope(|| tracing::info!("inside"));
            trace_id.to_string()
        });
        let lines: Vec<Value> = output
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{output}");
        assert_eq!(lines[0]["message"], "before any span");
        assert!(lines[0].get("trace_id").is_none(), "no context, no id");
        assert_eq!(lines[1]["message"], "inside");
        assert_eq!(lines[1]["trace_id"], trace_id.as_str(), "{output}");
        assert_eq!(trace_id.len(), 32);
        // The rest of the line is as before.
        assert_eq!(lines[1]["spans"][0]["record_id"], "m-1");
        assert_eq!(lines[1]["level"], "INFO");
    }

    #[cfg(feature = "otel")]
    #[test]
    fn a_line_logged_in_a_step_span_lists_the_spans_it_would_list_without_export() {
        let ((), output) = logged_with_export(|| {
            let _record = record_span("m-1", "e-1", "c-9").entered();
            let handler = crate::telemetry::steps::handler(Some("OrderPlaced"));
            assert!(!handler.is_none(), "the step span exists: it is exported");
            handler.in_scope(|| tracing::info!("inside the handler"));
        });
        let line: Value = serde_json::from_str(output.trim()).unwrap();
        let names: Vec<&str> = line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|span| span["name"].as_str())
            .collect();
        assert_eq!(names, ["record"], "{output}");
        assert_eq!(line["message"], "inside the handler");
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
