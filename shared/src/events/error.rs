//! Why one record could not be decoded.
//!
//! A bad record must never fail its batch: every decoding step returns a [`DecodeError`]
//! that names the record (so a batch processor can report exactly that id as failed) and a
//! [`DecodeReason`] a handler can match on (retrying invalid JSON is pointless, an unknown
//! version may need a deploy).

use serde_json::error::Category;

/// A record that could not be decoded: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record {record_id}: {reason}")]
pub struct DecodeError {
    /// The record's id (the SQS messageId for anything that came through SQS), as reported
    /// in a partial batch response.
    pub record_id: String,
    /// What was wrong with it.
    pub reason: DecodeReason,
}

impl DecodeError {
    /// An error for record `record_id`.
    pub fn new(record_id: impl Into<String>, reason: DecodeReason) -> Self {
        Self {
            record_id: record_id.into(),
            reason,
        }
    }
}

/// What was wrong with a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeReason {
    /// The body is not JSON (or stops in the middle of a value).
    #[error("invalid JSON: {detail}")]
    InvalidJson {
        /// The parser's message, with line and column.
        detail: String,
    },
    /// A required field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's name as it appears on the wire.
        field: String,
    },
    /// The JSON is well formed but does not fit the type: a wrong type, an unknown enum
    /// variant, a value out of range.
    #[error("invalid data: {detail}")]
    InvalidData {
        /// The deserializer's message.
        detail: String,
    },
    /// The envelope's `eventType` is not the one the handler asked for.
    #[error("unknown event type `{found}` (expected `{expected}`)")]
    UnknownEventType {
        /// The type the handler decodes.
        expected: String,
        /// The type the envelope declares.
        found: String,
    },
    /// The envelope's `eventVersion` is neither the current version nor one the event type
    /// knows how to upcast.
    #[error("unknown version {version} of `{event_type}` (current is {current})")]
    UnknownVersion {
        /// The event type.
        event_type: String,
        /// The version the envelope declares.
        version: u32,
        /// The version this code decodes to.
        current: u32,
    },
    /// The body is not the shape its carrier promises: an SNS message that is not a
    /// notification, a broken SNS or EventBridge wrapper, nesting deeper than one level, or
    /// a body that is not an event envelope at all.
    #[error("wrong envelope: {detail}")]
    WrongEnvelope {
        /// What was expected and what was found.
        detail: String,
    },
    /// The body declares another `eventType` than the message attribute it was routed by
    /// (SNS filter policies read the attribute only): a forgery or a broken publisher, never
    /// delivered to the handler.
    #[error("routed as `{attribute}` (message attribute eventType) but the body is a `{body}`")]
    RoutedAsAnotherType {
        /// The `eventType` message attribute.
        attribute: String,
        /// The body's `eventType`.
        body: String,
    },
    /// The body is larger than the configured limit; it was not parsed.
    #[error("body too large: {size} bytes (limit {limit})")]
    BodyTooLarge {
        /// The body's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
}

impl DecodeReason {
    /// Classifies a `serde_json` error: syntax and truncation are invalid JSON, a missing
    /// field is named, anything else is invalid data.
    pub fn from_json(error: &serde_json::Error) -> Self {
        match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => Self::InvalidJson {
                detail: error.to_string(),
            },
            Category::Data => {
                let detail = error.to_string();
                match missing_field_name(&detail) {
                    Some(field) => Self::MissingField { field },
                    None => Self::InvalidData { detail },
                }
            }
        }
    }

    /// A [`DecodeReason::WrongEnvelope`] with `detail`.
    pub(crate) fn wrong_envelope(detail: impl Into<String>) -> Self {
        Self::WrongEnvelope {
            detail: detail.into(),
        }
    }
}

/// serde reports a missing field only as text: "missing field `name`" (serde's
/// `Error::missing_field`, stable for years), optionally followed by the position.
fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Customer {
        name: String,
        age: u8,
    }

    fn reason(json: &str) -> DecodeReason {
        DecodeReason::from_json(&serde_json::from_str::<Customer>(json).unwrap_err())
    }

    #[test]
    fn classifies_serde_errors() {
        assert!(matches!(
            reason(r#"{"name": "Ada""#),
            DecodeReason::InvalidJson { .. }
        ));
        assert!(matches!(
            reason("not json"),
            DecodeReason::InvalidJson { .. }
        ));
        assert_eq!(
            reason(r#"{"name": "Ada"}"#),
            DecodeReason::MissingField {
                field: "age".into()
            }
        );
        assert!(matches!(
            reason(r#"{"name": "Ada", "age": "old"}"#),
            DecodeReason::InvalidData { .. }
        ));
        assert!(matches!(
            reason(r#"{"name": "Ada", "age": 300}"#),
            DecodeReason::InvalidData { .. }
        ));
    }

    #[test]
    fn message_names_record_and_reason() {
        let error = DecodeError::new(
            "msg-1",
            DecodeReason::MissingField {
                field: "age".into(),
            },
        );
        assert_eq!(error.to_string(), "record msg-1: missing field `age`");
    }
}
