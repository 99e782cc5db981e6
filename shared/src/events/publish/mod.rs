//! Publishing envelopes to SNS, EventBridge and SQS: in batches of up to 10, retrying only
//! the entries AWS reports as failed, and returning the ones that finally failed.
//!
//! Batch APIs succeed as a request while failing individual entries, so a publisher that
//! only checks the request result silently loses events. Here every call returns the
//! entries that are still failed after bounded retries, by their index in the input, and
//! the caller decides (fail the handler, store them, alert). Clients are passed in; nothing
//! is global.
//!
//! Batches are sent one after the other and each is settled (retries included) before the
//! next, so events keep their relative order across batches; within a batch, AWS may
//! accept a later entry while an earlier one is retried.

mod batch;
mod contract;
#[cfg(feature = "eventbridge")]
mod eventbridge;
#[cfg(feature = "sns")]
mod sns;
#[cfg(feature = "sqs")]
mod sqs;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::envelope::EventEnvelope;

pub use contract::SCHEMA_VIOLATION;

/// The [`PublishFailure::code`] of an event larger than its carrier holds: it was not sent
/// ([`EventTooLarge`](super::EventTooLarge) is the message).
pub const EVENT_TOO_LARGE: &str = "EventTooLarge";

#[cfg(feature = "eventbridge")]
pub use eventbridge::EventBridgePublisher;
#[cfg(feature = "sns")]
pub use sns::SnsPublisher;
#[cfg(feature = "sqs")]
pub use sqs::SqsPublisher;

/// The most entries SNS PublishBatch, EventBridge PutEvents and SQS SendMessageBatch take
/// in one request.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// The most payload bytes put in one request: the smallest of the three services' request
/// limits (SNS PublishBatch's 256 KiB). A single larger event that its carrier admits
/// ([`Carrier`](super::Carrier)) is sent alone.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// An event ready to send: its serialized envelope, the metadata the services need, and
/// per-message delivery options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// The envelope's `eventId`, to name the event in failures (and the default FIFO
    /// deduplication id).
    pub event_id: String,
    /// The envelope's `eventType`: EventBridge's `detail-type`.
    pub event_type: String,
    /// The envelope's `source`: EventBridge's `source`.
    pub source: String,
    /// The envelope's `time`: EventBridge's `time`.
    pub time: DateTime<Utc>,
    /// The envelope's X-Ray trace header, passed on as the SQS `AWSTraceHeader` and the
    /// EventBridge `TraceHeader` when it is one (starts with `Root=`).
    pub trace_id: Option<String>,
    /// The envelope as JSON: the SNS message, the SQS body, the EventBridge `detail`.
    pub body: String,
    /// String message attributes for SNS and SQS (SNS filter policies match on them);
    /// `eventType` and `source` are set from the envelope, and `traceparent` when the
    /// envelope carries a W3C trace context (so that a consumer that reads attributes, or a
    /// raw delivery's, finds the producer's context without parsing the body). EventBridge
    /// has none: its rules match on the event itself.
    pub attributes: BTreeMap<String, String>,
    /// Message group id for FIFO topics and queues.
    pub group_id: Option<String>,
    /// Deduplication id for FIFO topics and queues; `event_id` when unset.
    pub deduplication_id: Option<String>,
}

impl OutgoingEvent {
    /// Serializes `envelope` and takes its metadata.
    pub fn from_envelope<T: Serialize>(
        envelope: &EventEnvelope<T>,
    ) -> Result<Self, serde_json::Error> {
        let mut attributes = BTreeMap::from([
            (
                super::record::EVENT_TYPE_ATTRIBUTE.to_string(),
                envelope.event_type.clone(),
            ),
            ("source".to_string(), envelope.source.clone()),
        ]);
        if let Some(traceparent) = &envelope.traceparent {
            attributes.insert(
                crate::telemetry::TRACEPARENT_ATTRIBUTE.to_string(),
                traceparent.clone(),
            );
        }
        Ok(Self {
            event_id: envelope.event_id.clone(),
            event_type: envelope.event_type.clone(),
            source: envelope.source.clone(),
            time: envelope.time,
            trace_id: envelope.trace_id.clone(),
            body: serde_json::to_string(envelope)?,
            attributes,
            group_id: None,
            deduplication_id: None,
        })
    }

    /// Adds (or replaces) a string message attribute.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets the FIFO message group id.
    pub fn with_group_id(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets the FIFO deduplication id (otherwise the event id).
    pub fn with_deduplication_id(mut self, deduplication_id: impl Into<String>) -> Self {
        self.deduplication_id = Some(deduplication_id.into());
        self
    }

    /// The deduplication id a FIFO destination gets: explicit, or the event id, so that a
    /// retried publish of the same event is deduplicated.
    fn fifo_deduplication_id(&self) -> &str {
        self.deduplication_id.as_deref().unwrap_or(&self.event_id)
    }

    /// The trace id if it is an X-Ray header; the services reject anything else, and a
    /// malformed trace must not cost the event.
    fn xray_trace_header(&self) -> Option<&str> {
        self.trace_id
            .as_deref()
            .filter(|trace| trace.starts_with("Root="))
    }

    /// What eventkit counts against a carrier's limit ([`Carrier`](super::Carrier)) and a
    /// batch request's: the body, the type and source, each attribute's name, value and type,
    /// and 64 bytes for the rest (time, trace header). That is at least what SNS, SQS or
    /// EventBridge count, so one rule serves all three.
    pub fn size_bytes(&self) -> usize {
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(name, value)| name.len() + value.len() + "String".len())
            .sum();
        self.body.len() + self.event_type.len() + self.source.len() + attributes + 64
    }
}

/// An event that was still not accepted after the last attempt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event_id} was not published after {attempts} attempts: {code}: {message}")]
pub struct PublishFailure {
    /// Its index in the slice given to `publish`.
    pub index: usize,
    /// Its event id.
    pub event_id: String,
    /// The error code AWS gave for the entry, or for the whole request when the service
    /// refused it (`NotFound` for a missing topic, say; such a refusal is not retried);
    /// `RequestFailed` when the request got no answer (timeout, no connection),
    /// `InvalidEntry` when the entry could not be built, [`SCHEMA_VIOLATION`] when it did
    /// not match its schema, or [`EVENT_TOO_LARGE`] when its carrier could not hold it (in
    /// these two cases it was not sent).
    pub code: String,
    /// AWS's message, or the request error.
    pub message: String,
    /// How many times it was sent.
    pub attempts: u32,
}

/// How often, and how patiently, failed entries are sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per entry, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for each further attempt.
    pub base_delay: Duration,
    /// Upper bound of the wait between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting 100 ms, 200 ms, 400 ms (at most 2 s). The SDK already retries
    /// throttled and failed requests with jitter; this covers entries a successful request
    /// reported as failed.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts (at least one) with the default delays.
    pub fn attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::default()
        }
    }

    /// Sets the base and maximum delays.
    pub fn with_delays(mut self, base_delay: Duration, max_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self.max_delay = max_delay;
        self
    }

    /// The wait before attempt `attempt` (2 or more): doubling from the base delay up to the
    /// maximum, with full jitter (see [`Backoff`](crate::backoff::Backoff)), so that
    /// publishers that failed together do not retry together.
    fn delay_before(&self, attempt: u32) -> Duration {
        self.backoff().delay(attempt.saturating_sub(1))
    }

    fn backoff(&self) -> crate::backoff::Backoff {
        crate::backoff::Backoff::new(self.base_delay, self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventEnvelope;

    #[test]
    fn outgoing_event_takes_envelope_metadata() {
        let envelope =
            EventEnvelope::from_parts("OrderPlaced", 1, "orders", serde_json::json!({"id": 1}))
                .with_trace_id("Root=1-5759e988-bd862e3fe1be46a994272793");
        let outgoing = OutgoingEvent::from_envelope(&envelope).unwrap();
        assert_eq!(outgoing.event_id, envelope.event_id);
        assert_eq!(outgoing.attributes["eventType"], "OrderPlaced");
        assert_eq!(outgoing.attributes["source"], "orders");
        assert_eq!(outgoing.fifo_deduplication_id(), envelope.event_id);
        assert!(outgoing.xray_trace_header().is_some());
        let body: EventEnvelope<serde_json::Value> = serde_json::from_str(&outgoing.body).unwrap();
        assert_eq!(body, envelope);

        let outgoing = outgoing
            .with_deduplication_id("d-1")
            .with_trace_id_for_test("not-xray");
        assert_eq!(outgoing.fifo_deduplication_id(), "d-1");
        assert_eq!(outgoing.xray_trace_header(), None);
    }

    #[test]
    fn the_w3c_context_becomes_a_traceparent_attribute_only_when_present() {
        let envelope =
            EventEnvelope::from_parts("OrderPlaced", 1, "orders", serde_json::json!({"id": 1}));
        let plain = OutgoingEvent::from_envelope(&envelope).unwrap();
        assert_eq!(
            plain.attributes.keys().collect::<Vec<_>>(),
            ["eventType", "source"]
        );

        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced = envelope.with_traceparent(traceparent, Some("vendor=1".into()));
        let outgoing = OutgoingEvent::from_envelope(&traced).unwrap();
        assert_eq!(outgoing.attributes["traceparent"], traceparent);
        // The tracestate travels in the body only (attributes are few: SNS and SQS allow 10).
        assert_eq!(outgoing.attributes.len(), 3);
        let body: serde_json::Value = serde_json::from_str(&outgoing.body).unwrap();
        assert_eq!(body["traceparent"], traceparent);
        assert_eq!(body["tracestate"], "vendor=1");
        assert!(outgoing.size_bytes() > plain.size_bytes() + traceparent.len());
    }

    impl OutgoingEvent {
        fn with_trace_id_for_test(mut self, trace: &str) -> Self {
            self.trace_id = Some(trace.into());
            self
        }
    }

    #[test]
    fn delays_double_up_to_the_bound_with_jitter() {
        let policy = RetryPolicy::attempts(10)
            .with_delays(Duration::from_millis(100), Duration::from_millis(500));
        let ceilings: Vec<u128> = (2..=6)
            .map(|a| policy.backoff().ceiling(a - 1).as_millis())
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 500, 500]);
        for attempt in 2..=6 {
            let ceiling = policy.backoff().ceiling(attempt - 1);
            let delays: Vec<Duration> = (0..50).map(|_| policy.delay_before(attempt)).collect();
            assert!(delays.iter().all(|delay| *delay <= ceiling));
            assert!(delays.iter().any(|delay| *delay != delays[0]), "jittered");
        }
        assert_eq!(RetryPolicy::attempts(0).max_attempts, 1);
        assert!(policy.delay_before(u32::MAX) <= Duration::from_millis(500));
    }
}
