//! The payments function's entry point.

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
    let payments = Payments::new(provider, wiring::orders_destination()?);
    payments::function(
        payments,
        wiring::idempotency(&config, payments::idempotency_config())?,
    )
    .with_redelivery(wiring::redelivery(&config, payments::record_backoff())?)
    .with_metrics(wiring::service_name())
    .run()
    .await
}
