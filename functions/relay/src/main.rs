//! The relay: the outbox table's DynamoDB stream in, each committed event out to the bus it
//! names, under the id it was staged with (eventkit's `outbox::Relay`, as
//! `orders::wiring::relay` builds it).
//! Failed records go back through the stream's partial batch response; what never succeeds
//! reaches the event source mapping's on-failure destination (infra/template.yaml), and the
//! outbox sweeper publishes it. Publishes go through the bus's circuit breaker.
// The service's future (idempotency store behind a breaker, transactional layer, batch
// processing) nests deeper than rustc's default limit (128) in release builds.
#![recursion_limit = "256"]

use eventkit::breaker::BreakerLayer;
use eventkit::handler::RecordHandlerExt;
use eventkit::runtime::EventFunction;
use orders::wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let relay = wiring::relay(&config)?;
    // While the bus's breaker is open, the stream's records are refused before any publish.
    let breakers = relay.breaker().cloned();
    EventFunction::new(relay.layer(BreakerLayer::new(breakers)))
        .with_metrics(wiring::service_name())
        .run()
        .await
}
