//! Turning the Lambda events of SQS, SNS and EventBridge into [`EventRecord`]s.
//!
//! The AWS payloads are `aws_lambda_events`' types; this module only decides what the
//! record's id, body and metadata are, and unwraps one level of nesting inside an SQS body
//! (an SNS notification or an EventBridge event delivered to a queue). Nesting is
//! recognised by the keys only those wrappers have: `Type` and `TopicArn` for SNS,
//! `detail-type` for EventBridge; our envelopes have neither.

#[cfg(feature = "dynamodb")]
mod dynamodb;
mod eventbridge;
mod sns;
mod sqs;

#[cfg(feature = "dynamodb")]
pub use dynamodb::EVENT_NAME_ATTRIBUTE;

use std::collections::HashMap;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;

use super::error::DecodeReason;
use super::record::{EventRecord, MessageAttribute};
use super::Carrier;

/// How records are built from a Lambda event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Bodies larger than this (in bytes, measured on what the carrier delivered) are not
    /// parsed; their records fail with [`DecodeReason::BodyTooLarge`]. Unset (the default),
    /// each carrier's own limit ([`Carrier::max_bytes`]): a message its carrier delivered is
    /// never refused for its size. DynamoDB stream images have no default cap: DynamoDB
    /// bounds the item already, and its JSON, quotes escaped, is larger than the item.
    pub max_body_bytes: Option<usize>,
    /// The queue is subscribed to SNS with raw message delivery: plain SQS bodies are
    /// reported as [`Source::SnsViaSqs { raw: true }`](super::Source::SnsViaSqs) rather than
    /// [`Source::Sqs`](super::Source::Sqs). Raw delivery leaves no trace on the wire, so
    /// only the caller can say so; decoding is the same either way.
    pub raw_sns_delivery: bool,
}

impl DecodeOptions {
    /// Sets [`max_body_bytes`](Self::max_body_bytes), for every carrier.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = Some(max_body_bytes);
        self
    }

    /// Sets [`raw_sns_delivery`](Self::raw_sns_delivery).
    pub fn with_raw_sns_delivery(mut self, raw_sns_delivery: bool) -> Self {
        self.raw_sns_delivery = raw_sns_delivery;
        self
    }

    /// The cap on a body `carrier` delivered (`None`: a stream image): the one set, or the
    /// carrier's limit.
    fn body_limit(&self, carrier: Option<Carrier>) -> Option<usize> {
        self.max_body_bytes.or(carrier.map(Carrier::max_bytes))
    }

    fn check_size(&self, body: &str, carrier: Option<Carrier>) -> Result<(), DecodeReason> {
        match self.body_limit(carrier) {
            Some(limit) if body.len() > limit => Err(DecodeReason::BodyTooLarge {
                size: body.len(),
                limit,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) use sqs::record_from_sqs_message;

const SNS_MESSAGE: &str = "an SNS message";
const EVENTBRIDGE_EVENT: &str = "an EventBridge event";

/// A wrapper recognised inside a body.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Wrapper {
    /// An SNS message of this `Type` (`Notification`, `SubscriptionConfirmation`, …).
    SnsMessage {
        kind: String,
    },
    EventBridgeEvent,
}

impl Wrapper {
    fn name(&self) -> &'static str {
        match self {
            Self::SnsMessage { .. } => SNS_MESSAGE,
            Self::EventBridgeEvent => EVENTBRIDGE_EVENT,
        }
    }
}

/// A body parsed once: its JSON (or why it is not JSON), which the record keeps.
fn parse(body: &str) -> Result<serde_json::Value, DecodeReason> {
    super::record::parse_json(body)
}

/// Which wrapper, if any, a parsed body is: an object with `Type` and `TopicArn` (SNS) or
/// with `detail-type` (EventBridge). Anything else (plain text, invalid JSON, arrays, our
/// envelopes) is no wrapper: it is left for the handler's decode to judge.
fn wrapper_of(json: &Result<serde_json::Value, DecodeReason>) -> Option<Wrapper> {
    let object = json.as_ref().ok()?.as_object()?;
    let present = |key| object.get(key).is_some_and(|value| !value.is_null());
    match (
        object.get("Type"),
        present("TopicArn"),
        present("detail-type"),
    ) {
        (Some(kind), true, _) if !kind.is_null() => Some(Wrapper::SnsMessage {
            kind: match kind {
                serde_json::Value::String(kind) => kind.clone(),
                other => other.to_string(),
            },
        }),
        (_, _, true) => Some(Wrapper::EventBridgeEvent),
        _ => None,
    }
}

#[cfg(test)]
fn detect_wrapper(body: &str) -> Option<Wrapper> {
    wrapper_of(&parse(body))
}

/// One level of nesting is unwrapped; a wrapper inside the unwrapped body is refused rather
/// than handed to the handler as if it were the event.
fn refuse_nested(
    inner: &Result<serde_json::Value, DecodeReason>,
    outer: &str,
) -> Result<(), DecodeReason> {
    match wrapper_of(inner) {
        Some(wrapper) => Err(DecodeReason::wrong_envelope(format!(
            "{} inside {outer}: only one level of nesting is unwrapped",
            wrapper.name(),
        ))),
        None => Ok(()),
    }
}

/// A Lambda event that carries records: SQS, SNS and EventBridge events, and
/// [`LambdaPayload`](crate::runtime::LambdaPayload), which is any of them.
pub trait CarriesRecords {
    /// Its records, in order, each with its carrier unwrapped and its body parsed once.
    fn records(&self, options: &DecodeOptions) -> Vec<EventRecord>;
}

impl CarriesRecords for SqsEvent {
    fn records(&self, options: &DecodeOptions) -> Vec<EventRecord> {
        sqs::records_from_sqs(self, options)
    }
}

impl CarriesRecords for SnsEvent {
    fn records(&self, options: &DecodeOptions) -> Vec<EventRecord> {
        sns::records_from_sns(self, options)
    }
}

#[cfg(feature = "dynamodb")]
impl CarriesRecords for aws_lambda_events::dynamodb::Event {
    fn records(&self, options: &DecodeOptions) -> Vec<EventRecord> {
        dynamodb::records_from_stream(self, options)
    }
}

impl CarriesRecords for EventBridgeEvent {
    fn records(&self, options: &DecodeOptions) -> Vec<EventRecord> {
        vec![eventbridge::record_from_eventbridge(self, options)]
    }
}

/// The records of a Lambda event (an `SqsEvent`, `SnsEvent` or `EventBridgeEvent` of
/// `aws_lambda_events`, or a [`LambdaPayload`](crate::runtime::LambdaPayload)), in order,
/// one per message: the one way to get records. SNS notifications and EventBridge events
/// inside SQS bodies are unwrapped; a record that cannot be unwrapped still comes out, and
/// fails alone when decoded.
pub fn records_from<E: CarriesRecords + ?Sized>(
    event: &E,
    options: &DecodeOptions,
) -> Vec<EventRecord> {
    event.records(options)
}

/// SNS message attributes (`{"Type": …, "Value": …}`, binary values base64-encoded) as
/// record attributes.
fn sns_attributes(
    attributes: &HashMap<String, aws_lambda_events::sns::MessageAttribute>,
) -> HashMap<String, MessageAttribute> {
    attributes
        .iter()
        .map(|(name, attribute)| {
            let mut converted = MessageAttribute {
                data_type: attribute.data_type.clone(),
                string_value: Some(attribute.value.clone()),
                binary_value: None,
            };
            if attribute.data_type.starts_with("Binary") {
                // A value that is not valid base64 stays as text rather than failing the
                // record: attributes are metadata, the body is what matters.
                let decoded = serde_json::from_value::<Base64Data>(serde_json::Value::String(
                    attribute.value.clone(),
                ));
                if let Ok(bytes) = decoded {
                    converted.string_value = None;
                    converted.binary_value = Some(bytes.0);
                }
            }
            (name.clone(), converted)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_wrappers_by_their_keys() {
        assert_eq!(
            detect_wrapper(r#"{"Type":"Notification","TopicArn":"arn","Message":"x"}"#),
            Some(Wrapper::SnsMessage {
                kind: "Notification".into()
            })
        );
        assert_eq!(
            detect_wrapper(r#" {"detail-type":"X","source":"s","detail":{}}"#),
            Some(Wrapper::EventBridgeEvent)
        );
        for not_a_wrapper in [
            r#"{"eventId":"e","eventType":"T","source":"s","data":{}}"#,
            r#"{"Type":"Notification"}"#,
            "plain text",
            "[1,2]",
            r#"{"truncated": "#,
            "",
        ] {
            assert_eq!(detect_wrapper(not_a_wrapper), None, "{not_a_wrapper}");
        }
    }

    #[test]
    fn body_limit_is_inclusive() {
        let options = DecodeOptions::default().with_max_body_bytes(3);
        for carrier in [Some(Carrier::Sqs), Some(Carrier::Sns), None] {
            assert!(options.check_size("abc", carrier).is_ok());
            assert_eq!(
                options.check_size("abcd", carrier),
                Err(DecodeReason::BodyTooLarge { size: 4, limit: 3 })
            );
        }
    }

    /// By default a body is capped at what its carrier carries, and a stream image not at all.
    #[test]
    fn the_default_cap_is_the_carriers_limit() {
        let options = DecodeOptions::default();
        assert_eq!(options.max_body_bytes, None);
        for (carrier, limit) in [
            (Carrier::Sqs, 1_048_576),
            (Carrier::Sns, 262_144),
            (Carrier::EventBridge, 1_048_576),
        ] {
            assert!(options
                .check_size(&"x".repeat(limit), Some(carrier))
                .is_ok());
            assert_eq!(
                options.check_size(&"x".repeat(limit + 1), Some(carrier)),
                Err(DecodeReason::BodyTooLarge {
                    size: limit + 1,
                    limit
                }),
                "{carrier}"
            );
        }
        assert!(options.check_size(&"x".repeat(2_000_000), None).is_ok());
    }
}
