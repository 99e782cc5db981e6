//! Versioned events: an event type names itself, declares its current version, and says how
//! each older version becomes the current struct.
//!
//! Producers and consumers deploy independently, so a consumer meets old versions for as
//! long as any producer (or any message still sitting in a queue) emits them. Handlers only
//! ever see the current struct; the knowledge of old shapes lives in one `upcast` function
//! per event type, typed through one struct per old version.
//!
//! ```
//! use eventkit::events::{UpcastError, VersionedEvent};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct CustomerRegisteredV1 { name: String }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct CustomerRegistered { first_name: String, last_name: String }
//!
//! impl From<CustomerRegisteredV1> for CustomerRegistered {
//!     fn from(v1: CustomerRegisteredV1) -> Self {
//!         let (first, last) = v1.name.split_once(' ').unwrap_or((v1.name.as_str(), ""));
//!         Self { first_name: first.into(), last_name: last.into() }
//!     }
//! }
//!
//! impl VersionedEvent for CustomerRegistered {
//!     const EVENT_TYPE: &'static str = "CustomerRegistered";
//!     const CURRENT_VERSION: u32 = 2;
//!
//!     fn upcast(version: u32, data: serde_json::Value) -> Result<Self, UpcastError> {
//!         match version {
//!             1 => Ok(serde_json::from_value::<CustomerRegisteredV1>(data)?.into()),
//!             _ => Err(UpcastError::UnknownVersion),
//!         }
//!     }
//! }
//! ```

use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

use super::envelope::EventEnvelope;
use super::error::DecodeReason;

/// A domain event type with a name and a schema version.
pub trait VersionedEvent: DeserializeOwned {
    /// The `eventType` this struct is published and decoded as.
    const EVENT_TYPE: &'static str;
    /// The version this struct is; `data` at this version deserializes into it directly.
    const CURRENT_VERSION: u32;

    /// Turns `data` written at an older `version` into the current struct. Only called for
    /// versions below [`CURRENT_VERSION`](Self::CURRENT_VERSION); the default knows no
    /// older versions.
    fn upcast(version: u32, data: Value) -> Result<Self, UpcastError> {
        let _ = (version, data);
        Err(UpcastError::UnknownVersion)
    }
}

/// Why [`VersionedEvent::upcast`] could not produce the current struct.
#[derive(Debug, thiserror::Error)]
pub enum UpcastError {
    /// The event type has no upcast for this version.
    #[error("unknown version")]
    UnknownVersion,
    /// The data does not fit the old version's struct.
    #[error(transparent)]
    Data(#[from] serde_json::Error),
}

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
        std::cmp::Ordering::Equal => {
            T::deserialize(data).map_err(|error| DecodeReason::from_json(&error))?
        }
        std::cmp::Ordering::Greater => return Err(unknown_version()),
        std::cmp::Ordering::Less => {
            T::upcast(version, data.clone()).map_err(|error| match error {
                UpcastError::UnknownVersion => unknown_version(),
                UpcastError::Data(error) => DecodeReason::from_json(&error),
            })?
        }
    };
    let mut envelope = head.map_data(|_| data);
    envelope.event_version = T::CURRENT_VERSION;
    Ok(envelope)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// The issue's example: v1 had a single `name`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CustomerRegisteredV1 {
        pub customer_id: String,
        pub name: String,
    }

    /// v2 (current) splits it into `firstName` and `lastName`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CustomerRegistered {
        pub customer_id: String,
        pub first_name: String,
        pub last_name: String,
    }

    impl From<CustomerRegisteredV1> for CustomerRegistered {
        fn from(v1: CustomerRegisteredV1) -> Self {
            // "Ada King Lovelace" -> first "Ada", last "King Lovelace".
            let (first, last) = v1.name.split_once(' ').unwrap_or((v1.name.as_str(), ""));
            Self {
                customer_id: v1.customer_id.clone(),
                first_name: first.to_string(),
                last_name: last.to_string(),
            }
        }
    }

    impl VersionedEvent for CustomerRegistered {
        const EVENT_TYPE: &'static str = "CustomerRegistered";
        const CURRENT_VERSION: u32 = 2;

        fn upcast(version: u32, data: Value) -> Result<Self, UpcastError> {
            match version {
                1 => Ok(serde_json::from_value::<CustomerRegisteredV1>(data)?.into()),
                _ => Err(UpcastError::UnknownVersion),
            }
        }
    }

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
