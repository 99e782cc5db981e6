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

use serde::de::DeserializeOwned;
use serde_json::Value;

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
    /// The data does not fit the old version's struct, with the JSON path that failed: what
    /// reading it with [`decode_data`](super::decode_data) gives.
    #[error(transparent)]
    Invalid(#[from] super::DecodeReason),
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
}
