//! # eventkit
//!
//! A toolkit for Rust event handlers on AWS Lambda: typed domain events from SQS, SNS and
//! EventBridge (whatever carried them), an idempotency layer backed by DynamoDB, and
//! partial-batch processing.
//!
//! Each concern lives in one module and composes around a plain `async fn(T) -> Result<Out, E>`
//! handler:
//!
//! - [`events`]: receiving records from any source, the event envelope, versioned events,
//!   publishing.
//! - [`idempotency`]: once-per-key side effects, with DynamoDB and in-memory stores.
//! - [`batch`]: partial batch failures, FIFO ordering, deadlines, panic isolation.
//! - [`outbox`]: a handler's writes, events and completion in one transaction, and the
//!   relay that publishes the events.
//! - [`handler`]: the composition of decoding, idempotency and the user's function.
//! - [`runtime`]: `main` in a few lines, through lambda_runtime.
//! - [`telemetry`]: structured logs per record and EMF metrics per batch.
//! - [`breaker`]: circuit breakers per dependency, their open state shared in DynamoDB.
//! - [`clock`]: where "now" comes from, so tests move time instead of sleeping.
//! - [`backoff`]: the waits between retries (exponential, capped, jittered).
//! - [`redelivery`]: a failed SQS record sent back to its queue with a growing delay.
//! - [`faults`]: crashes injected at the dangerous points, for reliability runs.
#![warn(missing_docs)]
// docs.rs (built with `--cfg docsrs` on nightly) marks each item with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod backoff;
pub mod batch;
pub mod breaker;
pub mod clock;
/// The crate to log with: every line logged in a record's span carries its ids.
pub use tracing;
pub mod events;
pub mod faults;
pub mod handler;
pub mod idempotency;
#[cfg(feature = "dynamodb")]
pub mod outbox;
pub mod redelivery;
pub mod runtime;
pub mod telemetry;

/// The package's README (what crates.io shows), compiled as doctests; the repository's
/// README is compiled by the tests crate, since it is not part of this package.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
