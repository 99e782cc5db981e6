//! The optional contract check before sending (feature `validate`): events that do not match
//! their schema fail as [`PublishFailure`]s with the code `SchemaViolation` and are never
//! sent, so a producer breaking its contract fails in its own tests.

#[cfg(feature = "validate")]
use std::sync::Arc;

#[cfg(feature = "validate")]
use crate::events::schema::SchemaValidator;

use super::{OutgoingEvent, PublishFailure};

/// The [`PublishFailure::code`] of an event that broke its contract.
pub const SCHEMA_VIOLATION: &str = "SchemaViolation";

/// What a publisher checks before sending: nothing by default.
#[derive(Clone, Debug, Default)]
pub(crate) struct ContractCheck {
    #[cfg(feature = "validate")]
    validator: Option<Arc<SchemaValidator>>,
}

impl ContractCheck {
    /// Checks every event against `validator`.
    #[cfg(feature = "validate")]
    pub(crate) fn new(validator: Arc<SchemaValidator>) -> Self {
        Self {
            validator: Some(validator),
        }
    }

    /// The events that break their contract, as failures (by index); they are not sent.
    pub(crate) fn reject(&self, events: &[OutgoingEvent]) -> Vec<PublishFailure> {
        #[cfg(feature = "validate")]
        if let Some(validator) = &self.validator {
            return events
                .iter()
                .enumerate()
                .filter_map(|(index, event)| {
                    let message = match serde_json::from_str(&event.body) {
                        Ok(body) => validator.validate(&body).err()?.to_string(),
                        Err(error) => format!("the body is not JSON: {error}"),
                    };
                    Some(PublishFailure {
                        index,
                        event_id: event.event_id.clone(),
                        code: SCHEMA_VIOLATION.into(),
                        message,
                        attempts: 0,
                    })
                })
                .collect();
        }
        let _ = events;
        Vec::new()
    }
}
