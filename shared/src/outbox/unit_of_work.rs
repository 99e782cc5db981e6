//! What a handler stages: its DynamoDB writes and its outgoing events, committed later in one
//! transaction with the idempotency completion, or not at all.

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
use serde::Serialize;

use super::destination::Destination;
use super::item::admit;
use super::size::{expression_bytes, item_bytes, values_bytes};
use crate::events::{EventEnvelope, EventTooLarge, OutgoingEvent};

/// DynamoDB's limit on the actions of one `TransactWriteItems`.
pub const TRANSACTION_MAX_ACTIONS: usize = 100;
/// DynamoDB's limit on the size of one `TransactWriteItems` request (4 MB).
pub const TRANSACTION_MAX_BYTES: usize = 4 * 1024 * 1024;

/// A unit of work's staged writes and events do not fit in one DynamoDB transaction.
/// Permanent: the same handler staging the same work would exceed it again.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnitOfWorkError {
    /// More actions than one transaction holds (the completion takes one of the 100).
    #[error(
        "unit of work would need {actions} transaction actions; one transaction holds {limit} \
         besides the idempotency completion"
    )]
    TooManyActions {
        /// Actions the unit of work would need, the new one included.
        actions: usize,
        /// The most it can hold.
        limit: usize,
    },
    /// More bytes than one transaction request carries.
    #[error("unit of work would be about {bytes} bytes; one transaction carries at most {limit}")]
    TooLarge {
        /// The estimated size, the new item included.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An event larger than its destination's carrier holds, or than an outbox item can
    /// store: refused when staged, since once committed nothing could publish it.
    #[error(transparent)]
    EventTooLarge(#[from] EventTooLarge),
    /// An outgoing event did not serialize.
    #[error("event {event_id} did not serialize: {message}")]
    Serialize {
        /// The event.
        event_id: String,
        /// The serializer's message.
        message: String,
    },
}

/// Retrying cannot make staged work fit, an event smaller, nor an event serialize.
impl crate::batch::Classify for UnitOfWorkError {
    fn class(&self) -> crate::batch::ErrorClass {
        crate::batch::ErrorClass::Permanent
    }
}

/// An event staged for the outbox: where it goes and what is sent, with the id it was
/// staged with (the relay publishes it under that id).
#[derive(Clone, Debug)]
pub struct StagedEvent {
    /// Where the relay publishes it.
    pub destination: Destination,
    /// What is published.
    pub event: OutgoingEvent,
}

/// A handler's DynamoDB writes and outgoing events, staged to be committed together with its
/// idempotency completion in one `TransactWriteItems`: all of them happen, with the
/// completion, or none does (see the [module docs](super)).
///
/// Writes are the SDK's own `Put`, `Update`, `Delete` and `ConditionCheck` (on any table);
/// their conditions are checked at commit: a failed one commits nothing and the record is
/// retried, so a handler that decides on what it read stages conditions on what it read.
///
/// One transaction holds [`TRANSACTION_MAX_ACTIONS`] actions and
/// [`TRANSACTION_MAX_BYTES`]; the completion takes one action and every event one more. An
/// event must fit its destination's carrier ([`Destination::carrier`]) and its outbox item
/// a DynamoDB item (400 KB). Staging past any of these limits is a [`UnitOfWorkError`], at
/// staging time, never a surprise at commit nor an event committed that cannot be
/// published. A transaction costs two write units per kilobyte of each item.
#[derive(Debug, Default)]
#[must_use = "staged writes and events happen only when the unit of work is returned in a `Staged` and committed"]
pub struct UnitOfWork {
    writes: Vec<TransactWriteItem>,
    events: Vec<StagedEvent>,
    bytes: usize,
}

impl UnitOfWork {
    /// An empty unit of work.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages a put.
    pub fn put(&mut self, put: Put) -> Result<&mut Self, UnitOfWorkError> {
        let bytes = item_bytes(Some(put.item())) + expression_bytes(put.condition_expression());
        self.stage(TransactWriteItem::builder().put(put).build(), bytes)
    }

    /// Stages an update.
    pub fn update(&mut self, update: Update) -> Result<&mut Self, UnitOfWorkError> {
        let bytes = item_bytes(Some(update.key()))
            + update.update_expression().len()
            + expression_bytes(update.condition_expression())
            + values_bytes(update.expression_attribute_values());
        self.stage(TransactWriteItem::builder().update(update).build(), bytes)
    }

    /// Stages a delete.
    pub fn delete(&mut self, delete: Delete) -> Result<&mut Self, UnitOfWorkError> {
        let bytes = item_bytes(Some(delete.key()))
            + expression_bytes(delete.condition_expression())
            + values_bytes(delete.expression_attribute_values());
        self.stage(TransactWriteItem::builder().delete(delete).build(), bytes)
    }

    /// Stages a condition on an item the unit of work does not write (it commits only if
    /// the condition still holds).
    pub fn condition_check(&mut self, check: ConditionCheck) -> Result<&mut Self, UnitOfWorkError> {
        let bytes = item_bytes(Some(check.key()))
            + check.condition_expression().len()
            + values_bytes(check.expression_attribute_values());
        self.stage(
            TransactWriteItem::builder().condition_check(check).build(),
            bytes,
        )
    }

    /// Stages `event` for `destination`: it is written to the outbox with the commit and
    /// published by the relay under its `eventId`. An event larger than the destination's
    /// carrier holds, or than an outbox item stores, is refused here
    /// ([`UnitOfWorkError::EventTooLarge`]).
    pub fn emit(
        &mut self,
        destination: Destination,
        event: OutgoingEvent,
    ) -> Result<&mut Self, UnitOfWorkError> {
        let staged = StagedEvent { destination, event };
        let bytes = admit(&staged)?;
        self.check(1, bytes)?;
        self.bytes += bytes;
        self.events.push(staged);
        Ok(self)
    }

    /// Stages an envelope for `destination` ([`emit`](Self::emit) of its
    /// [`OutgoingEvent`]).
    pub fn emit_envelope<T: Serialize>(
        &mut self,
        destination: Destination,
        envelope: &EventEnvelope<T>,
    ) -> Result<&mut Self, UnitOfWorkError> {
        let event =
            OutgoingEvent::from_envelope(envelope).map_err(|error| UnitOfWorkError::Serialize {
                event_id: envelope.event_id.clone(),
                message: error.to_string(),
            })?;
        self.emit(destination, event)
    }

    /// Ends staging: `output` is the handler's result, stored with the commit and replayed
    /// for duplicates.
    pub fn with_output<O>(self, output: O) -> Staged<O> {
        Staged { output, work: self }
    }

    /// The staged writes, in staging order.
    pub fn writes(&self) -> &[TransactWriteItem] {
        &self.writes
    }

    /// The staged events, in staging order.
    pub fn events(&self) -> &[StagedEvent] {
        &self.events
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty()
    }

    /// The transaction actions the commit needs: the writes, one per event and one for the
    /// completion.
    pub fn actions(&self) -> usize {
        self.writes.len() + self.events.len() + 1
    }

    /// About how many bytes its actions take in a transaction request.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn into_parts(self) -> (Vec<TransactWriteItem>, Vec<StagedEvent>) {
        (self.writes, self.events)
    }

    fn stage(
        &mut self,
        item: TransactWriteItem,
        bytes: usize,
    ) -> Result<&mut Self, UnitOfWorkError> {
        self.check(1, bytes)?;
        self.bytes += bytes;
        self.writes.push(item);
        Ok(self)
    }

    fn check(&self, actions: usize, bytes: usize) -> Result<(), UnitOfWorkError> {
        let needed = self.actions() + actions;
        if needed > TRANSACTION_MAX_ACTIONS {
            return Err(UnitOfWorkError::TooManyActions {
                actions: needed - 1,
                limit: TRANSACTION_MAX_ACTIONS - 1,
            });
        }
        let total = self.bytes + bytes + COMPLETION_OVERHEAD;
        if total > TRANSACTION_MAX_BYTES {
            return Err(UnitOfWorkError::TooLarge {
                bytes: total,
                limit: TRANSACTION_MAX_BYTES,
            });
        }
        Ok(())
    }
}

/// What a handler that stages its work returns: its output and the unit of work to commit
/// with it. Only a [`TransactionalLayer`](super::TransactionalLayer) turns it into a record
/// outcome, so staged work cannot be dropped by running the handler without one.
#[derive(Debug)]
#[must_use = "a staged unit of work happens only when committed by the transactional layer"]
pub struct Staged<O> {
    output: O,
    work: UnitOfWork,
}

impl<O> Staged<O> {
    /// The output alone, nothing staged (a handler that decided there is nothing to do).
    pub fn nothing(output: O) -> Self {
        UnitOfWork::new().with_output(output)
    }

    /// The handler's output.
    pub fn output(&self) -> &O {
        &self.output
    }

    /// The staged work.
    pub fn work(&self) -> &UnitOfWork {
        &self.work
    }

    /// The output and the work.
    pub fn into_parts(self) -> (O, UnitOfWork) {
        (self.output, self.work)
    }
}

/// The completion's update, with the stored result bounded by the record's own limits.
pub(super) const COMPLETION_OVERHEAD: usize = 1024;
