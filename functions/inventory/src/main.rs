//! The inventory function's entry point: clients and configuration built once, then the
//! Runtime API loop.
// The service's future (idempotency store behind a breaker, transactional layer, batch
// processing) nests deeper than rustc's default limit (128) in release builds.
#![recursion_limit = "256"]

use inventory::{Inventory, Stock, INVENTORY_TABLE};
use orders::wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let stock = Stock::new(
        aws_sdk_dynamodb::Client::new(&config),
        wiring::required(INVENTORY_TABLE)?,
    );
    let inventory = Inventory::new(stock, wiring::orders_destination()?);
    inventory::function(
        inventory,
        wiring::idempotency(&config, inventory::idempotency_config())?,
    )
    .with_redelivery(wiring::redelivery(&config, inventory::record_backoff())?)
    .with_metrics(wiring::service_name())
    .run()
    .await
}
