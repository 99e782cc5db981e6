//! The composition of one record's processing: decode the record into what the user's
//! function asks for, run it under the idempotency layer (when one is configured), and say
//! whether the result was computed now or replayed from an earlier delivery.
//!
//! ```
//! use eventkit::events::{EventEnvelope, VersionedEvent};
//! use eventkit::handler::Handler;
//! use eventkit::idempotency::{Idempotency, IdempotencyConfig, InMemoryStore};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct OrderPlaced { order_id: String }
//!
//! impl VersionedEvent for OrderPlaced {
//!     const EVENT_TYPE: &'static str = "OrderPlaced";
//!     const CURRENT_VERSION: u32 = 1;
//! }
//!
//! async fn reserve(order: EventEnvelope<OrderPlaced>) -> Result<String, std::io::Error> {
//!     Ok(order.data.order_id)
//! }
//!
//! let idempotency = Idempotency::new(InMemoryStore::new(), IdempotencyConfig::new("inventory"));
//! let handler = Handler::new(reserve).with_idempotency(idempotency);
//! # let _ = handler;
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::{Deadline, RecordError};
use crate::events::{DecodeError, EventEnvelope, EventRecord, VersionedEvent};
use crate::idempotency::{Idempotency, IdempotencyStore, InMemoryStore};

/// What a handler function can ask for: built from a record, or a per-record error.
pub trait FromRecord: Sized {
    /// Decodes the record.
    fn from_record(record: &EventRecord) -> Result<Self, DecodeError>;
}

/// A versioned event in its envelope, upcast to the current version.
impl<T: VersionedEvent> FromRecord for EventEnvelope<T> {
    fn from_record(record: &EventRecord) -> Result<Self, DecodeError> {
        record.event::<T>()
    }
}

/// Any JSON body, decoded as `T` with no envelope expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRecord for Json<T> {
    fn from_record(record: &EventRecord) -> Result<Self, DecodeError> {
        record.decode().map(Json)
    }
}

/// The record itself, for handlers that read attributes or decode on their own.
impl FromRecord for EventRecord {
    fn from_record(record: &EventRecord) -> Result<Self, DecodeError> {
        Ok(record.clone())
    }
}

/// A record's successful result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled<O> {
    /// The function's output, computed now or stored by an earlier delivery.
    pub output: O,
    /// True when the idempotency layer answered with the stored result and the function did
    /// not run: the record was a duplicate.
    pub replayed: bool,
}

/// One record's processing, as the batch runtime sees it: decode, run, say whether the
/// result was replayed. [`Handler`] is the implementation for a user function.
pub trait RecordHandler {
    /// What the function returns for a record.
    type Output: Serialize + DeserializeOwned;

    /// Processes one record before `deadline`.
    fn handle(
        &self,
        record: EventRecord,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Handled<Self::Output>, RecordError>>;
}

/// A user function `async fn(T) -> Result<O, E>` with its decoding and, optionally, its
/// idempotency layer. `S` is the idempotency store (unused without idempotency).
pub struct Handler<F, T, S = InMemoryStore> {
    function: F,
    idempotency: Option<Idempotency<S>>,
    // The input type, fixed here so the record-handling impl names it.
    input: PhantomData<fn(T)>,
}

impl<F, T> Handler<F, T> {
    /// Wraps `function`, without idempotency. (The bound lets the compiler read `T` off
    /// the function.)
    pub fn new<Fut>(function: F) -> Self
    where
        F: Fn(T) -> Fut,
    {
        Self {
            function,
            idempotency: None,
            input: PhantomData,
        }
    }
}

impl<F, T, S> Handler<F, T, S> {
    /// Runs the function under `idempotency`: once per key, duplicates replayed.
    pub fn with_idempotency<S2: IdempotencyStore>(
        self,
        idempotency: Idempotency<S2>,
    ) -> Handler<F, T, S2> {
        Handler {
            function: self.function,
            idempotency: Some(idempotency),
            input: PhantomData,
        }
    }

    /// The idempotency layer, if one is configured.
    pub fn idempotency(&self) -> Option<&Idempotency<S>> {
        self.idempotency.as_ref()
    }
}

impl<F, T, S> std::fmt::Debug for Handler<F, T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("idempotent", &self.idempotency.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, T, S, Fut, O, E> RecordHandler for Handler<F, T, S>
where
    F: Fn(T) -> Fut,
    T: FromRecord,
    Fut: Future<Output = Result<O, E>>,
    O: Serialize + DeserializeOwned,
    E: Into<RecordError>,
    S: IdempotencyStore,
{
    type Output = O;

    /// A decoding failure is a permanent error naming the record; the idempotency layer's
    /// in-progress window is the time left before `deadline`.
    async fn handle(
        &self,
        record: EventRecord,
        deadline: Deadline,
    ) -> Result<Handled<O>, RecordError> {
        let input = T::from_record(&record).map_err(RecordError::permanent)?;
        let Some(idempotency) = &self.idempotency else {
            let output = (self.function)(input).await.map_err(Into::into)?;
            return Ok(Handled {
                output,
                replayed: false,
            });
        };
        let payload = record.json().map_err(RecordError::permanent)?;
        // Set inside the guarded closure: if it stays false the result came from the store.
        let ran = AtomicBool::new(false);
        let output = idempotency
            .run(&payload, record.id(), deadline.remaining(), || {
                ran.store(true, Ordering::Relaxed);
                (self.function)(input)
            })
            .await
            .map_err(RecordError::from_idempotency)?;
        Ok(Handled {
            output,
            replayed: !ran.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;
    use crate::batch::ErrorClass;
    use crate::events::Source;
    use crate::idempotency::IdempotencyConfig;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OrderPlaced {
        order_id: String,
    }

    impl VersionedEvent for OrderPlaced {
        const EVENT_TYPE: &'static str = "OrderPlaced";
        const CURRENT_VERSION: u32 = 1;
    }

    fn order_record(id: &str, event_id: &str) -> EventRecord {
        let body = serde_json::json!({
            "eventId": event_id, "eventType": "OrderPlaced", "eventVersion": 1,
            "source": "test", "time": "2026-11-22T00:00:00Z",
            "correlationId": "c-1", "causationId": event_id,
            "data": {"orderId": "o-1"}
        });
        EventRecord::new(id, Source::Sqs, body.to_string())
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(30))
    }

    #[tokio::test]
    async fn duplicates_are_replayed_without_running_the_function() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let handler = Handler::new(move |event: EventEnvelope<OrderPlaced>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(event.data.order_id)
            }
        })
        .with_idempotency(Idempotency::new(
            InMemoryStore::new(),
            IdempotencyConfig::new("test"),
        ));

        let first = handler
            .handle(order_record("m-1", "e-1"), deadline())
            .await
            .unwrap();
        let second = handler
            .handle(order_record("m-2", "e-1"), deadline())
            .await
            .unwrap();

        assert_eq!(
            first,
            Handled {
                output: "o-1".to_string(),
                replayed: false
            }
        );
        assert_eq!(
            second,
            Handled {
                output: "o-1".to_string(),
                replayed: true
            }
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_undecodable_record_is_a_permanent_error_naming_it() {
        let handler =
            Handler::new(|_: EventEnvelope<OrderPlaced>| async { Ok::<_, std::io::Error>(()) });
        let record = EventRecord::new("m-bad", Source::Sqs, "{not json");
        let error = handler.handle(record, deadline()).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Permanent);
        assert!(error.to_string().contains("m-bad"), "{error}");
    }

    #[tokio::test]
    async fn a_function_error_is_transient_by_default_and_permanent_when_marked() {
        let transient = Handler::new(|_: Json<serde_json::Value>| async {
            Err::<(), _>(std::io::Error::other("table unavailable"))
        });
        let permanent = Handler::new(|_: Json<serde_json::Value>| async {
            Err::<(), _>(RecordError::permanent("order has no items"))
        });
        let record = EventRecord::new("m-1", Source::Sqs, "{}");
        let error = transient
            .handle(record.clone(), deadline())
            .await
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Transient);
        assert_eq!(error.to_string(), "table unavailable");
        let error = permanent.handle(record, deadline()).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Permanent);
    }
}
