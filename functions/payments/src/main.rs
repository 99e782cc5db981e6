//! The payments function's entry point.
// The gated, transactional service's future nests deeper than rustc's default limit (128).
#![recursion_limit = "256"]

use orders::wiring;
use payments::{FakeProvider, Payments, LEDGER_TABLE};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let provider = FakeProvider::new(
        payments::provider_client(&config),
        wiring::required(LEDGER_TABLE)?,
    );
    let payments = Payments::new(provider, wiring::orders_destination()?)
        .with_breaker(wiring::breaker(&config, payments::PROVIDER_BREAKER)?);
    payments::function(
        payments,
        wiring::idempotency(&config, payments::idempotency_config())?,
    )
    .with_redelivery(wiring::redelivery(&config, payments::record_backoff())?)
    .with_metrics(wiring::service_name())
    .run()
    .await
}
