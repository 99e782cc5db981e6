//! Decoding a record's parsed JSON into a versioned event: the envelope checked, the type
//! matched, old versions upcast. The one place that knows both the envelope and the
//! versioning rules.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

use super::envelope::EventEnvelope;
use super::error::DecodeReason;
use super::versioned::{UpcastError, VersionedEvent};

/// Decodes an envelope of event type `T` from JSON; see [`decode_event_value`].
#[cfg(test)]
pub(crate) fn decode_event<T: VersionedEvent>(
    json: &str,
) -> Result<EventEnvelope<T>, DecodeReason> {
    let value: Value =
        serde_json::from_str(json).map_err(|error| DecodeReason::from_json(&error))?;
    decode_event_value(&value)
}

/// Decodes an envelope of event type `T` from parsed JSON: checks `eventType` and that
/// `eventId` is not blank, accepts every version `T` knows and yields the current struct
/// (with `eventVersion` set to the current version, since that is what `data` now is).
/// The current version's data is deserialized straight from `value`, without a copy.
pub(crate) fn decode_event_value<T: VersionedEvent>(
    value: &Value,
) -> Result<EventEnvelope<T>, DecodeReason> {
    let head = EventEnvelope::<IgnoredAny>::from_value(value)?;
    if head.event_type != T::EVENT_TYPE {
        return Err(DecodeReason::UnknownEventType {
            expected: T::EVENT_TYPE.to_string(),
            found: head.event_type,
        });
    }
    // Every event with a blank id would share one idempotency key.
    if head.event_id.trim().is_empty() {
        return Err(DecodeReason::InvalidData {
            detail: "`eventId` is empty: every event needs an id of its own".into(),
        });
    }
    let version = head.event_version;
    let unknown_version = || DecodeReason::UnknownVersion {
        event_type: T::EVENT_TYPE.to_string(),
        version,
        current: T::CURRENT_VERSION,
    };
    let data = &value["data"];
    let data = match version.cmp(&T::CURRENT_VERSION) {
        std::cmp::Ordering::Equal => decode_data(data)?,
        std::cmp::Ordering::Greater => return Err(unknown_version()),
        std::cmp::Ordering::Less => {
            T::upcast(version, data.clone()).map_err(|error| match error {
                UpcastError::UnknownVersion => unknown_version(),
                UpcastError::Data(error) => DecodeReason::from_json(&error),
                UpcastError::Invalid(reason) => reason,
            })?
        }
    };
    let mut envelope = head.map_data(|_| data);
    envelope.event_version = T::CURRENT_VERSION;
    Ok(envelope)
}

/// Deserializes an envelope's `data` into `D`; a failure names the JSON path that failed,
/// from the envelope's root: `/data/items/0/quantity: invalid type: string "two", expected
/// u32`, or [`DecodeReason::MissingField`] with the field's path (`/data/items/0/sku`).
///
/// Upcasts read the old version's struct with it too (through
/// [`UpcastError::Invalid`]), so a bad old event is named as precisely as a current one.
pub fn decode_data<D: DeserializeOwned>(data: &Value) -> Result<D, DecodeReason> {
    serde_path_to_error::deserialize(data).map_err(|error| {
        let mut pointer = String::from("/data");
        for segment in error.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => {
                    // JSON Pointer escapes (RFC 6901), so a key with `/` stays one segment.
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Enum { .. } | Segment::Unknown => {}
            }
        }
        match DecodeReason::from_json(error.inner()) {
            DecodeReason::MissingField { field } => DecodeReason::MissingField {
                field: format!("{pointer}/{field}"),
            },
            DecodeReason::InvalidData { detail } => DecodeReason::InvalidData {
                detail: format!("{pointer}: {detail}"),
            },
            other => other,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::versioned::tests::CustomerRegistered;

    fn envelope_json(event_type: &str, version: u32, data: Value) -> String {
        let envelope = EventEnvelope::from_parts(event_type, version, "customers", data);
        serde_json::to_string(&envelope).unwrap()
    }

    #[test]
    fn current_version_decodes_directly() {
        let data =
            serde_json::json!({"customerId": "c-1", "firstName": "Ada", "lastName": "Lovelace"});
        let event =
            decode_event::<CustomerRegistered>(&envelope_json("CustomerRegistered", 2, data))
                .unwrap();
        assert_eq!(event.data.first_name, "Ada");
        assert_eq!(event.event_version, 2);
    }

    #[test]
    fn old_version_upcasts_to_current() {
        let data = serde_json::json!({"customerId": "c-1", "name": "Ada Lovelace"});
        let event =
            decode_event::<CustomerRegistered>(&envelope_json("CustomerRegistered", 1, data))
                .unwrap();
        assert_eq!(
            event.data,
            CustomerRegistered {
                customer_id: "c-1".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into()
            }
        );
        assert_eq!(event.event_version, 2);
    }

    #[test]
    fn unknown_versions_and_types_are_typed_errors() {
        let data = serde_json::json!({"customerId": "c-1", "name": "Ada"});
        for version in [0, 3, u32::MAX] {
            assert_eq!(
                decode_event::<CustomerRegistered>(&envelope_json(
                    "CustomerRegistered",
                    version,
                    data.clone()
                )),
                Err(DecodeReason::UnknownVersion {
                    event_type: "CustomerRegistered".into(),
                    version,
                    current: 2
                }),
            );
        }
        assert_eq!(
            decode_event::<CustomerRegistered>(&envelope_json("OrderPlaced", 2, data)),
            Err(DecodeReason::UnknownEventType {
                expected: "CustomerRegistered".into(),
                found: "OrderPlaced".into()
            }),
        );
    }

    #[test]
    fn bad_data_names_its_json_path() {
        let data = serde_json::json!({"customerId": "c-1", "firstName": 42, "lastName": "L"});
        let reason =
            decode_event::<CustomerRegistered>(&envelope_json("CustomerRegistered", 2, data))
                .unwrap_err();
        assert_eq!(
            reason,
            DecodeReason::InvalidData {
                detail: "/data/firstName: invalid type: integer `42`, expected a string".into()
            }
        );

        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Line {
            sku: String,
            quantity: u32,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Order {
            items: Vec<Line>,
        }
        let order = serde_json::json!({"items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": "two"}]});
        assert_eq!(
            decode_data::<Order>(&order).unwrap_err(),
            DecodeReason::InvalidData {
                detail: "/data/items/1/quantity: invalid type: string \"two\", expected u32".into()
            }
        );
        let order = serde_json::json!({"items": [{"quantity": 1}]});
        assert_eq!(
            decode_data::<Order>(&order).unwrap_err(),
            DecodeReason::MissingField {
                field: "/data/items/0/sku".into()
            }
        );
    }

    #[test]
    fn bad_old_data_names_the_missing_field() {
        let data = serde_json::json!({"customerId": "c-1"});
        assert_eq!(
            decode_event::<CustomerRegistered>(&envelope_json("CustomerRegistered", 1, data)),
            Err(DecodeReason::MissingField {
                field: "name".into()
            }),
        );
    }
}
