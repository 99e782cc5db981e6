//! OpenTelemetry export (feature `otel`): the spans of `tracing` sent as OTLP over HTTP
//! (protobuf) to the endpoint the standard variables name, flushed before each invocation
//! returns.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_SERVICE_NAME` is set (and `OTEL_SDK_DISABLED` is not `true`): a function deployed
//! without them exports nothing and opens no connection. The exporter itself reads the
//! endpoint, headers, timeout and compression variables, as every OpenTelemetry SDK does.
//!
//! Lambda freezes the process as soon as an invocation has returned its response, so spans
//! not sent by then would wait, frozen, for the next invocation (or be lost with the
//! environment). The spans that end are kept in memory, and [`flush`] sends them, from the
//! invocation's own task, in one request; the runtime wrapper
//! ([`EventService`](crate::runtime::EventService)) calls it after every invocation.
//!
//! Why not the SDK's batch processor (#34): it exports from a thread of its own, and its
//! flush blocks until that thread has sent the spans through reqwest's blocking client, which
//! runs a runtime of its own: two thread hand-offs and a runtime per flush, about a third of
//! what tracing cost a record. Here the export is one async request on the function's runtime
//! (hyper, already in every function for the AWS SDK).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The variables whose presence turns export on.
pub const EXPORT_VARIABLES: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
];

/// Spans of these targets are not exported: lambda_runtime's per-invocation span (eventkit
/// opens its own, parented to the producer's context, which the runtime's cannot be), and
/// the transport crates' (the exporter's own requests among them).
const NOT_EXPORTED: [&str; 7] = [
    "lambda_runtime",
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    "hyper",
    "reqwest",
    "opentelemetry",
];

/// At most this many ended spans wait for a flush; more are dropped (and counted), so that
/// a program that never flushes holds a bounded amount. An invocation of a batch of ten
/// records ends about fifty.
const MAX_PENDING: usize = 8192;

/// How long an export may take unless `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds) says otherwise: the SDKs' default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`layer`] set up: what [`flush`] sends, and to whom.
static EXPORT: OnceLock<Export> = OnceLock::new();

struct Export {
    pending: Pending,
    /// One export at a time, as the exporter requires.
    exporter: tokio::sync::Mutex<opentelemetry_otlp::SpanExporter>,
    /// Keeps the tracer's provider (and its processor) alive.
    _provider: SdkTracerProvider,
}

/// The ended spans not yet sent: the provider's span processor.
#[derive(Clone, Debug, Default)]
struct Pending {
    spans: Arc<Mutex<PendingSpans>>,
}

#[derive(Debug, Default)]
struct PendingSpans {
    ended: Vec<SpanData>,
    dropped: usize,
}

impl Pending {
    /// The spans ended since the last call, and how many were dropped meanwhile.
    fn take(&self) -> (Vec<SpanData>, usize) {
        match self.spans.lock() {
            Ok(mut pending) => (
                std::mem::take(&mut pending.ended),
                std::mem::take(&mut pending.dropped),
            ),
            Err(_) => (Vec::new(), 0),
        }
    }
}

impl SpanProcessor for Pending {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if let Ok(mut pending) = self.spans.lock() {
            if pending.ended.len() < MAX_PENDING {
                pending.ended.push(span);
            } else {
                pending.dropped += 1;
            }
        }
    }

    /// Nothing to do here: the spans leave with [`flush`], on the invocation's runtime.
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Export's settings, read from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportConfig {
    /// The `service.name` of every span: `OTEL_SERVICE_NAME`, else the function's name
    /// (`AWS_LAMBDA_FUNCTION_NAME`), else `unknown_service`.
    pub service_name: String,
    /// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s.
    pub timeout: Duration,
}

impl ExportConfig {
    /// The configuration the environment asks for; `None` when export is off.
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables read by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
            return None;
        }
        if !EXPORT_VARIABLES.iter().any(|name| set(name).is_some()) {
            return None;
        }
        let service_name = set("OTEL_SERVICE_NAME")
            .or_else(|| set("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or_else(|| "unknown_service".to_string());
        let timeout = set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .and_then(|millis| millis.trim().parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        Some(Self {
            service_name,
            timeout,
        })
    }
}

/// Why export could not start or a flush failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// The exporter could not be built (an endpoint that is no URL, say): fix the
    /// `OTEL_EXPORTER_OTLP_*` variables.
    #[error("building the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// Export was already set up in this process, by an earlier call.
    #[error("OpenTelemetry export is already set up in this process")]
    AlreadyInstalled,
    /// Spans could not be sent (the endpoint refused them or did not answer in time).
    #[error("exporting spans: {0}")]
    Flush(#[from] opentelemetry_sdk::error::OTelSdkError),
}

/// The `tracing` layer that exports spans as `config` says, to the endpoint the
/// `OTEL_EXPORTER_OTLP_*` variables name (HTTP, protobuf). Once per process:
/// [`init_logging`](super::init_logging) installs it when export is on; a program that
/// builds its own subscriber adds it there, and calls [`flush`] when its spans should leave
/// (a function built with [`EventFunction`](crate::runtime::EventFunction) does after every
/// invocation). The export needs a Tokio runtime, the one the flush is awaited on.
pub fn layer<S>(config: &ExportConfig) -> Result<impl Layer<S>, OtelError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if EXPORT.get().is_some() {
        return Err(OtelError::AlreadyInstalled);
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(HyperClient::with_default_connector(config.timeout, None))
        .with_timeout(config.timeout)
        .build()?;
    let mut resource = Resource::builder().with_service_name(config.service_name.clone());
    if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        resource = resource.with_attribute(opentelemetry::KeyValue::new("faas.name", function));
    }
    let resource = resource.build();
    exporter.set_resource(&resource);
    let pending = Pending::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(pending.clone())
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("eventkit");
    EXPORT
        .set(Export {
            pending,
            exporter: tokio::sync::Mutex::new(exporter),
            _provider: provider,
        })
        .map_err(|_| OtelError::AlreadyInstalled)?;
    // (#34) What a span costs is mostly what the layer adds to it by default: the source
    // location and thread as attributes, busy/idle timings on every enter and exit (an
    // instrumented future enters its span on every poll), an OpenTelemetry context attached
    // on every enter (nothing here reads `Context::current`: the spans' contexts are taken
    // from the spans themselves), and each log line copied into its span as an event (the
    // log lines carry the trace id already). Off, the layer builds the spans and nothing else.
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(FilterFn::new(is_exported)))
}

/// Whether the layer exports `metadata`'s span or event: spans unless their target is in
/// [`NOT_EXPORTED`]; of events, only warnings and errors (they show on their span in a
/// backend's view; the rest are in the logs, by trace id).
fn is_exported(metadata: &tracing::Metadata<'_>) -> bool {
    exported(metadata.target(), metadata.is_span(), *metadata.level())
}

/// [`is_exported`] of a span (`is_span`) or event of `target` at `level`.
fn exported(target: &str, is_span: bool, level: tracing::Level) -> bool {
    if NOT_EXPORTED.iter().any(|prefix| target.starts_with(prefix)) {
        return false;
    }
    is_span || level <= tracing::Level::WARN
}

/// Whether export was set up in this process.
pub fn is_exporting() -> bool {
    EXPORT.get().is_some()
}

/// Sends every span ended since the last flush, in one request, and waits for the
/// endpoint's answer (at most the export timeout, [`ExportConfig::timeout`]). Nothing to
/// do, and `Ok`, when export is off or no span ended.
pub async fn try_flush() -> Result<(), OtelError> {
    let Some(export) = EXPORT.get() else {
        return Ok(());
    };
    let exporter = export.exporter.lock().await;
    // Taken under the lock: the spans of one flush leave in one request, in order.
    let (spans, dropped) = export.pending.take();
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "spans were dropped: more than {MAX_PENDING} ended between two flushes"
        );
    }
    if spans.is_empty() {
        return Ok(());
    }
    Ok(exporter.export(spans).await?)
}

/// [`try_flush`], a failure logged rather than returned: a tracing backend that is down
/// must not fail the invocation (its spans are lost; the logs still carry the trace ids).
pub async fn flush() {
    if let Err(error) = try_flush().await {
        tracing::warn!(%error, "spans of this invocation were not exported");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(variables: &[(&str, &str)]) -> Option<ExportConfig> {
        let variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        ExportConfig::from_lookup(|name| variables.get(name).cloned())
    }

    #[test]
    fn export_is_off_unless_an_otlp_variable_is_set() {
        assert_eq!(config(&[]), None);
        assert_eq!(config(&[("AWS_LAMBDA_FUNCTION_NAME", "inventory")]), None);
        assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), None);
        let on = |variable| {
            config(&[
                (variable, "http://127.0.0.1:4318"),
                ("AWS_LAMBDA_FUNCTION_NAME", "inventory"),
            ])
        };
        for variable in EXPORT_VARIABLES {
            assert!(on(variable).is_some(), "{variable}");
        }
        // OTEL_SDK_DISABLED wins, as in every OpenTelemetry SDK.
        assert_eq!(
            config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_SDK_DISABLED", "TRUE"),
            ]),
            None
        );
    }

    #[test]
    fn the_service_is_named_by_otel_service_name_else_by_the_function() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let named = |variables: &[(&str, &str)]| config(variables).map(|c| c.service_name);
        assert_eq!(
            named(&[
                endpoint,
                ("OTEL_SERVICE_NAME", "orders"),
                ("AWS_LAMBDA_FUNCTION_NAME", "f")
            ])
            .as_deref(),
            Some("orders")
        );
        assert_eq!(
            named(&[endpoint, ("AWS_LAMBDA_FUNCTION_NAME", "f")]).as_deref(),
            Some("f")
        );
        assert_eq!(named(&[endpoint]).as_deref(), Some("unknown_service"));
    }

    #[test]
    fn the_runtimes_and_the_transports_spans_are_not_exported() {
        let span = |target| exported(target, true, tracing::Level::INFO);
        assert!(span("eventkit::batch::processor"));
        assert!(span("inventory"));
        assert!(!span("lambda_runtime::layers::trace"));
        assert!(!span("aws_smithy_runtime::client::orchestrator"));
        assert!(!span("opentelemetry_sdk"));
    }

    #[test]
    fn of_log_events_only_warnings_and_errors_go_on_their_spans() {
        let event = |level| exported("eventkit::batch::processor", false, level);
        assert!(event(tracing::Level::ERROR));
        assert!(event(tracing::Level::WARN));
        assert!(!event(tracing::Level::INFO));
        assert!(!event(tracing::Level::DEBUG));
        assert!(!exported(
            "aws_smithy_runtime",
            false,
            tracing::Level::ERROR
        ));
    }

    #[tokio::test]
    async fn without_export_a_flush_does_nothing() {
        // No test in this crate installs the process-wide exporter.
        assert!(!is_exporting());
        assert!(try_flush().await.is_ok());
    }

    #[test]
    fn the_export_timeout_is_read_in_milliseconds() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let timeout = |variables: &[(&str, &str)]| config(variables).map(|c| c.timeout);
        assert_eq!(timeout(&[endpoint]), Some(DEFAULT_TIMEOUT));
        assert_eq!(
            timeout(&[endpoint, ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            timeout(&[
                endpoint,
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700")
            ]),
            Some(Duration::from_millis(700))
        );
    }

    #[test]
    fn ended_spans_wait_for_the_flush_up_to_a_bound() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let pending = Pending::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(pending.clone())
            .build();
        let tracer = provider.tracer("test");
        tracer.start("first").end();
        tracer.start("second").end();
        let (spans, dropped) = pending.take();
        let names: Vec<&str> = spans.iter().map(|span| span.name.as_ref()).collect();
        assert_eq!((names, dropped), (vec!["first", "second"], 0));
        assert!(pending.take().0.is_empty(), "taken once");
        for _ in 0..MAX_PENDING + 3 {
            tracer.start("many").end();
        }
        let (spans, dropped) = pending.take();
        assert_eq!((spans.len(), dropped), (MAX_PENDING, 3));
    }
}
