//! Telemetry: structured logs with each record's ids on every line, CloudWatch Embedded
//! Metric Format (EMF) lines for each batch, and the X-Ray trace id carried into published
//! events.

mod logging;
mod metrics;
mod trace;

pub use logging::{init_logging, record_span};
pub use metrics::{BatchMetrics, EMF_NAMESPACE};
pub use trace::{current_trace_id, with_trace_id};
