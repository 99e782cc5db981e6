//! Telemetry: structured logs with each record's ids on every line, CloudWatch Embedded
//! Metric Format (EMF) lines for each batch, the X-Ray trace id and the W3C trace context
//! carried into published events, and (feature `otel`) spans exported with OpenTelemetry.

mod context;
mod logging;
mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(feature = "otel")]
pub(crate) mod spans;
pub(crate) mod steps;
mod trace;

pub use context::{current_trace_context, TraceContext, TRACEPARENT_ATTRIBUTE};
pub use logging::{init_logging, record_span};
pub use metrics::{BatchMetrics, EMF_NAMESPACE};
pub use trace::{current_trace_id, with_trace_id};
