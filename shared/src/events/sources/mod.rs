//! Turning the Lambda events of SQS, SNS and EventBridge into [`EventRecord`]s.
//!
//! The AWS payloads are `aws_lambda_events`' types; this module only decides what the
//! record's id, body and metadata are, and unwraps one level of nesting inside an SQS body
//! (an SNS notification or an EventBridge event delivered to a queue). Nesting is
//! recognised by the keys only those wrappers have: `Type` and `TopicArn` for SNS,
//! `detail-type` for EventBridge; our envelopes have neither.

mod eventbridge;
mod sns;
mod sqs;

use std::collections::HashMap;

use aws_lambda_events::encodings::Base64Data;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::error::DecodeReason;
use super::record::MessageAttribute;

pub use eventbridge::{record_from_eventbridge, record_from_eventbridge_with};
pub use sns::{records_from_sns, records_from_sns_with};
pub use sqs::{record_from_sqs_message, records_from_sqs, records_from_sqs_with};

/// SQS's historical maximum message size (256 KiB), the default body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// How records are built from a Lambda event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Bodies larger than this (in bytes, measured on what the carrier delivered) are not
    /// parsed; their records fail with [`DecodeReason::BodyTooLarge`].
    pub max_body_bytes: usize,
    /// The queue is subscribed to SNS with raw message delivery: plain SQS bodies are
    /// reported as [`Source::SnsViaSqs { raw: true }`](super::Source::SnsViaSqs) rather than
    /// [`Source::Sqs`](super::Source::Sqs). Raw delivery leaves no trace on the wire, so
    /// only the caller can say so; decoding is the same either way.
    pub raw_sns_delivery: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            raw_sns_delivery: false,
        }
    }
}

impl DecodeOptions {
    /// Sets [`max_body_bytes`](Self::max_body_bytes).
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Sets [`raw_sns_delivery`](Self::raw_sns_delivery).
    pub fn with_raw_sns_delivery(mut self, raw_sns_delivery: bool) -> Self {
        self.raw_sns_delivery = raw_sns_delivery;
        self
    }

    fn check_size(&self, body: &str) -> Result<(), DecodeReason> {
        if body.len() > self.max_body_bytes {
            return Err(DecodeReason::BodyTooLarge {
                size: body.len(),
                limit: self.max_body_bytes,
            });
        }
        Ok(())
    }
}

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

/// Only the keys that identify a wrapper; everything else is skipped unparsed.
#[derive(Deserialize)]
struct WrapperProbe {
    #[serde(rename = "Type")]
    sns_type: Option<serde_json::Value>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<IgnoredAny>,
    #[serde(rename = "detail-type")]
    detail_type: Option<IgnoredAny>,
}

/// Which wrapper, if any, `body` is. Anything that is not a JSON object (plain text,
/// invalid JSON, arrays) is no wrapper: it is left for the handler's decode to judge.
fn detect_wrapper(body: &str) -> Option<Wrapper> {
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let probe: WrapperProbe = serde_json::from_str(body).ok()?;
    match (probe.sns_type, probe.topic_arn, probe.detail_type) {
        (Some(kind), Some(_), _) => Some(Wrapper::SnsMessage {
            kind: match kind {
                serde_json::Value::String(kind) => kind,
                other => other.to_string(),
            },
        }),
        (_, _, Some(_)) => Some(Wrapper::EventBridgeEvent),
        _ => None,
    }
}

/// One level of nesting is unwrapped; a wrapper inside the unwrapped body is refused rather
/// than handed to the handler as if it were the event.
fn refuse_nested(inner: &str, outer: &str) -> Result<(), DecodeReason> {
    match detect_wrapper(inner) {
        Some(wrapper) => Err(DecodeReason::wrong_envelope(format!(
            "{} inside {outer}: only one level of nesting is unwrapped",
            wrapper.name(),
        ))),
        None => Ok(()),
    }
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
        assert!(options.check_size("abc").is_ok());
        assert_eq!(
            options.check_size("abcd"),
            Err(DecodeReason::BodyTooLarge { size: 4, limit: 3 })
        );
        assert_eq!(DecodeOptions::default().max_body_bytes, 262_144);
    }
}
