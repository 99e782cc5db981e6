//! A function's `main` in a few lines: SDK clients and the idempotency layer built once at
//! init, then the typed handler run for every SQS, SNS or EventBridge invocation through
//! lambda_runtime.
//!
//! ```no_run
//! use eventkit::events::{EventEnvelope, VersionedEvent};
//! use eventkit::handler::{Handler, RecordHandlerExt};
//! use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig, IdempotencyLayer};
//! use eventkit::runtime::EventFunction;
//! # #[derive(serde::Deserialize)] struct OrderPlaced {}
//! # impl VersionedEvent for OrderPlaced {
//! #     const EVENT_TYPE: &'static str = "OrderPlaced";
//! #     const CURRENT_VERSION: u32 = 1;
//! # }
//! async fn reserve(order: EventEnvelope<OrderPlaced>) -> Result<(), std::io::Error> { Ok(()) }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     eventkit::telemetry::init_logging();
//!     let config = aws_config::load_from_env().await;
//!     let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), "idempotency");
//!     let handler = Handler::new(reserve)
//!         .layer(IdempotencyLayer::new(store, IdempotencyConfig::new("inventory")));
//!     EventFunction::new(handler).with_metrics("inventory").run().await
//! }
//! ```
//!
//! [`EventFunction::handle`] is the whole invocation minus the Runtime API, so tests call it
//! with a Lambda event and a deadline; [`EventFunction::into_service`] is the function as a
//! tower service for `lambda_runtime::Runtime` and its layers.

mod function;
mod payload;

pub use function::{EventFunction, EventService, InvocationFuture};
pub use payload::{InvocationError, LambdaPayload};

#[cfg(test)]
mod tests;
