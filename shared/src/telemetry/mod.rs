//! Telemetry: structured logs with each record's ids on every line, and CloudWatch Embedded
//! Metric Format (EMF) lines for each batch.

mod logging;
mod metrics;

pub use logging::{init_logging, record_span};
pub use metrics::{BatchMetrics, EMF_NAMESPACE};
