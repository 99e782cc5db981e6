//! A breaker's transitions and refusals as CloudWatch EMF lines (namespace
//! [`crate::telemetry::EMF_NAMESPACE`], dimension `Breaker`, and `service`
//! with it when the breaker names one), so that an alarm can watch [`BREAKER_OPENED`] or
//! [`BREAKER_REJECTED`].
//!
//! Counted as they happen, written when something changed: at once for a transition (they
//! are rare), and after each batch for the refused records (by
//! [`BreakerLayer`](super::BreakerLayer), or [`Breaker::flush_metrics`](super::Breaker::flush_metrics)).

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use crate::telemetry::EMF_NAMESPACE;

/// Closed to open: this environment saw the threshold of failures and opened the circuit
/// (in the shared store, or alone when the store was unreachable).
pub const BREAKER_OPENED: &str = "BreakerOpened";
/// Open to half-open: this environment won the probe.
pub const BREAKER_PROBED: &str = "BreakerProbed";
/// Half-open to closed: the probe succeeded.
pub const BREAKER_CLOSED: &str = "BreakerClosed";
/// Half-open to open: the probe failed; the circuit waits for the next one.
pub const BREAKER_REOPENED: &str = "BreakerReopened";
/// Calls not made and records not attempted because the circuit was open.
pub const BREAKER_REJECTED: &str = "BreakerRejected";
/// The breaker's store was unreachable, so it decided on this environment's state alone.
pub const BREAKER_FAIL_OPEN: &str = "BreakerFailOpen";
/// The dimension naming the breaker.
pub const BREAKER_DIMENSION: &str = "Breaker";

/// What one breaker did since its metrics were last written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakerMetrics {
    /// [`BREAKER_OPENED`].
    pub opened: u64,
    /// [`BREAKER_PROBED`].
    pub probed: u64,
    /// [`BREAKER_CLOSED`].
    pub closed: u64,
    /// [`BREAKER_REOPENED`].
    pub reopened: u64,
    /// [`BREAKER_REJECTED`].
    pub rejected: u64,
    /// [`BREAKER_FAIL_OPEN`].
    pub fail_open: u64,
}

impl BreakerMetrics {
    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn named(&self) -> [(&'static str, u64); 6] {
        [
            (BREAKER_OPENED, self.opened),
            (BREAKER_PROBED, self.probed),
            (BREAKER_CLOSED, self.closed),
            (BREAKER_REOPENED, self.reopened),
            (BREAKER_REJECTED, self.rejected),
            (BREAKER_FAIL_OPEN, self.fail_open),
        ]
    }

    /// The EMF document for breaker `breaker`, with `service` as a second dimension set
    /// (`[service, Breaker]`) when given. Every metric is written, zeros included, so that
    /// an alarm's period without an event reads 0, not missing data.
    pub fn to_emf(&self, breaker: &str, service: Option<&str>) -> Value {
        let now = chrono::Utc::now();
        let mut dimensions = vec![json!([BREAKER_DIMENSION])];
        if service.is_some() {
            dimensions.push(json!(["service", BREAKER_DIMENSION]));
        }
        let metrics: Vec<Value> = self
            .named()
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut document = Map::new();
        document.insert(
            "timestamp".into(),
            json!(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        document.insert("level".into(), json!("INFO"));
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": u64::try_from(now.timestamp_millis()).unwrap_or(0),
                "CloudWatchMetrics": [{
                    "Namespace": EMF_NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": metrics,
                }],
            }),
        );
        document.insert(BREAKER_DIMENSION.into(), json!(breaker));
        if let Some(service) = service {
            document.insert("service".into(), json!(service));
        }
        for (name, value) in self.named() {
            document.insert(name.into(), json!(value));
        }
        Value::Object(document)
    }
}

/// The counts of one breaker, shared by its clones.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) opened: AtomicU64,
    pub(crate) probed: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) reopened: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) fail_open: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last take, which start again from zero.
    pub(crate) fn take(&self) -> BreakerMetrics {
        let take = |counter: &AtomicU64| counter.swap(0, Ordering::Relaxed);
        BreakerMetrics {
            opened: take(&self.opened),
            probed: take(&self.probed),
            closed: take(&self.closed),
            reopened: take(&self.reopened),
            rejected: take(&self.rejected),
            fail_open: take(&self.fail_open),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breakers_metrics_become_one_emf_line_per_breaker() {
        let metrics = BreakerMetrics {
            opened: 1,
            rejected: 7,
            ..BreakerMetrics::default()
        };
        let document = metrics.to_emf("payment-provider", Some("payments"));
        let line = document.to_string();
        assert!(!line.contains('\n'));
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], EMF_NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["Breaker"], ["service", "Breaker"]])
        );
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(document[name].is_u64(), "{name} has no value");
        }
        assert_eq!(document["Breaker"], "payment-provider");
        assert_eq!(document["service"], "payments");
        assert_eq!(document[BREAKER_OPENED], 1);
        assert_eq!(document[BREAKER_REJECTED], 7);
        assert_eq!(document[BREAKER_CLOSED], 0);
        let alone = metrics.to_emf("orders-bus", None);
        assert_eq!(
            alone["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Breaker"]])
        );
        assert!(alone.get("service").is_none());
    }

    #[test]
    fn counters_are_taken_once() {
        let counters = Counters::default();
        Counters::add(&counters.rejected);
        Counters::add(&counters.rejected);
        Counters::add(&counters.opened);
        let taken = counters.take();
        assert_eq!((taken.opened, taken.rejected), (1, 2));
        assert!(counters.take().is_empty());
    }
}
