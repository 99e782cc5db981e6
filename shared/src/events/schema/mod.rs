//! Event contracts: a JSON Schema (draft-07) per event type and version, generated from the
//! Rust types (feature `schemas`), so producers and consumers in other languages and other
//! repositories can read the contract that today lives in a Rust struct.
//!
//! An event type opts in with [`EventContract`]: its current struct derives
//! `schemars::JsonSchema`, and it lists the data types of the older versions its
//! [`upcast`](super::VersionedEvent::upcast) still accepts. [`event_schemas`] then gives
//! one schema per accepted version, the envelope's fields included, with `eventType` and
//! `eventVersion` pinned. `cargo xtask schemas` writes them to `events/schemas/`; with the
//! `validate` feature, [`SchemaValidator`] checks events against them before they are sent.
//!
//! ```
//! use eventkit::events::schema::{event_schemas, EventContract, OlderVersion};
//! use eventkit::events::{decode_data, UpcastError, VersionedEvent};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct CustomerRegisteredV1 { name: String }
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! struct CustomerRegistered { first_name: String, last_name: String }
//!
//! impl VersionedEvent for CustomerRegistered {
//!     const EVENT_TYPE: &'static str = "CustomerRegistered";
//!     const CURRENT_VERSION: u32 = 2;
//!
//!     fn upcast(version: u32, data: serde_json::Value) -> Result<Self, UpcastError> {
//!         match version {
//!             1 => {
//!                 let v1: CustomerRegisteredV1 = decode_data(&data)?;
//!                 let (first, last) = v1.name.split_once(' ').unwrap_or((&v1.name, ""));
//!                 Ok(Self { first_name: first.into(), last_name: last.into() })
//!             }
//!             _ => Err(UpcastError::UnknownVersion),
//!         }
//!     }
//! }
//!
//! impl EventContract for CustomerRegistered {
//!     fn older_versions() -> Vec<OlderVersion> {
//!         vec![OlderVersion::of::<CustomerRegisteredV1>(1)]
//!     }
//! }
//!
//! let schemas = event_schemas::<CustomerRegistered>();
//! assert_eq!(schemas.iter().map(|s| s.version).collect::<Vec<_>>(), [1, 2]);
//! assert_eq!(schemas[1].schema["properties"]["eventType"]["enum"][0], "CustomerRegistered");
//! ```

#[cfg(feature = "validate")]
mod validate;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};

use super::envelope::EventEnvelope;
use super::versioned::VersionedEvent;

#[cfg(feature = "validate")]
pub use validate::{SchemaValidator, SchemaViolation};

/// The JSON Schema draft of every generated schema.
pub const SCHEMA_DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// A versioned event with a published contract: its current struct's schema comes from
/// `JsonSchema`, its older versions' from [`older_versions`](Self::older_versions).
pub trait EventContract: VersionedEvent + JsonSchema {
    /// The `data` types of the older versions this type still accepts (exactly the versions
    /// its [`upcast`](VersionedEvent::upcast) handles), oldest first. None by default.
    fn older_versions() -> Vec<OlderVersion> {
        Vec::new()
    }
}

/// An older version of an event type's `data`, as its own struct.
#[derive(Clone, Debug)]
pub struct OlderVersion {
    version: u32,
    envelope: Value,
}

impl OlderVersion {
    /// Version `version`, whose `data` is `D`.
    pub fn of<D: JsonSchema>(version: u32) -> Self {
        Self {
            version,
            envelope: envelope_schema_of::<D>(),
        }
    }
}

/// One event type at one version: the JSON Schema of its whole envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSchema {
    /// The `eventType`.
    pub event_type: &'static str,
    /// The `eventVersion`.
    pub version: u32,
    /// The schema (draft-07) of the envelope with this type and version, `data` included.
    pub schema: Value,
}

/// Every version `E` accepts, oldest first, the current one last.
pub fn event_schemas<E: EventContract>() -> Vec<EventSchema> {
    let mut versions: Vec<(u32, Value)> = E::older_versions()
        .into_iter()
        .map(|older| (older.version, older.envelope))
        .collect();
    versions.push((E::CURRENT_VERSION, envelope_schema_of::<E>()));
    versions.sort_by_key(|(version, _)| *version);
    versions
        .into_iter()
        .map(|(version, schema)| EventSchema {
            event_type: E::EVENT_TYPE,
            version,
            schema: pin(schema, E::EVENT_TYPE, version),
        })
        .collect()
}

fn envelope_schema_of<D: JsonSchema>() -> Value {
    SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<EventEnvelope<D>>()
        .to_value()
}

/// Names the schema after the event and pins `eventType` and `eventVersion` to it, so a
/// validator tells an `OrderPlaced` v1 from a v2 and from any other type.
fn pin(mut schema: Value, event_type: &str, version: u32) -> Value {
    if let Some(root) = schema.as_object_mut() {
        root.insert("title".into(), json!(format!("{event_type} v{version}")));
        root.insert(
            "description".into(),
            json!(format!(
                "The {event_type} event at version {version}, in the eventkit envelope \
                 (generated from the Rust types by `cargo xtask schemas`)."
            )),
        );
    }
    // `enum` rather than `const`: draft 4 (EventBridge's schema registry) knows only `enum`.
    if let Some(property) = schema["properties"]["eventType"].as_object_mut() {
        property.insert("enum".into(), json!([event_type]));
    }
    if let Some(property) = schema["properties"]["eventVersion"].as_object_mut() {
        property.insert("enum".into(), json!([version]));
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::versioned::tests::{CustomerRegistered, CustomerRegisteredV1};

    impl JsonSchema for CustomerRegisteredV1 {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "CustomerRegisteredV1".into()
        }
        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({
                "type": "object",
                "properties": {"customerId": {"type": "string"}, "name": {"type": "string"}},
                "required": ["customerId", "name"]
            })
        }
    }

    impl JsonSchema for CustomerRegistered {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "CustomerRegistered".into()
        }
        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({
                "type": "object",
                "properties": {
                    "customerId": {"type": "string"},
                    "firstName": {"type": "string"},
                    "lastName": {"type": "string"}
                },
                "required": ["customerId", "firstName", "lastName"]
            })
        }
    }

    impl EventContract for CustomerRegistered {
        fn older_versions() -> Vec<OlderVersion> {
            vec![OlderVersion::of::<CustomerRegisteredV1>(1)]
        }
    }

    #[test]
    fn one_schema_per_accepted_version_with_the_envelope() {
        let schemas = event_schemas::<CustomerRegistered>();
        assert_eq!(schemas.len(), 2);
        let (v1, v2) = (&schemas[0].schema, &schemas[1].schema);
        assert_eq!(v1["$schema"], SCHEMA_DRAFT);
        assert_eq!(v2["title"], "CustomerRegistered v2");
        assert_eq!(v1["properties"]["eventVersion"]["enum"], json!([1]));
        assert_eq!(v2["properties"]["eventVersion"]["enum"], json!([2]));
        let required: Vec<&str> = v2["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for field in [
            "eventId",
            "eventType",
            "eventVersion",
            "source",
            "time",
            "correlationId",
            "causationId",
            "data",
        ] {
            assert!(required.contains(&field), "{field} not required: {v2}");
        }
        assert!(!required.contains(&"traceId"), "traceId is optional");
        // The data's own schema is referenced from `data` (draft-07 puts a `$ref` with a
        // description in an `allOf`), per version.
        let data_ref = v2["properties"]["data"]["allOf"][0]["$ref"]
            .as_str()
            .unwrap();
        let name = data_ref.rsplit('/').next().unwrap();
        assert!(v2["definitions"][name]["properties"]["firstName"].is_object());
        let data_ref = v1["properties"]["data"]["allOf"][0]["$ref"]
            .as_str()
            .unwrap();
        let name = data_ref.rsplit('/').next().unwrap();
        assert!(v1["definitions"][name]["properties"]["name"].is_object());
    }
}
