//! The event envelope: the metadata every event of ours carries around its data.
//!
//! The envelope is the same JSON whatever carries it (an SQS body, an SNS message, an
//! EventBridge `detail`), so a consumer decodes it the same way from any source, and the
//! ids in it (rather than the carrier's message ids, which change on every hop) identify
//! the event for idempotency and tracing.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::DecodeReason;
use super::versioned::VersionedEvent;

/// A domain event with its metadata; camelCase on the wire.
///
/// ```json
/// {"eventId": "…", "eventType": "CustomerRegistered", "eventVersion": 2,
///  "source": "customers", "time": "2024-05-01T12:00:00Z",
///  "correlationId": "…", "causationId": "…", "traceId": "Root=1-…",
///  "traceparent": "00-…-…-01", "data": {…}}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope<T> {
    /// Unique id of this event; the default idempotency key.
    pub event_id: String,
    /// The event's type name, for example `CustomerRegistered`.
    pub event_type: String,
    /// The schema version of `data`.
    pub event_version: u32,
    /// The producer (service or bounded context) that emitted the event.
    pub source: String,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// Shared by every event of one business flow: the root event's id.
    pub correlation_id: String,
    /// The id of the event that caused this one (the event's own id for a root event).
    pub causation_id: String,
    /// The X-Ray trace header (`Root=1-…;Parent=…;Sampled=…`) of the flow, carried across
    /// hops so a consumer can continue the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The W3C trace context (`00-<trace id>-<span id>-<flags>`) of the span that produced
    /// the event, so that its consumers' spans join (or link to) the producer's trace. Set
    /// when the event is created inside a traced span (eventkit's feature `otel`, export
    /// configured); absent otherwise, and absent from the JSON then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The W3C `tracestate` that goes with `traceparent`: vendor entries, carried as
    /// received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The domain event itself.
    pub data: T,
}

impl<T: VersionedEvent> EventEnvelope<T> {
    /// A new root event of type `T` at its current version: a fresh id, the current time,
    /// and itself as correlation and causation.
    pub fn new(source: impl Into<String>, data: T) -> Self {
        Self::from_parts(T::EVENT_TYPE, T::CURRENT_VERSION, source, data)
    }

    /// A new event caused by `cause`: same correlation id and trace, causation id is the
    /// cause's event id, and a **stable** event id derived from the cause (see
    /// [`derived_event_id`]): a handler that runs again for the same cause (after a crash,
    /// a timeout, a lost completion) publishes the very same event id, which the consumers'
    /// idempotency absorbs.
    ///
    /// A handler that emits several events of one type for one cause tells them apart with
    /// [`caused_by_discriminated`](Self::caused_by_discriminated); two events built here from
    /// the same cause, type and source share their id by design.
    ///
    /// ```
    /// # use eventkit::events::{EventEnvelope, VersionedEvent};
    /// # #[derive(serde::Deserialize)] struct OrderPlaced; #[derive(serde::Deserialize)] struct StockReserved;
    /// # impl VersionedEvent for OrderPlaced { const EVENT_TYPE: &'static str = "OrderPlaced"; const CURRENT_VERSION: u32 = 1; }
    /// # impl VersionedEvent for StockReserved { const EVENT_TYPE: &'static str = "StockReserved"; const CURRENT_VERSION: u32 = 1; }
    /// let placed = EventEnvelope::new("orders", OrderPlaced);
    /// let first = EventEnvelope::caused_by(&placed, "inventory", StockReserved);
    /// let rerun = EventEnvelope::caused_by(&placed, "inventory", StockReserved);
    /// assert_eq!(first.event_id, rerun.event_id);
    /// assert_eq!(first.causation_id, placed.event_id);
    /// ```
    pub fn caused_by<C>(cause: &EventEnvelope<C>, source: impl Into<String>, data: T) -> Self {
        Self::new(source, data).following(cause)
    }

    /// Like [`caused_by`](Self::caused_by), for one of several events of the same type and
    /// source caused by one event: `discriminator` (a line number, a SKU, a recipient) is
    /// part of the derived id, so each event keeps its own id and every rerun repeats it.
    pub fn caused_by_discriminated<C>(
        cause: &EventEnvelope<C>,
        source: impl Into<String>,
        discriminator: &str,
        data: T,
    ) -> Self {
        let mut event = Self::caused_by(cause, source, data);
        event.event_id = derived_event_id(
            &cause.event_id,
            &event.event_type,
            &event.source,
            Some(discriminator),
        );
        event
    }
}

/// The namespace of derived event ids (a UUID v5 namespace of eventkit's own; changing it
/// would change every derived id).
const DERIVED_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6a4f_0b52_8d0e_4c1b_9a57_3e5d_2c71_e0a9);

/// The id of an event caused by the event `cause_event_id`: a name-based UUID (version 5,
/// SHA-1) in eventkit's namespace `6a4f0b52-8d0e-4c1b-9a57-3e5d2c71e0a9`, of the name
/// `["<cause_event_id>","<event_type>","<source>",<discriminator or null>]` written as
/// compact JSON (so no two inputs share a name).
///
/// The same cause, type, source and discriminator always give the same id, in any process
/// and any language that implements UUID v5: a handler that reruns for the same cause
/// republishes the same ids. The event's version and data are left out on purpose: a rerun
/// under a newer deployment that emits the next version, or differently computed data, is
/// still the same event.
pub fn derived_event_id(
    cause_event_id: &str,
    event_type: &str,
    source: &str,
    discriminator: Option<&str>,
) -> String {
    let name = serde_json::json!([cause_event_id, event_type, source, discriminator]).to_string();
    uuid::Uuid::new_v5(&DERIVED_ID_NAMESPACE, name.as_bytes()).to_string()
}

impl<T> EventEnvelope<T> {
    /// A new root event with an explicit type and version, for data that does not
    /// implement [`VersionedEvent`] (for example a `serde_json::Value`). Created while an
    /// invocation is handled, it carries that invocation's X-Ray trace id
    /// ([`current_trace_id`](crate::telemetry::current_trace_id)) and the W3C context of the
    /// current span ([`current_trace_context`](crate::telemetry::current_trace_context)).
    pub fn from_parts(
        event_type: impl Into<String>,
        event_version: u32,
        source: impl Into<String>,
        data: T,
    ) -> Self {
        let event_id = uuid::Uuid::new_v4().to_string();
        let context = crate::telemetry::current_trace_context();
        let (traceparent, tracestate) = match context {
            Some(context) => (Some(context.traceparent), context.tracestate),
            None => (None, None),
        };
        Self {
            correlation_id: event_id.clone(),
            causation_id: event_id.clone(),
            event_id,
            event_type: event_type.into(),
            event_version,
            source: source.into(),
            time: Utc::now(),
            trace_id: crate::telemetry::current_trace_id(),
            traceparent,
            tracestate,
            data,
        }
    }

    /// Makes this event a consequence of `cause`: its correlation id, its event id as
    /// causation, its X-Ray trace and its W3C trace context each when this event has none,
    /// and the stable id
    /// [`derived_event_id`] gives for the cause, this event's type and source.
    pub fn following<C>(mut self, cause: &EventEnvelope<C>) -> Self {
        self.event_id = derived_event_id(&cause.event_id, &self.event_type, &self.source, None);
        self.correlation_id = cause.correlation_id.clone();
        self.causation_id = cause.event_id.clone();
        if self.trace_id.is_none() {
            self.trace_id = cause.trace_id.clone();
        }
        if self.traceparent.is_none() {
            self.traceparent = cause.traceparent.clone();
            self.tracestate = cause.tracestate.clone();
        }
        self
    }

    /// Gives the event the id `event_id`, for a root event whose producer has a stable id
    /// of its own (an order number, a request id) so that its retries are recognised as the
    /// same event. A root event's correlation and causation ids follow its id.
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        let event_id = event_id.into();
        if self.correlation_id == self.event_id {
            self.correlation_id.clone_from(&event_id);
        }
        if self.causation_id == self.event_id {
            self.causation_id.clone_from(&event_id);
        }
        self.event_id = event_id;
        self
    }

    /// Sets the X-Ray trace header carried with the event.
    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// Sets the W3C trace context carried with the event (`traceparent`, and `tracestate`
    /// when there is one), for a producer that propagates a context of its own.
    pub fn with_traceparent(
        mut self,
        traceparent: impl Into<String>,
        tracestate: Option<String>,
    ) -> Self {
        self.traceparent = Some(traceparent.into());
        self.tracestate = tracestate;
        self
    }

    /// The domain event, without its metadata.
    pub fn into_data(self) -> T {
        self.data
    }

    /// The same metadata around other data (for example after upcasting).
    pub fn map_data<U>(self, f: impl FnOnce(T) -> U) -> EventEnvelope<U> {
        EventEnvelope {
            event_id: self.event_id,
            event_type: self.event_type,
            event_version: self.event_version,
            source: self.source,
            time: self.time,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            trace_id: self.trace_id,
            traceparent: self.traceparent,
            tracestate: self.tracestate,
            data: f(self.data),
        }
    }
}

impl<T: DeserializeOwned> EventEnvelope<T> {
    /// Parses an envelope from JSON, telling apart a body that is not an envelope at all
    /// ([`DecodeReason::WrongEnvelope`]) from an envelope with a missing or bad field.
    ///
    /// This does not check `eventType` or upcast `eventVersion`; decoding a record with
    /// [`EventRecord::event`](super::EventRecord::event) does.
    pub fn from_json(json: &str) -> Result<Self, DecodeReason> {
        let value: Value =
            serde_json::from_str(json).map_err(|error| DecodeReason::from_json(&error))?;
        Self::from_value(&value)
    }

    /// [`from_json`](Self::from_json) on JSON already parsed.
    pub(crate) fn from_value(value: &Value) -> Result<Self, DecodeReason> {
        require_envelope_shape(value)?;
        Self::deserialize(value).map_err(|error| DecodeReason::from_json(&error))
    }
}

/// An envelope is a JSON object with `eventType` or `data`: a bare domain object has neither.
fn require_envelope_shape(value: &Value) -> Result<(), DecodeReason> {
    let Some(object) = value.as_object() else {
        return Err(DecodeReason::wrong_envelope(
            "expected an event envelope (a JSON object), found another JSON value",
        ));
    };
    let present = |key| object.get(key).is_some_and(|value| !value.is_null());
    if !present("eventType") && !present("data") {
        return Err(DecodeReason::wrong_envelope(
            "expected an event envelope, found a JSON object with neither `eventType` nor `data`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct OrderPlaced {
        order_id: String,
    }

    impl VersionedEvent for OrderPlaced {
        const EVENT_TYPE: &'static str = "OrderPlaced";
        const CURRENT_VERSION: u32 = 1;
    }

    fn order(id: &str) -> OrderPlaced {
        OrderPlaced {
            order_id: id.into(),
        }
    }

    // Computed with Python's uuid.uuid5, not with this code.
    const PINNED_DERIVED_ID: &str = "4530ada4-c3dd-53e1-a95a-4105f0cbf7cb";

    #[test]
    fn a_root_event_correlates_with_itself() {
        let event = EventEnvelope::new("orders", order("o-1"));
        assert_eq!(event.event_type, "OrderPlaced");
        assert_eq!(event.event_version, 1);
        assert_eq!(event.correlation_id, event.event_id);
        assert_eq!(event.causation_id, event.event_id);
        assert_eq!(event.trace_id, None);
        assert_ne!(
            event.event_id,
            EventEnvelope::new("orders", order("o-1")).event_id
        );
    }

    #[tokio::test]
    async fn events_created_in_an_invocation_carry_its_trace() {
        use crate::telemetry::with_trace_id;
        let cause = EventEnvelope::new("orders", order("o-1")).with_trace_id("Root=1-old");
        let (root, caused) = with_trace_id(Some("Root=1-now".into()), async {
            let root = EventEnvelope::new("orders", order("o-2"));
            (
                root,
                EventEnvelope::caused_by(&cause, "billing", order("o-1")),
            )
        })
        .await;
        assert_eq!(root.trace_id.as_deref(), Some("Root=1-now"));
        // The invocation's own trace wins over the cause's: it continues the same trace.
        assert_eq!(caused.trace_id.as_deref(), Some("Root=1-now"));
    }

    #[test]
    fn a_caused_event_keeps_correlation_and_trace() {
        let root = EventEnvelope::new("orders", order("o-1")).with_trace_id("Root=1-abc");
        let second = EventEnvelope::caused_by(&root, "billing", order("o-1"));
        let third = EventEnvelope::caused_by(&second, "shipping", order("o-1"));
        assert_eq!(second.correlation_id, root.event_id);
        assert_eq!(second.causation_id, root.event_id);
        assert_eq!(third.correlation_id, root.event_id);
        assert_eq!(third.causation_id, second.event_id);
        assert_eq!(third.trace_id.as_deref(), Some("Root=1-abc"));
        assert_eq!(third.source, "shipping");
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct StockReserved {
        order_id: String,
    }

    impl VersionedEvent for StockReserved {
        const EVENT_TYPE: &'static str = "StockReserved";
        const CURRENT_VERSION: u32 = 1;
    }

    #[test]
    fn a_caused_event_has_the_same_id_every_time_it_is_made() {
        let placed = EventEnvelope::new("orders", order("o-1"));
        let reserved = || {
            EventEnvelope::caused_by(
                &placed,
                "inventory",
                StockReserved {
                    order_id: "o-1".into(),
                },
            )
        };
        // A rerun of the handler (after a crash before its completion) makes the same event.
        assert_eq!(reserved().event_id, reserved().event_id);
        assert_ne!(reserved().event_id, placed.event_id);
        // Each part of the derivation changes the id.
        let other_cause = EventEnvelope::new("orders", order("o-1"));
        let ids = [
            reserved().event_id,
            EventEnvelope::caused_by(&other_cause, "inventory", reserved().data).event_id,
            EventEnvelope::caused_by(&placed, "warehouse", reserved().data).event_id,
            EventEnvelope::caused_by(&placed, "inventory", order("o-1")).event_id,
            EventEnvelope::caused_by_discriminated(&placed, "inventory", "1", reserved().data)
                .event_id,
            EventEnvelope::caused_by_discriminated(&placed, "inventory", "2", reserved().data)
                .event_id,
        ];
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    }

    #[test]
    fn the_derivation_is_the_documented_uuid_v5() {
        // Pinned: a change here changes every derived id in flight, and consumers would
        // see reruns as new events. Reproducible outside Rust, for example in Python:
        // uuid.uuid5(uuid.UUID("6a4f0b52-8d0e-4c1b-9a57-3e5d2c71e0a9"),
        //            '["e-1","StockReserved","inventory",null]')
        let id = derived_event_id("e-1", "StockReserved", "inventory", None);
        assert_eq!(id, PINNED_DERIVED_ID);
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 5);
        // Field boundaries cannot be shifted to produce the same name.
        assert_ne!(
            derived_event_id("e-1", "Stock", "Reservedinventory", None),
            id
        );
        assert_ne!(
            derived_event_id("e-1", "StockReserved", "inventory", Some("")),
            id
        );
    }

    #[test]
    fn a_root_event_can_take_its_producers_id() {
        let event = EventEnvelope::new("orders", order("o-1")).with_event_id("order-o-1");
        assert_eq!(event.event_id, "order-o-1");
        assert_eq!(event.correlation_id, "order-o-1");
        assert_eq!(event.causation_id, "order-o-1");
    }

    #[test]
    fn wire_format_is_camel_case_and_omits_absent_trace() {
        let event = EventEnvelope::new("orders", order("o-1"));
        let json = serde_json::to_value(&event).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "eventId",
            "eventType",
            "eventVersion",
            "source",
            "time",
            "correlationId",
            "causationId",
            "data",
        ] {
            assert!(keys.contains(&key), "{key} missing from {json}");
        }
        assert!(!keys.contains(&"traceId"));
        let traced = serde_json::to_value(event.with_trace_id("Root=1-abc")).unwrap();
        assert_eq!(traced["traceId"], "Root=1-abc");
    }

    #[test]
    fn from_json_tells_wrong_envelope_from_missing_field() {
        let event = EventEnvelope::new("orders", order("o-1"));
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            EventEnvelope::<OrderPlaced>::from_json(&json).unwrap(),
            event
        );

        let bare = r#"{"order_id": "o-1"}"#;
        assert!(matches!(
            EventEnvelope::<OrderPlaced>::from_json(bare),
            Err(DecodeReason::WrongEnvelope { .. })
        ));
        assert!(matches!(
            EventEnvelope::<OrderPlaced>::from_json("[1, 2]"),
            Err(DecodeReason::WrongEnvelope { .. })
        ));
        assert!(matches!(
            EventEnvelope::<OrderPlaced>::from_json("[1, 2"),
            Err(DecodeReason::InvalidJson { .. })
        ));
        let mut without_correlation = serde_json::to_value(&event).unwrap();
        without_correlation
            .as_object_mut()
            .unwrap()
            .remove("correlationId");
        assert_eq!(
            EventEnvelope::<OrderPlaced>::from_json(&without_correlation.to_string()),
            Err(DecodeReason::MissingField {
                field: "correlationId".into()
            })
        );
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_context_is_absent_from_the_json_unless_set_and_old_events_still_decode() {
        let event = EventEnvelope::new("orders", order("o-1"));
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get("traceparent").is_none(), "{json}");
        assert!(json.get("tracestate").is_none(), "{json}");
        // An event from before the fields existed decodes, without a context.
        let decoded = EventEnvelope::<OrderPlaced>::from_json(&json.to_string()).unwrap();
        assert_eq!(decoded.traceparent, None);

        let traced = event.with_traceparent(TRACEPARENT, Some("vendor=1".into()));
        let json = serde_json::to_value(&traced).unwrap();
        assert_eq!(json["traceparent"], TRACEPARENT);
        assert_eq!(json["tracestate"], "vendor=1");
        let decoded = EventEnvelope::<OrderPlaced>::from_json(&json.to_string()).unwrap();
        assert_eq!(decoded, traced);
    }

    #[test]
    fn a_caused_event_keeps_the_causes_w3c_context_unless_it_has_its_own() {
        let root = EventEnvelope::new("orders", order("o-1"))
            .with_traceparent(TRACEPARENT, Some("vendor=1".into()));
        let caused = EventEnvelope::caused_by(&root, "billing", order("o-1"));
        assert_eq!(caused.traceparent.as_deref(), Some(TRACEPARENT));
        assert_eq!(caused.tracestate.as_deref(), Some("vendor=1"));
        let mapped = caused.map_data(|o| o.order_id);
        assert_eq!(mapped.traceparent.as_deref(), Some(TRACEPARENT));

        let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let kept = EventEnvelope::new("billing", order("o-1"))
            .with_traceparent(own, None)
            .following(&root);
        assert_eq!(kept.traceparent.as_deref(), Some(own));
        assert_eq!(kept.tracestate, None);
    }

    #[test]
    fn map_data_keeps_metadata() {
        let event = EventEnvelope::new("orders", order("o-1"));
        let mapped = event.clone().map_data(|o| o.order_id);
        assert_eq!(mapped.event_id, event.event_id);
        assert_eq!(mapped.data, "o-1");
        assert_eq!(event.into_data(), order("o-1"));
    }
}
