//! Typed domain events from SQS, SNS and EventBridge, and the event envelope.
//!
//! A handler receives its domain type the same way whatever carried it:
//!
//! 1. turn the Lambda event into records ([`records_from_sqs`], [`records_from_sns`],
//!    [`record_from_eventbridge`]); SNS notifications and EventBridge events inside SQS
//!    bodies are unwrapped here;
//! 2. decode each record on its own ([`EventRecord::event`] for a versioned envelope,
//!    [`EventRecord::data`] for just the domain struct, [`EventRecord::decode`] for any
//!    type); a bad record yields a [`DecodeError`] naming its id and never affects the
//!    others.
//!
//! The other direction: wrap domain events in an [`EventEnvelope`], turn them into
//! [`OutgoingEvent`]s and publish them with [`SnsPublisher`], [`EventBridgePublisher`] or
//! [`SqsPublisher`], which return the entries that finally failed.
//!
//! ```
//! use aws_lambda_events::sqs::SqsEvent;
//! use eventkit::events::{records_from_sqs, DecodeError, VersionedEvent};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct OrderPlaced { order_id: String }
//!
//! impl VersionedEvent for OrderPlaced {
//!     const EVENT_TYPE: &'static str = "OrderPlaced";
//!     const CURRENT_VERSION: u32 = 1;
//! }
//!
//! fn handle(event: &SqsEvent) -> Vec<DecodeError> {
//!     let mut failed = Vec::new();
//!     for record in records_from_sqs(event) {
//!         match record.data::<OrderPlaced>() {
//!             Ok(order) => println!("order {}", order.order_id),
//!             Err(error) => failed.push(error), // error.record_id goes in the batch response
//!         }
//!     }
//!     failed
//! }
//! ```

mod envelope;
mod error;
mod publish;
mod record;
mod sources;
mod versioned;

#[cfg(test)]
mod tests;

pub use envelope::{derived_event_id, EventEnvelope};
pub use error::{DecodeError, DecodeReason};
pub use publish::{
    EventBridgePublisher, OutgoingEvent, PublishFailure, RetryPolicy, SnsPublisher, SqsPublisher,
    MAX_BATCH_BYTES, MAX_BATCH_ENTRIES,
};
pub use record::{EventRecord, MessageAttribute, Source};
pub use sources::{
    record_from_eventbridge, record_from_eventbridge_with, record_from_sqs_message,
    records_from_sns, records_from_sns_with, records_from_sqs, records_from_sqs_with,
    DecodeOptions, DEFAULT_MAX_BODY_BYTES,
};
pub use versioned::{decode_event, upcast_envelope, UpcastError, VersionedEvent};
