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
//! (hyper, already in every function for the AWS SDK; `otel/sender.rs`), its protobuf body
//! written by eventkit itself as the spans end (`otel/wire.rs` says why not by
//! opentelemetry-otlp's exporter).

mod sender;
mod settings;
mod wire;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use sender::Sender;
pub use settings::{ExportConfig, EXPORT_VARIABLES};
use wire::{Encoded, EncodedResource};

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

/// What [`layer`] set up: what [`flush`] sends, and to whom.
static EXPORT: OnceLock<Export> = OnceLock::new();

struct Export {
    pending: Pending,
    /// The `service.name` and `faas.name` of every span, as each request carries them.
    resource: EncodedResource,
    sender: Sender,
    /// Keeps the tracer's provider (and its processor) alive.
    _provider: SdkTracerProvider,
}

/// The ended spans not yet sent, written as OTLP as each ends: the provider's span
/// processor.
#[derive(Clone, Debug, Default)]
struct Pending {
    spans: Arc<Mutex<PendingSpans>>,
}

#[derive(Debug, Default)]
struct PendingSpans {
    ended: Encoded,
    dropped: usize,
}

impl Pending {
    /// The export request of the spans ended since the last call (`None` when none did),
    /// all of `resource`, and how many were dropped meanwhile.
    fn take_request(&self, resource: &EncodedResource) -> (Option<Vec<u8>>, usize) {
        match self.spans.lock() {
            Ok(mut pending) => {
                let body =
                    (!pending.ended.is_empty()).then(|| pending.ended.take_request(resource));
                (body, std::mem::take(&mut pending.dropped))
            }
            Err(_) => (None, 0),
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
                pending.ended.push(&span);
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

/// Why export could not start or a flush failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// A variable asks for what this exporter cannot do, or is no valid value: fix it.
    #[error("{variable}: {reason}")]
    Setting {
        /// The variable (or variables, the signal's and the general one) at fault.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Export was already set up in this process, by an earlier call.
    #[error("OpenTelemetry export is already set up in this process")]
    AlreadyInstalled,
    /// Spans could not be sent: the endpoint refused them, did not answer in time, or could
    /// not be reached.
    #[error("exporting spans to {endpoint}: {reason}")]
    Export {
        /// Where they were sent.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
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
    let sender = Sender::new(config)?;
    let mut resource = Resource::builder().with_service_name(config.service_name.clone());
    if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        resource = resource.with_attribute(opentelemetry::KeyValue::new("faas.name", function));
    }
    let resource = resource.build();
    let pending = Pending::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(pending.clone())
        .with_resource(resource.clone())
        .build();
    let tracer = provider.tracer("eventkit");
    EXPORT
        .set(Export {
            pending,
            resource: EncodedResource::new(&resource),
            sender,
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
    let (body, dropped) = export.pending.take_request(&export.resource);
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "spans were dropped: more than {MAX_PENDING} ended between two flushes"
        );
    }
    match body {
        Some(body) => export.sender.send(body).await,
        None => Ok(()),
    }
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
    use super::*;

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

    /// The names of the spans in an export request's body.
    pub(super) fn names_in(body: &[u8]) -> Vec<String> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
        request
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .flat_map(|scope| &scope.spans)
            .map(|span| span.name.clone())
            .collect()
    }

    #[test]
    fn ended_spans_wait_for_the_flush_up_to_a_bound() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let pending = Pending::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(pending.clone())
            .build();
        let resource = EncodedResource::new(&Resource::builder().build());
        let tracer = provider.tracer("test");
        tracer.start("first").end();
        tracer.start("second").end();
        let (body, dropped) = pending.take_request(&resource);
        assert_eq!(dropped, 0);
        assert_eq!(names_in(&body.expect("spans ended")), ["first", "second"]);
        assert!(pending.take_request(&resource).0.is_none(), "taken once");
        for _ in 0..MAX_PENDING + 3 {
            tracer.start("many").end();
        }
        let (body, dropped) = pending.take_request(&resource);
        assert_eq!(dropped, 3);
        assert_eq!(names_in(&body.expect("spans ended")).len(), MAX_PENDING);
    }
}
