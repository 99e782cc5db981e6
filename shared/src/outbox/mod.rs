//! The transactional outbox: a handler's DynamoDB writes, its outgoing events and its
//! idempotency completion commit together in one `TransactWriteItems`, or not at all; a
//! relay publishes the committed events afterwards, under the ids they were staged with.
//!
//! Without it a handler makes two unprotected writes: its state change, then its publish.
//! A crash between them leaves the state changed and the event unsent until a redelivery
//! happens to republish it. With it:
//!
//! 1. the handler stages its writes (the SDK's `Put`, `Update`, `Delete`, `ConditionCheck`,
//!    on any table) and its events in a [`UnitOfWork`] and returns it with its output as
//!    [`Staged`];
//! 2. [`TransactionalLayer`] (the idempotency layer, transactional) commits the unit of work
//!    with the completion: one transaction, its first action the completion fenced on the
//!    claim's owner; the events go to the outbox table, one item each;
//! 3. the [`Relay`], a function on the outbox table's stream, publishes each event to the
//!    [`Destination`] it names and marks it published; its TTL then removes it. It takes a
//!    shard's batch whole (ten events per publish request, 25 marks per request), and the
//!    stream mapping's [`STREAM_FILTER`] keeps its own marks from invoking it;
//! 4. the [`Sweeper`], run on a schedule, publishes what the stream did not get published
//!    (a destination down for longer than the stream's retries, or than its 24 hours) and
//!    reports the backlog: a committed event is published however long its destination is
//!    down.
//!
//! **Where the events go.** By default each event is an item of the outbox table
//! ([`DynamoDbStore::with_outbox`](crate::idempotency::DynamoDbStore::with_outbox)). With
//! [`DynamoDbStore::with_outbox_on_completions`](crate::idempotency::DynamoDbStore::with_outbox_on_completions)
//! they ride on the idempotency record the completion writes, and the idempotency table is
//! the outbox (its stream feeds the relay, its index the sweeper): a handler that only emits
//! commits with a plain completion (no transaction), one that stages writes commits one item
//! less. A rerun after its record expired publishes its events again, under the same ids, for
//! consumers' idempotency to absorb (an outbox item would have told it "staged before").
//! In the batched mode (SQS batches), the batch's completions share transactions of up to
//! 100 actions, each record's part all or nothing.
//!
//! A crash anywhere before the commit leaves nothing (the claim is released or runs out,
//! and a retry runs the handler again); a crash after it leaves a completed record, whose
//! duplicates replay, and an outbox item, which the stream delivers until it is published.
//! A failed staged condition commits nothing and fails the record transiently, so the
//! handler runs again on fresh reads ([`StoreError::StagedConditionFailed`](crate::idempotency::StoreError::StagedConditionFailed)).
//!
//! Present means staged: an event whose outbox item exists already (a rerun derives the
//! same `eventId`, after its record expired, say) was staged by an earlier commit. Its item
//! is left as it is, published or not, and the rest of the unit of work commits; the event
//! is not published again.
//!
//! Side effects outside DynamoDB (a payment provider) cannot join the transaction: pass them
//! an idempotency key derived from the event's id, so a rerun is recognised as the same.
//!
//! Limits: one transaction holds 100 actions (the completion, each write, each event) and
//! 4 MB; an event must fit its destination's carrier (an SNS message 256 KB, an SQS message
//! or an EventBridge event 1 MB) and its outbox item a DynamoDB item (400 KB, so an event
//! for SQS or EventBridge stays a few KB under that). Staging past any of them is a
//! [`UnitOfWorkError`] (permanent), so an event is never committed that could not be
//! published. A transaction costs two write units per kilobyte of each item, twice a plain
//! write.
//!
//! ```no_run
//! use aws_sdk_dynamodb::types::{AttributeValue, Update};
//! use eventkit::batch::RecordError;
//! use eventkit::events::EventEnvelope;
//! use eventkit::handler::{Handler, RecordHandlerExt};
//! use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig};
//! use eventkit::outbox::{Destination, Staged, TransactionalLayer, UnitOfWork};
//! # #[derive(serde::Deserialize, serde::Serialize)] struct Deposited { account: String, cents: u64 }
//! # impl eventkit::events::VersionedEvent for Deposited { const EVENT_TYPE: &'static str = "Deposited"; const CURRENT_VERSION: u32 = 1; }
//! # #[derive(serde::Deserialize, serde::Serialize)] struct Credited { account: String }
//! # impl eventkit::events::VersionedEvent for Credited { const EVENT_TYPE: &'static str = "Credited"; const CURRENT_VERSION: u32 = 1; }
//!
//! async fn credit(deposit: EventEnvelope<Deposited>) -> Result<Staged<u64>, RecordError> {
//!     let mut work = UnitOfWork::new();
//!     work.update(
//!         Update::builder()
//!             .table_name("accounts")
//!             .key("account", AttributeValue::S(deposit.data.account.clone()))
//!             .update_expression("ADD balance :cents")
//!             .expression_attribute_values(":cents", AttributeValue::N(deposit.data.cents.to_string()))
//!             .build()
//!             .map_err(RecordError::permanent)?,
//!     )?;
//!     let credited = EventEnvelope::caused_by(&deposit, "bank", Credited { account: deposit.data.account.clone() });
//!     work.emit_envelope(Destination::event_bridge("bank-bus"), &credited)?;
//!     Ok(work.with_output(deposit.data.cents))
//! }
//!
//! # fn example(client: aws_sdk_dynamodb::Client) {
//! let store = DynamoDbStore::new(client, "idempotency").with_outbox("outbox");
//! let handler = Handler::new(credit).layer(TransactionalLayer::new(store, IdempotencyConfig::new("bank")));
//! # }
//! ```

mod carried;
mod destination;
mod item;
mod layer;
mod marks;
mod publish_batch;
mod relay;
mod size;
mod store;
mod sweeper;
mod transaction;
mod unit_of_work;

pub use destination::{Destination, UnknownDestination};
pub(crate) use item::is_same_item;
pub use item::{OutboxEntry, OUTBOX_KEY, UNPUBLISHED_INDEX};
pub use layer::{Transactional, TransactionalLayer};
pub use relay::{Relay, Relayed, DEFAULT_RETENTION, STREAM_FILTER};
pub use store::{CommittedWork, TransactionalStore};
pub use sweeper::{Backlog, Sweep, SweepError, Sweeper, DEFAULT_GRACE, TTL_MARGIN};
pub use unit_of_work::{
    Staged, StagedEvent, UnitOfWork, UnitOfWorkError, TRANSACTION_MAX_ACTIONS,
    TRANSACTION_MAX_BYTES,
};

#[cfg(test)]
mod tests;
