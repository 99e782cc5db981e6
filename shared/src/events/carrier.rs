//! What each carrier of an event holds, in one place. Three sides ask it: a publisher
//! refuses an event too large for its carrier before sending it, the outbox refuses one when
//! it is staged (never after its transaction committed, when nothing could publish it), and
//! a consumer's body cap is its carrier's limit, so a message the carrier delivered is never
//! taken for poison because of its size.
//!
//! Limits since January 2026: SQS messages, EventBridge events (a PutEvents entry) and
//! asynchronous Lambda invocations carry up to 1 MB (1,048,576 bytes); SNS messages 256 KB
//! (262,144 bytes); a DynamoDB item holds 400 KB (409,600 bytes, attribute names included).

use std::fmt;

use super::OutgoingEvent;

/// Something that carries an event from its producer towards its consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Carrier {
    /// An SNS message (and so an SNS notification to Lambda or to a queue).
    Sns,
    /// An SQS message.
    Sqs,
    /// An EventBridge event: a PutEvents entry, and the asynchronous invocation of a rule's
    /// Lambda target.
    EventBridge,
    /// A DynamoDB item: the outbox's, which carries an event from its commit to the relay
    /// (the event's bytes and the item's other attributes).
    DynamoDbItem,
}

impl Carrier {
    /// The most bytes it carries.
    pub const fn max_bytes(self) -> usize {
        match self {
            Self::Sns => 256 * 1024,
            Self::Sqs | Self::EventBridge => 1024 * 1024,
            Self::DynamoDbItem => 400 * 1024,
        }
    }

    /// Whether `event` fits, measured as [`OutgoingEvent::size_bytes`] counts it (at least
    /// what SNS, SQS or EventBridge count, so an event admitted here is not refused for its
    /// size by the service). The outbox measures its whole item against
    /// [`DynamoDbItem`](Self::DynamoDbItem) with [`EventTooLarge::check`].
    pub fn admit(self, event: &OutgoingEvent) -> Result<(), EventTooLarge> {
        EventTooLarge::check(event, event.size_bytes(), self)
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sns => "an SNS message",
            Self::Sqs => "an SQS message",
            Self::EventBridge => "an EventBridge event",
            Self::DynamoDbItem => "a DynamoDB item (the outbox's)",
        })
    }
}

/// An event larger than its carrier holds. Permanent: the same event is as large on every
/// attempt, so it is refused where it is made (staged, published), never sent to be refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "event {event_id} ({event_type}) takes {size} bytes in {carrier}, which holds at most {limit}"
)]
pub struct EventTooLarge {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The bytes it takes in its carrier.
    pub size: usize,
    /// The most the carrier holds.
    pub limit: usize,
    /// The carrier.
    pub carrier: Carrier,
}

impl EventTooLarge {
    /// `event`, taking `size` bytes in `carrier`: refused when that is more than the
    /// carrier's [`max_bytes`](Carrier::max_bytes) (the limit itself fits).
    pub fn check(event: &OutgoingEvent, size: usize, carrier: Carrier) -> Result<(), Self> {
        let limit = carrier.max_bytes();
        if size <= limit {
            return Ok(());
        }
        Err(Self {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            size,
            limit,
            carrier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event that [`OutgoingEvent::size_bytes`] counts as `size` bytes.
    fn event_of_size(size: usize) -> OutgoingEvent {
        let envelope = crate::events::EventEnvelope::from_parts("T", 1, "s", ());
        let mut event = OutgoingEvent::from_envelope(&envelope).unwrap();
        event.body.clear();
        let overhead = event.size_bytes();
        event.body = "x".repeat(size - overhead);
        assert_eq!(event.size_bytes(), size);
        event
    }

    #[test]
    fn each_carrier_admits_up_to_its_limit_and_names_itself_past_it() {
        for (carrier, limit) in [
            (Carrier::Sns, 262_144),
            (Carrier::Sqs, 1_048_576),
            (Carrier::EventBridge, 1_048_576),
            (Carrier::DynamoDbItem, 409_600),
        ] {
            assert_eq!(carrier.max_bytes(), limit, "{carrier}");
            assert_eq!(carrier.admit(&event_of_size(limit)), Ok(()), "{carrier}");
            let over = event_of_size(limit + 1);
            let refused = carrier.admit(&over).unwrap_err();
            assert_eq!(
                refused,
                EventTooLarge {
                    event_id: over.event_id.clone(),
                    event_type: "T".into(),
                    size: limit + 1,
                    limit,
                    carrier
                }
            );
            assert!(refused.to_string().contains(&over.event_id), "{refused}");
        }
    }
}
