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
//! still queued in the batch processor would wait, frozen, for the next invocation (or be
//! lost with the environment): [`flush`] sends them first. The runtime wrapper
//! ([`EventService`](crate::runtime::EventService)) calls it after every invocation.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
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

/// The provider [`layer`] installed: what [`flush`] flushes.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Export's settings, read from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportConfig {
    /// The `service.name` of every span: `OTEL_SERVICE_NAME`, else the function's name
    /// (`AWS_LAMBDA_FUNCTION_NAME`), else `unknown_service`.
    pub service_name: String,
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
        Some(Self { service_name })
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
    /// Spans could not be flushed (the endpoint refused them or did not answer in time).
    #[error("flushing spans: {0}")]
    Flush(#[from] opentelemetry_sdk::error::OTelSdkError),
    /// The flush's thread ended without an answer.
    #[error("the flush did not finish: {0}")]
    Interrupted(String),
}

/// The `tracing` layer that exports spans as `config` says, to the endpoint the
/// `OTEL_EXPORTER_OTLP_*` variables name (HTTP, protobuf). Once per process:
/// [`init_logging`](super::init_logging) installs it when export is on; a program that
/// builds its own subscriber adds it there.
pub fn layer<S>(config: &ExportConfig) -> Result<impl Layer<S>, OtelError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if PROVIDER.get().is_some() {
        return Err(OtelError::AlreadyInstalled);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    let mut resource = Resource::builder().with_service_name(config.service_name.clone());
    if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        resource = resource.with_attribute(opentelemetry::KeyValue::new("faas.name", function));
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("eventkit");
    PROVIDER
        .set(provider)
        .map_err(|_| OtelError::AlreadyInstalled)?;
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(FilterFn::new(|metadata| is_exported(metadata.target()))))
}

/// Whether spans of `target` are exported.
fn is_exported(target: &str) -> bool {
    !NOT_EXPORTED.iter().any(|prefix| target.starts_with(prefix))
}

/// Whether export was set up in this process.
pub fn is_exporting() -> bool {
    PROVIDER.get().is_some()
}

/// Sends every ended span still queued, waiting for the endpoint's answer (at most the
/// exporter's timeout, `OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by default). Nothing to do, and
/// `Ok`, when export is off. Blocks the calling thread: from async code, call [`flush`].
pub fn force_flush() -> Result<(), OtelError> {
    match PROVIDER.get() {
        None => Ok(()),
        Some(provider) => Ok(provider.force_flush()?),
    }
}

/// [`force_flush`] on the runtime's blocking threads, so that the invocation's task does
/// not hold its thread while the spans are sent. A failure is logged, never returned: a
/// tracing backend that is down must not fail the invocation.
pub async fn flush() {
    if !is_exporting() {
        return;
    }
    let flushed = tokio::task::spawn_blocking(force_flush)
        .await
        .map_err(|error| OtelError::Interrupted(error.to_string()))
        .and_then(|flushed| flushed);
    if let Err(error) = flushed {
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
        assert!(is_exported("eventkit::batch::processor"));
        assert!(is_exported("inventory"));
        assert!(!is_exported("lambda_runtime::layers::trace"));
        assert!(!is_exported("aws_smithy_runtime::client::orchestrator"));
        assert!(!is_exported("opentelemetry_sdk"));
    }

    #[test]
    fn without_export_a_flush_does_nothing() {
        // No test in this crate installs the process-wide provider.
        assert!(!is_exporting());
        assert!(force_flush().is_ok());
    }
}
