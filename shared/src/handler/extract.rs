//! What a handler function can ask for, decoded from the record it is given.

use serde::de::DeserializeOwned;

use super::Invocation;
use crate::events::{DecodeError, EventEnvelope, EventRecord, VersionedEvent};

/// What a handler function can ask for: built from a record (and its invocation), or a
/// [`DecodeError`] naming the record, which fails that record alone, permanently.
pub trait FromRecord: Sized {
    /// Decodes the record.
    fn from_record(record: &EventRecord, invocation: &Invocation) -> Result<Self, DecodeError>;
}

/// A versioned event in its envelope: `eventType` checked, older versions upcast to the
/// current one.
impl<T: VersionedEvent> FromRecord for EventEnvelope<T> {
    fn from_record(record: &EventRecord, _: &Invocation) -> Result<Self, DecodeError> {
        record.event()
    }
}

/// Any JSON body, decoded as `T` with no envelope expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRecord for Json<T> {
    fn from_record(record: &EventRecord, _: &Invocation) -> Result<Self, DecodeError> {
        record.decode().map(Json)
    }
}

/// The record itself, for handlers that read attributes or decode on their own.
impl FromRecord for EventRecord {
    fn from_record(record: &EventRecord, _: &Invocation) -> Result<Self, DecodeError> {
        Ok(record.clone())
    }
}

/// The invocation: request id, deadline, function name.
impl FromRecord for Invocation {
    fn from_record(_: &EventRecord, invocation: &Invocation) -> Result<Self, DecodeError> {
        Ok(invocation.clone())
    }
}

/// Two things at once, for example `(EventEnvelope<OrderPlaced>, Invocation)`.
impl<A: FromRecord, B: FromRecord> FromRecord for (A, B) {
    fn from_record(record: &EventRecord, invocation: &Invocation) -> Result<Self, DecodeError> {
        Ok((
            A::from_record(record, invocation)?,
            B::from_record(record, invocation)?,
        ))
    }
}
