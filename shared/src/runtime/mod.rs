//! A function's `main` in a few lines: SDK clients and the idempotency layer built once at
//! init, then the typed handler run for every SQS, SNS or EventBridge invocation through
//! lambda_runtime.
//!
//! ```no_run
//! use eventkit::events::{EventEnvelope, VersionedEvent};
//! use eventkit::handler::Handler;
//! use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
//! use eventkit::runtime::EventFunction;
//! # #[derive(serde::Deserialize)] struct OrderPlaced {}
//! # impl VersionedEvent for OrderPlaced {
//! #     const EVENT_TYPE: &'static str = "OrderPlaced";
//! #     const CURRENT_VERSION: u32 = 1;
//! # }
//! async fn reserve(order: EventEnvelope<OrderPlaced>) -> Result<(), std::io::Error> { Ok(()) }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     eventkit::telemetry::init_logging();
//!     let config = aws_config::load_from_env().await;
//!     let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), "idempotency");
//!     let idempotency = Idempotency::new(store, IdempotencyConfig::from_function_name());
//!     EventFunction::new(Handler::new(reserve).with_idempotency(idempotency))
//!         .run()
//!         .await
//! }
//! ```
//!
//! [`EventFunction::handle`] (and `handle_sqs`, `handle_sns`, `handle_eventbridge`) is the
//! whole invocation minus the Runtime API, so tests call it with a Lambda event and a
//! deadline.

mod function;
mod payload;

pub use function::EventFunction;
pub use payload::{InvocationError, LambdaPayload};

#[cfg(test)]
mod tests;
