//! Producer-side validation (feature `validate`): an event is checked against the schema of
//! its type and version before it is sent, so a producer that breaks its own contract fails
//! in its own tests instead of in its consumers. Meant for tests and staging; production
//! builds leave the feature (and the validator's dependencies) out.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{event_schemas, EventContract};

/// The schemas of the event types a producer publishes, compiled once.
#[derive(Default)]
pub struct SchemaValidator {
    validators: BTreeMap<(String, u32), jsonschema::Validator>,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaValidator")
            .field("schemas", &self.validators.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SchemaValidator {
    /// A validator that knows no event type yet (and so refuses every event).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every version of `E`.
    ///
    /// # Panics
    ///
    /// When a generated schema does not compile: a bug in the schema generation, never in
    /// the events checked later.
    pub fn with<E: EventContract>(mut self) -> Self {
        for schema in event_schemas::<E>() {
            let validator = match jsonschema::validator_for(&schema.schema) {
                Ok(validator) => validator,
                Err(error) => panic!(
                    "the generated schema of {} v{} does not compile: {error}",
                    schema.event_type, schema.version
                ),
            };
            self.validators
                .insert((schema.event_type.to_string(), schema.version), validator);
        }
        self
    }

    /// Checks one envelope (as JSON) against the schema of its `eventType` and
    /// `eventVersion`. An event of a type or version the validator does not know is a
    /// violation too: a validating producer publishes only what it has contracts for.
    pub fn validate(&self, event: &Value) -> Result<(), SchemaViolation> {
        let event_type = event["eventType"].as_str().unwrap_or_default().to_string();
        let version = event["eventVersion"]
            .as_u64()
            .and_then(|version| u32::try_from(version).ok())
            .unwrap_or_default();
        let violation = |problems| SchemaViolation {
            event_type: event_type.clone(),
            version,
            problems,
        };
        let Some(validator) = self.validators.get(&(event_type.clone(), version)) else {
            return Err(violation(vec![format!(
                "no schema for eventType `{event_type}` version {version} (known: {})",
                self.known()
            )]));
        };
        let problems: Vec<String> = validator
            .iter_errors(event)
            .map(|error| {
                let path = error.instance_path().to_string();
                let path = if path.is_empty() { "/".into() } else { path };
                format!("{path}: {error}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(violation(problems))
        }
    }

    fn known(&self) -> String {
        let known: Vec<String> = self
            .validators
            .keys()
            .map(|(event_type, version)| format!("{event_type} v{version}"))
            .collect();
        known.join(", ")
    }
}

/// An event that does not match its contract: which, and every place it breaks it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} v{version} does not match its schema: {}", problems.join("; "))]
pub struct SchemaViolation {
    /// The event's `eventType`.
    pub event_type: String,
    /// The event's `eventVersion`.
    pub version: u32,
    /// Each failure, as `<JSON pointer>: <what is wrong>` (`/data/items/0/quantity: "two"
    /// is not of type "integer"`).
    pub problems: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::versioned::tests::CustomerRegistered;
    use crate::events::EventEnvelope;

    fn envelope(version: u32, data: Value) -> Value {
        serde_json::to_value(EventEnvelope::from_parts(
            "CustomerRegistered",
            version,
            "customers",
            data,
        ))
        .unwrap()
    }

    #[test]
    fn accepts_every_known_version_and_names_what_breaks() {
        let validator = SchemaValidator::new().with::<CustomerRegistered>();
        let v2 = json!({"customerId": "c-1", "firstName": "Ada", "lastName": "Lovelace"});
        assert_eq!(validator.validate(&envelope(2, v2)), Ok(()));
        let v1 = json!({"customerId": "c-1", "name": "Ada Lovelace"});
        assert_eq!(validator.validate(&envelope(1, v1.clone())), Ok(()));

        // v1 data under a v2 envelope: the pinned version picks the v2 schema.
        let error = validator.validate(&envelope(2, v1)).unwrap_err();
        assert_eq!(
            (error.event_type.as_str(), error.version),
            ("CustomerRegistered", 2)
        );
        assert!(
            error
                .problems
                .iter()
                .any(|p| p.starts_with("/data: ") && p.contains("firstName")),
            "{error}"
        );

        let wrong_type = json!({"customerId": 7, "firstName": "Ada", "lastName": "L"});
        let error = validator.validate(&envelope(2, wrong_type)).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        assert!(
            error.problems[0].starts_with("/data/customerId: "),
            "{error}"
        );

        let error = validator.validate(&envelope(3, json!({}))).unwrap_err();
        assert!(error
            .to_string()
            .contains("no schema for eventType `CustomerRegistered` version 3"));
        let mut missing_id = envelope(1, json!({"customerId": "c-1", "name": "Ada"}));
        missing_id.as_object_mut().unwrap().remove("eventId");
        let error = validator.validate(&missing_id).unwrap_err();
        assert!(error.problems[0].contains("eventId"), "{error}");
    }
}
