//! One received message, whatever carried it: the source-agnostic record a handler decodes.
//!
//! The carriers (SQS, SNS, EventBridge, and SNS or EventBridge inside an SQS body) differ
//! in shape but a handler wants the same things from each: the id to report a failure
//! with, the decoded body, and a little delivery metadata. Unwrapping happens once, when
//! the record is built; a record whose wrapper was bad keeps that error and returns it from
//! every decode call, so the rest of its batch is unaffected.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::decode::decode_event_value;
use super::envelope::EventEnvelope;
use super::error::{DecodeError, DecodeReason};
use super::versioned::VersionedEvent;

/// The message attribute that carries the envelope's `eventType` (set by every publisher of
/// [`OutgoingEvent`](super::OutgoingEvent)), which subscription filter policies route by.
pub const EVENT_TYPE_ATTRIBUTE: &str = "eventType";

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
    /// A change from a DynamoDB stream (the body is the item's new image).
    DynamoDbStream,
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
            Self::DynamoDbStream => "DynamoDB stream",
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

/// One received message with its carrier unwrapped, its body parsed once.
///
/// Build records from a Lambda event with [`records_from`](super::records_from); a record
/// whose carrier could not be unwrapped keeps that error and returns it from every decode.
#[derive(Clone, Debug)]
pub struct EventRecord {
    id: String,
    source: Source,
    attributes: HashMap<String, MessageAttribute>,
    message_group_id: Option<String>,
    receive_count: Option<u32>,
    destination: Option<String>,
    body: Result<String, DecodeReason>,
    // The body's JSON, parsed at most once (by the carrier's unwrapping, or on first use) and
    // shared by the log span, the idempotency key and the typed decode.
    json: OnceLock<Result<Value, DecodeReason>>,
}

/// Two records are equal when they carry the same message (the parsed JSON follows).
impl PartialEq for EventRecord {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.source == other.source
            && self.attributes == other.attributes
            && self.message_group_id == other.message_group_id
            && self.receive_count == other.receive_count
            && self.body == other.body
    }
}

impl Eq for EventRecord {}

impl EventRecord {
    /// A record with `body` as its decoded (innermost) body and no metadata: what a unit
    /// test builds.
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
            destination: None,
            body,
            json: OnceLock::new(),
        }
    }

    /// A record whose body the carrier's unwrapping has already parsed.
    pub(crate) fn parsed(
        id: impl Into<String>,
        source: Source,
        body: String,
        json: Result<Value, DecodeReason>,
    ) -> Self {
        let record = Self::with_body(id, source, Ok(body));
        // Freshly made, so the cell is empty and the value is kept.
        let _ = record.json.set(json);
        record
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

    /// Sets the name of the queue or topic the record was delivered from.
    pub fn with_destination(mut self, destination: Option<String>) -> Self {
        self.destination = destination;
        self
    }

    /// The name of the queue (SQS) or topic (SNS) the record was delivered from, when its
    /// event says (the last part of `eventSourceARN` or `TopicArn`); its spans' destination.
    pub fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
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
            .map_err(|reason| self.decode_error(reason.clone()))
    }

    /// The body as JSON, parsed once however often it is asked for: what idempotency keys
    /// and key paths are evaluated on.
    ///
    /// A body whose `eventType` differs from the record's `eventType` message attribute is
    /// refused ([`DecodeReason::RoutedAsAnotherType`]): SNS filter policies route by the
    /// attribute and never read the body, so a publisher could otherwise pass, say, a
    /// `PaymentFailed` through a subscription that admits only `OrderPlaced`.
    pub fn json(&self) -> Result<&Value, DecodeError> {
        let parsed = self.json.get_or_init(|| match &self.body {
            Ok(body) => parse_json(body),
            Err(reason) => Err(reason.clone()),
        });
        let json = parsed
            .as_ref()
            .map_err(|reason| self.decode_error(reason.clone()))?;
        if let (Some(attribute), Some(Value::String(declared))) =
            (self.attribute(EVENT_TYPE_ATTRIBUTE), json.get("eventType"))
        {
            if attribute != declared {
                return Err(self.decode_error(DecodeReason::RoutedAsAnotherType {
                    attribute: attribute.to_string(),
                    body: declared.clone(),
                }));
            }
        }
        Ok(json)
    }

    /// The body as any `T` (a bare domain type), deserialized from the parsed JSON.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        T::deserialize(self.json()?)
            .map_err(|error| self.decode_error(DecodeReason::from_json(&error)))
    }

    /// The body as an envelope of the versioned event `T`: a body that is no envelope at all
    /// is told from one with a bad field, `eventType` is checked, a blank `eventId` refused,
    /// and older versions upcast to the current struct.
    pub fn event<T: VersionedEvent>(&self) -> Result<EventEnvelope<T>, DecodeError> {
        decode_event_value(self.json()?).map_err(|reason| self.decode_error(reason))
    }

    /// The envelope's `eventType`, read from the parsed JSON without decoding the rest: the
    /// one dispatch point of a handler that consumes several event types.
    pub fn event_type(&self) -> Result<&str, DecodeError> {
        let json = self.json()?;
        match json.get("eventType") {
            Some(Value::String(event_type)) => Ok(event_type),
            Some(other) => Err(self.decode_error(DecodeReason::InvalidData {
                detail: format!("`eventType` is {other}, not a string"),
            })),
            None if json.is_object() => Err(self.decode_error(DecodeReason::MissingField {
                field: "eventType".into(),
            })),
            None => Err(self.decode_error(DecodeReason::wrong_envelope(
                "expected an event envelope (a JSON object), found another JSON value",
            ))),
        }
    }

    /// Builds the error that names this record and says what was wrong with it.
    pub fn decode_error(&self, reason: DecodeReason) -> DecodeError {
        DecodeError::new(self.id.clone(), reason)
    }
}

/// Parses a body. Valid JSON nested deeper than the parser's recursion limit (128 levels)
/// cannot be held as a value; when it is no object, it is no envelope either, and is
/// reported as that rather than as invalid (it is skipped without recursion to tell).
pub(crate) fn parse_json(text: &str) -> Result<Value, DecodeReason> {
    serde_json::from_str(text).map_err(|error| {
        let too_deep = error.to_string().starts_with("recursion limit exceeded");
        if too_deep
            && !text.trim_start().starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
        {
            DecodeReason::wrong_envelope(
                "expected an event envelope (a JSON object), found another JSON value",
            )
        } else {
            DecodeReason::from_json(&error)
        }
    })
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
            record
                .decode::<EventEnvelope<serde_json::Value>>()
                .unwrap()
                .data["name"],
            "Ada Lovelace"
        );
        assert_eq!(
            record.event::<CustomerRegistered>().unwrap().event_version,
            2
        );
        assert_eq!(
            record.event::<CustomerRegistered>().unwrap().data.last_name,
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
        assert_eq!(record.event::<CustomerRegistered>().unwrap_err(), expected);
    }

    #[test]
    fn only_attributes_with_a_string_value_read_as_strings() {
        let mut attributes = HashMap::new();
        attributes.insert("tenant".to_string(), MessageAttribute::string("acme"));
        let binary = MessageAttribute {
            data_type: "Binary".into(),
            string_value: None,
            binary_value: Some(vec![1, 2]),
        };
        attributes.insert("blob".to_string(), binary.clone());
        let record = EventRecord::new("m-3", Source::Sqs, "{}").with_attributes(attributes);
        assert_eq!(record.attribute("tenant"), Some("acme"));
        assert_eq!(record.attribute("blob"), None);
        assert_eq!(record.attributes().get("blob"), Some(&binary));
        assert_eq!(record.attribute("missing"), None);
    }

    #[test]
    fn each_source_names_itself_in_words() {
        let names: Vec<String> = [
            Source::Sqs,
            Source::Sns,
            Source::EventBridge,
            Source::SnsViaSqs { raw: false },
            Source::SnsViaSqs { raw: true },
            Source::EventBridgeViaSqs,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "SQS",
                "SNS",
                "EventBridge",
                "SNS via SQS",
                "SNS via SQS (raw delivery)",
                "EventBridge via SQS"
            ]
        );
    }

    #[test]
    fn a_body_routed_as_another_event_type_is_refused_by_every_decode() {
        let routed = |attribute: &str| {
            EventRecord::new("m-9", Source::SnsViaSqs { raw: true }, envelope_body())
                .with_attributes(HashMap::from([(
                    EVENT_TYPE_ATTRIBUTE.to_string(),
                    MessageAttribute::string(attribute),
                )]))
        };
        // A filter admitting OrderPlaced let it through; the body is a CustomerRegistered.
        let forged = routed("OrderPlaced");
        let expected = DecodeReason::RoutedAsAnotherType {
            attribute: "OrderPlaced".into(),
            body: "CustomerRegistered".into(),
        };
        assert_eq!(forged.json().unwrap_err().reason, expected);
        assert_eq!(forged.event_type().unwrap_err().reason, expected);
        assert_eq!(
            forged.event::<CustomerRegistered>().unwrap_err().reason,
            expected
        );
        assert_eq!(
            forged.decode::<Value>().unwrap_err().to_string(),
            "record m-9: routed as `OrderPlaced` (message attribute eventType) but the body is a `CustomerRegistered`"
        );
        // The attribute and the body agree, or there is no attribute (EventBridge): decoded.
        assert!(routed("CustomerRegistered")
            .event::<CustomerRegistered>()
            .is_ok());
        let unrouted = EventRecord::new("m-10", Source::EventBridgeViaSqs, envelope_body());
        assert!(unrouted.event::<CustomerRegistered>().is_ok());
    }

    #[test]
    fn event_type_says_what_is_wrong_with_the_envelope() {
        let read = |body: &str| EventRecord::new("m-4", Source::Sqs, body.to_string());
        assert_eq!(
            read(r#"{"eventType":"OrderPlaced"}"#).event_type(),
            Ok("OrderPlaced")
        );
        let reason = |body: &str| read(body).event_type().unwrap_err().reason;
        assert_eq!(
            reason(r#"{"eventType":7}"#),
            DecodeReason::InvalidData {
                detail: "`eventType` is 7, not a string".into()
            }
        );
        assert_eq!(
            reason("{}"),
            DecodeReason::MissingField {
                field: "eventType".into()
            }
        );
        assert_eq!(
            reason("[1]"),
            DecodeReason::wrong_envelope(
                "expected an event envelope (a JSON object), found another JSON value"
            )
        );
        assert_eq!(read("{}").event_type().unwrap_err().record_id, "m-4");
    }
}
