//! The two events inventory consumes, told apart by the envelope's `eventType`.

use eventkit::events::{DecodeError, DecodeReason, EventEnvelope, EventRecord, VersionedEvent};
use eventkit::handler::FromRecord;
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
    fn from_record(record: &EventRecord) -> Result<Self, DecodeError> {
        let head = record.envelope::<serde_json::Value>()?;
        match head.event_type.as_str() {
            OrderPlaced::EVENT_TYPE => record.event().map(Self::OrderPlaced),
            PaymentFailed::EVENT_TYPE => record.event().map(Self::PaymentFailed),
            other => Err(record.error(DecodeReason::UnknownEventType {
                expected: "OrderPlaced or PaymentFailed".into(),
                found: other.into(),
            })),
        }
    }
}
