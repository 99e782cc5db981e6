//! One received message, whatever carried it: the source-agnostic record a handler decodes.
//!
//! The carriers (SQS, SNS, EventBridge, and SNS or EventBridge inside an SQS body) differ
//! in shape but a handler wants the same things from each: the id to report a failure
//! with, the decoded body, and a little delivery metadata. Unwrapping happens once, when
//! the record is built; a record whose wrapper was bad keeps that error and returns it from
//! every decode call, so the rest of its batch is unaffected.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;

use super::envelope::EventEnvelope;
use super::error::{DecodeError, DecodeReason};
use super::versioned::{decode_event, VersionedEvent};

/// Which service (or nesting of services) delivered a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// An SQS message sent to the queue directly.
    Sqs,
    /// An SNS notification delivered to Lambda directly.
    Sns,
    /// An EventBridge event delivered to Lambda directly.
    EventBridge,
    /// An SNS notification delivered to an SQS queue. With raw delivery the body is the bare
    /// message and nothing on the wire says SNS sent it, so `raw: true` only appears when
    /// the caller declares the queue raw-subscribed (see
    /// [`DecodeOptions::raw_sns_delivery`](super::DecodeOptions::raw_sns_delivery)).
    SnsViaSqs {
        /// Whether the subscription uses raw message delivery.
        raw: bool,
    },
    /// An EventBridge event delivered to an SQS queue (a rule target).
    EventBridgeViaSqs,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqs => "SQS",
            Self::Sns => "SNS",
            Self::EventBridge => "EventBridge",
            Self::SnsViaSqs { raw: false } => "SNS via SQS",
            Self::SnsViaSqs { raw: true } => "SNS via SQS (raw delivery)",
            Self::EventBridgeViaSqs => "EventBridge via SQS",
        })
    }
}

/// A message attribute, from SQS message attributes or SNS message attributes alike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageAttribute {
    /// `String`, `Number`, `Binary`, `String.Array`, possibly with a custom suffix
    /// (`Number.float`).
    pub data_type: String,
    /// The value of string, number and array attributes, as sent.
    pub string_value: Option<String>,
    /// The decoded bytes of binary attributes.
    pub binary_value: Option<Vec<u8>>,
}

impl MessageAttribute {
    /// A `String` attribute.
    pub fn string(value: impl Into<String>) -> Self {
        Self {
            data_type: "String".into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }
}

/// One received message with its carrier unwrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    id: String,
    source: Source,
    attributes: HashMap<String, MessageAttribute>,
    message_group_id: Option<String>,
    receive_count: Option<u32>,
    body: Result<String, DecodeReason>,
}

impl EventRecord {
    /// A record with `body` as its decoded (innermost) body and no metadata.
    pub fn new(id: impl Into<String>, source: Source, body: impl Into<String>) -> Self {
        Self::with_body(id, source, Ok(body.into()))
    }

    /// A record whose carrier could not be unwrapped: every decode returns `reason`.
    pub fn failed(id: impl Into<String>, source: Source, reason: DecodeReason) -> Self {
        Self::with_body(id, source, Err(reason))
    }

    pub(crate) fn with_body(
        id: impl Into<String>,
        source: Source,
        body: Result<String, DecodeReason>,
    ) -> Self {
        Self {
            id: id.into(),
            source,
            attributes: HashMap::new(),
            message_group_id: None,
            receive_count: None,
            body,
        }
    }

    /// Sets the message attributes.
    pub fn with_attributes(mut self, attributes: HashMap<String, MessageAttribute>) -> Self {
        self.attributes = attributes;
        self
    }

    /// Sets the FIFO message group id.
    pub fn with_message_group_id(mut self, group_id: Option<String>) -> Self {
        self.message_group_id = group_id;
        self
    }

    /// Sets the approximate receive count.
    pub fn with_receive_count(mut self, receive_count: Option<u32>) -> Self {
        self.receive_count = receive_count;
        self
    }

    /// The id to report this record with in a partial batch response: the SQS messageId for
    /// anything that came through SQS, the SNS MessageId or the EventBridge event id for
    /// direct deliveries.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which service (or nesting) delivered it.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Message attributes: the SQS message attributes, or for an SNS notification (direct
    /// or enveloped in SQS) the SNS message attributes. EventBridge has none.
    pub fn attributes(&self) -> &HashMap<String, MessageAttribute> {
        &self.attributes
    }

    /// The string value of attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.string_value.as_deref()
    }

    /// The FIFO message group id (SQS FIFO queues only).
    pub fn message_group_id(&self) -> Option<&str> {
        self.message_group_id.as_deref()
    }

    /// How many times SQS has delivered this message, this time included (SQS only).
    pub fn receive_count(&self) -> Option<u32> {
        self.receive_count
    }

    /// The decoded body: the innermost message with every carrier removed (the SQS body, the
    /// SNS message, or the EventBridge `detail` as JSON).
    pub fn body(&self) -> Result<&str, DecodeError> {
        self.body
            .as_deref()
            .map_err(|reason| self.error(reason.clone()))
    }

    /// The body as untyped JSON, for code that works on any payload (idempotency keys,
    /// logging).
    pub fn json(&self) -> Result<serde_json::Value, DecodeError> {
        self.decode()
    }

    /// The body as any `T`: a bare domain type, or `EventEnvelope<T>` for the envelope
    /// without checks on its type and version.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_str(self.body()?)
            .map_err(|error| self.error(DecodeReason::from_json(&error)))
    }

    /// The body as an event envelope around `T`, telling a body that is no envelope at all
    /// ([`DecodeReason::WrongEnvelope`]) from one with a bad field. Does not check the
    /// event type or version; use [`event`](Self::event) for that.
    pub fn envelope<T: DeserializeOwned>(&self) -> Result<EventEnvelope<T>, DecodeError> {
        EventEnvelope::from_json(self.body()?).map_err(|reason| self.error(reason))
    }

    /// The body as an envelope of the versioned event `T`: checks `eventType` and upcasts
    /// older versions to the current struct.
    pub fn event<T: VersionedEvent>(&self) -> Result<EventEnvelope<T>, DecodeError> {
        decode_event(self.body()?).map_err(|reason| self.error(reason))
    }

    /// Just the domain event `T` (current version), without its metadata.
    pub fn data<T: VersionedEvent>(&self) -> Result<T, DecodeError> {
        self.event().map(EventEnvelope::into_data)
    }

    /// An error about this record.
    pub fn error(&self, reason: DecodeReason) -> DecodeError {
        DecodeError::new(self.id.clone(), reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::versioned::tests::CustomerRegistered;

    fn envelope_body() -> String {
        r#"{"eventId":"e-1","eventType":"CustomerRegistered","eventVersion":1,"source":"customers",
            "time":"2024-05-01T12:00:00Z","correlationId":"e-1","causationId":"e-1",
            "data":{"customerId":"c-1","name":"Ada Lovelace"}}"#
            .to_string()
    }

    #[test]
    fn one_body_many_views() {
        let record = EventRecord::new("m-1", Source::Sqs, envelope_body());
        assert_eq!(record.json().unwrap()["eventId"], "e-1");
        assert_eq!(
            record.envelope::<serde_json::Value>().unwrap().data["name"],
            "Ada Lovelace"
        );
        assert_eq!(
            record.event::<CustomerRegistered>().unwrap().event_version,
            2
        );
        assert_eq!(
            record.data::<CustomerRegistered>().unwrap().last_name,
            "Lovelace"
        );
    }

    #[test]
    fn a_failed_record_reports_its_reason_on_every_view() {
        let reason = DecodeReason::BodyTooLarge { size: 10, limit: 5 };
        let record = EventRecord::failed("m-2", Source::Sqs, reason.clone());
        let expected = DecodeError::new("m-2", reason);
        assert_eq!(record.body().unwrap_err(), expected);
        assert_eq!(record.json().unwrap_err(), expected);
        assert_eq!(record.data::<CustomerRegistered>().unwrap_err(), expected);
    }

    #[test]
    fn metadata_accessors() {
        let mut attributes = HashMap::new();
        attributes.insert("tenant".to_string(), MessageAttribute::string("acme"));
        let record = EventRecord::new("m-3", Source::SnsViaSqs { raw: false }, "{}")
            .with_attributes(attributes)
            .with_message_group_id(Some("g-1".into()))
            .with_receive_count(Some(3));
        assert_eq!(record.id(), "m-3");
        assert_eq!(record.source(), Source::SnsViaSqs { raw: false });
        assert_eq!(record.attribute("tenant"), Some("acme"));
        assert_eq!(record.attribute("missing"), None);
        assert_eq!(record.message_group_id(), Some("g-1"));
        assert_eq!(record.receive_count(), Some(3));
        assert_eq!(record.source().to_string(), "SNS via SQS");
    }
}
