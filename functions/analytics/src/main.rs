//! The analytics function's entry point.
// The service's future (idempotency store behind a breaker, transactional layer, batch
// processing) nests deeper than rustc's default limit (128) in release builds.
#![recursion_limit = "256"]

use analytics::{Counters, ANALYTICS_TABLE};
use orders::wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let counters = Counters::new(wiring::required(ANALYTICS_TABLE)?);
    analytics::function(
        counters,
        wiring::idempotency(&config, analytics::idempotency_config())?,
    )
    .with_redelivery(wiring::redelivery(&config, analytics::record_backoff())?)
    .with_metrics(wiring::service_name())
    .run()
    .await
}
