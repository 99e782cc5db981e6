//! A handler with state: the service holds its clients (built once, at init) and implements
//! `EventHandler`, so the function's type can be named without boxing; it reads the Lambda
//! context (request id, deadline) it is invoked in, and runs under lambda_runtime's own
//! tracing layer through `into_service`.
//! Build: `cargo build -p eventkit-lambda --example handler_with_state`.
// The composed future (runtime, batch, idempotency, SDK; spans with the `otel` feature)
// nests deeper than rustc's default layout query depth (128).
#![recursion_limit = "256"]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::RecordError;
use eventkit::events::{EventEnvelope, VersionedEvent};
use eventkit::handler::{EventHandler, Handler, Invocation, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig, IdempotencyLayer, Idempotent};
use eventkit::runtime::EventFunction;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerRegistered {
    customer_id: String,
    email: String,
}

impl VersionedEvent for CustomerRegistered {
    const EVENT_TYPE: &'static str = "CustomerRegistered";
    const CURRENT_VERSION: u32 = 1;
}

/// The state: a DynamoDB client and the table it writes to.
struct Customers {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl EventHandler for Customers {
    type Event = EventEnvelope<CustomerRegistered>;
    type Output = String;
    type Error = RecordError;

    async fn handle(
        &self,
        event: Self::Event,
        invocation: &Invocation,
    ) -> Result<String, RecordError> {
        // Too little time left to finish safely: let a later delivery do it.
        if invocation.deadline().remaining() < Duration::from_secs(1) {
            return Err(RecordError::transient("too close to the deadline"));
        }
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .item(
                "customerId",
                AttributeValue::S(event.data.customer_id.clone()),
            )
            .item("email", AttributeValue::S(event.data.email))
            .item(
                "requestId",
                AttributeValue::S(invocation.request_id().into()),
            )
            .send()
            .await?;
        Ok(event.data.customer_id)
    }
}

/// The function's whole type, named: no `Box<dyn Fn>` anywhere.
type Function = EventFunction<Idempotent<Handler<Customers>, DynamoDbStore>>;

fn function(customers: Customers, store: DynamoDbStore) -> Function {
    EventFunction::new(
        Handler::from_service(customers).layer(IdempotencyLayer::new(
            store,
            IdempotencyConfig::new("customers"),
        )),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let customers = Customers {
        dynamodb: dynamodb.clone(),
        table: "customers".into(),
    };
    let store = DynamoDbStore::new(dynamodb, "idempotency");
    // lambda_runtime's Runtime with its own layers around the function's service.
    lambda_runtime::Runtime::new(function(customers, store).into_service())
        .layer(lambda_runtime::layers::TracingLayer::new())
        .run()
        .await
}
