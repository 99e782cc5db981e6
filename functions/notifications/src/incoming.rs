//! The events a customer hears about, and the email each one becomes.

use eventkit::events::{DecodeError, DecodeReason, EventEnvelope, EventRecord, VersionedEvent};
use eventkit::handler::{FromRecord, Invocation};
use orders::{OrderPlaced, PaymentCompleted};

use crate::sent_emails::Email;

/// An event to notify about.
#[derive(Debug)]
pub enum NotificationEvent {
    /// Confirm the order.
    OrderPlaced(EventEnvelope<OrderPlaced>),
    /// Send the receipt.
    PaymentCompleted(EventEnvelope<PaymentCompleted>),
}

impl FromRecord for NotificationEvent {
    fn from_record(record: &EventRecord, _: &Invocation) -> Result<Self, DecodeError> {
        match record.event_type()? {
            OrderPlaced::EVENT_TYPE => {
                orders::entrance::order_placed(record).map(Self::OrderPlaced)
            }
            PaymentCompleted::EVENT_TYPE => record.event().map(Self::PaymentCompleted),
            other => Err(record.decode_error(DecodeReason::UnknownEventType {
                expected: "OrderPlaced or PaymentCompleted".into(),
                found: other.into(),
            })),
        }
    }
}

impl NotificationEvent {
    /// The email this event becomes; its id is the event's, so one event is one email.
    pub fn email(&self) -> Email {
        match self {
            Self::OrderPlaced(event) => {
                let order = &event.data.order();
                Email {
                    notification_id: event.event_id.clone(),
                    kind: "order-confirmation".into(),
                    to: order.customer_email.clone(),
                    order_id: order.order_id.clone(),
                    subject: format!("We received your order {}", order.order_id),
                    correlation_id: event.correlation_id.clone(),
                }
            }
            Self::PaymentCompleted(event) => {
                let order = &event.data.order;
                Email {
                    notification_id: event.event_id.clone(),
                    kind: "payment-receipt".into(),
                    to: order.customer_email.clone(),
                    order_id: order.order_id.clone(),
                    subject: format!(
                        "Receipt for order {}: {}.{:02} {}",
                        order.order_id,
                        order.amount_cents / 100,
                        order.amount_cents % 100,
                        order.currency
                    ),
                    correlation_id: event.correlation_id.clone(),
                }
            }
        }
    }
}
