//! The relay: the outbox table's DynamoDB stream in, each committed event out to the bus it
//! names, under the id it was staged with (eventkit's `outbox::Relay`, nothing of its own).
//! Failed records go back through the stream's partial batch response; what never succeeds
//! reaches the event source mapping's on-failure destination (infra/template.yaml).

use eventkit::handler::Handler;
use eventkit::outbox::Relay;
use eventkit::runtime::EventFunction;
use orders::wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let relay = Relay::new(
        aws_sdk_dynamodb::Client::new(&config),
        wiring::required(wiring::OUTBOX_TABLE)?,
    )
    .with_eventbridge(aws_sdk_eventbridge::Client::new(&config));
    EventFunction::new(Handler::from_service(relay))
        .with_metrics(wiring::service_name())
        .run()
        .await
}
