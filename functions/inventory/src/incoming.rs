//! The two events inventory consumes, told apart by the envelope's `eventType`.

use eventkit::events::{DecodeError, DecodeReason, EventEnvelope, EventRecord, VersionedEvent};
use eventkit::handler::{FromRecord, Invocation};
use orders::{OrderPlaced, PaymentFailed};

/// An event for inventory.
#[derive(Debug)]
pub enum InventoryEvent {
    /// Reserve the order's stock.
    OrderPlaced(EventEnvelope<OrderPlaced>),
    /// Release it: the payment was declined.
    PaymentFailed(EventEnvelope<PaymentFailed>),
}

impl FromRecord for InventoryEvent {
    fn from_record(record: &EventRecord, _: &Invocation) -> Result<Self, DecodeError> {
        match record.event_type()? {
            OrderPlaced::EVENT_TYPE => {
                orders::entrance::order_placed(record).map(Self::OrderPlaced)
            }
            PaymentFailed::EVENT_TYPE => record.event().map(Self::PaymentFailed),
            other => Err(record.decode_error(DecodeReason::UnknownEventType {
                expected: "OrderPlaced or PaymentFailed".into(),
                found: other.into(),
            })),
        }
    }
}
