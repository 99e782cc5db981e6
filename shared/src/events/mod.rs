//! Typed domain events from SQS, SNS and EventBridge, and the event envelope.
//!
//! A handler receives its domain type the same way whatever carried it:
//!
//! 1. turn the Lambda event into records with [`records_from`] (an `SqsEvent`, `SnsEvent`
//!    or `EventBridgeEvent` of `aws_lambda_events`); SNS notifications and EventBridge
//!    events inside SQS bodies are unwrapped here, and each body is parsed once;
//! 2. decode each record on its own ([`EventRecord::event`] for a versioned envelope,
//!    [`EventRecord::decode`] for any other type); a bad record yields a [`DecodeError`]
//!    naming its id and never affects the others.
//!
//! [`EventFunction`](crate::runtime::EventFunction) does both for a handler; this module is
//! for code that works on records itself.
//!
//! The other direction: wrap domain events in an [`EventEnvelope`] (an event caused by
//! another gets a [stable id](derived_event_id)), turn them into [`OutgoingEvent`]s and
//! publish them with [`SnsPublisher`], [`EventBridgePublisher`] or [`SqsPublisher`], which
//! return the entries that finally failed.
//!
//! ```
//! use aws_lambda_events::sqs::SqsEvent;
//! use eventkit::events::{records_from, DecodeError, DecodeOptions, VersionedEvent};
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
//!     for record in records_from(event, &DecodeOptions::default()) {
//!         match record.event::<OrderPlaced>() {
//!             Ok(order) => println!("order {}", order.data.order_id),
//!             Err(error) => failed.push(error), // error.record_id goes in the batch response
//!         }
//!     }
//!     failed
//! }
//! ```

mod carrier;
mod decode;
mod envelope;
mod error;
// Without any publisher, the batching they share is unused.
#[cfg_attr(
    not(any(feature = "sqs", feature = "sns", feature = "eventbridge")),
    allow(dead_code)
)]
mod publish;
mod record;
#[cfg(feature = "schemas")]
pub mod schema;
mod sources;
mod versioned;

#[cfg(test)]
mod tests;

pub use carrier::{Carrier, EventTooLarge};
pub use decode::decode_data;
pub use envelope::{derived_event_id, EventEnvelope};
pub use error::{DecodeError, DecodeReason};
#[cfg(feature = "eventbridge")]
pub use publish::EventBridgePublisher;
#[cfg(feature = "sns")]
pub use publish::SnsPublisher;
#[cfg(feature = "sqs")]
pub use publish::SqsPublisher;
pub use publish::{
    OutgoingEvent, PublishFailure, RetryPolicy, EVENT_TOO_LARGE, MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES, SCHEMA_VIOLATION,
};
pub use record::{EventRecord, MessageAttribute, Source, EVENT_TYPE_ATTRIBUTE};
#[cfg(feature = "dynamodb")]
pub use sources::EVENT_NAME_ATTRIBUTE;
pub use sources::{records_from, CarriesRecords, DecodeOptions};
pub use versioned::{UpcastError, VersionedEvent};
