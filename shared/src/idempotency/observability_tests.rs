//! Each outcome of the layer is one tracing event naming its outcome, idempotency key and
//! record id, which is what the logs of a duplicate or a takeover are searched by.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use super::*;

const T0: u64 = 1_700_000_000_000;
const WINDOW: Duration = Duration::from_secs(30);

type Fields = HashMap<String, String>;

/// Collects the fields of every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

impl Capture {
    /// The events with `outcome`, taken out of the capture.
    fn outcomes(&self, outcome: &str) -> Vec<Fields> {
        let mut events = self.0.lock().unwrap();
        let (matching, rest) = events
            .drain(..)
            .partition(|fields| fields.get("outcome").map(String::as_str) == Some(outcome));
        *events = rest;
        matching
    }
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

fn event(id: &str, amount: u32) -> Value {
    json!({"eventId": id, "detail": {"amount": amount}})
}

/// Asserts exactly one event with `outcome`, for `key` (when given) and `record_id`.
fn assert_one(capture: &Capture, outcome: &str, key: Option<&str>, record_id: &str) {
    let events = capture.outcomes(outcome);
    assert_eq!(events.len(), 1, "{outcome}: {events:?}");
    let fields = &events[0];
    assert_eq!(
        fields.get("idempotency_key").map(String::as_str),
        key,
        "{outcome}"
    );
    assert_eq!(
        fields.get("record_id").map(String::as_str),
        Some(record_id),
        "{outcome}"
    );
}

fn in_progress(key: &str, window_end_ms: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.to_string(),
        status: Status::InProgress,
        expiration: T0 / 1000 + 3600,
        in_progress_expiry_ms: Some(window_end_ms),
        result: None,
        payload_hash: None,
        owner: Some("another invocation".into()),
    }
}

#[tokio::test]
async fn every_outcome_is_an_event_with_the_key_and_the_record_id() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let store = Arc::new(InMemoryStore::new());
    let layer = Idempotency::new(
        store.clone(),
        IdempotencyConfig::new("orders").validate_payload("detail"),
    )
    .with_clock(ManualClock::new(T0));
    let key = |id: &str| layer.key_for(&event(id, 1)).unwrap();

    let ok = || async { Ok::<u32, ()>(1) };
    layer.run(&event("e1", 1), "m1", WINDOW, ok).await.unwrap();
    assert_one(&capture, "completed", Some(&key("e1")), "m1");

    layer.run(&event("e1", 1), "m2", WINDOW, ok).await.unwrap();
    assert_one(&capture, "replayed", Some(&key("e1")), "m2");

    let tampered = layer.run(&event("e1", 2), "m3", WINDOW, ok).await;
    assert!(tampered.is_err());
    assert_one(&capture, "validation_failed", Some(&key("e1")), "m3");

    store.insert(in_progress(&key("e2"), T0 + 1));
    let busy = layer.run(&event("e2", 1), "m4", WINDOW, ok).await;
    assert!(busy.is_err());
    assert_one(&capture, "in_progress", Some(&key("e2")), "m4");

    store.insert(in_progress(&key("e3"), T0 - 1));
    layer.run(&event("e3", 1), "m5", WINDOW, ok).await.unwrap();
    assert_one(&capture, "takeover", Some(&key("e3")), "m5");
    assert_one(&capture, "completed", Some(&key("e3")), "m5");

    let failed = layer
        .run(&event("e4", 1), "m6", WINDOW, || async {
            Err::<u32, _>(())
        })
        .await;
    assert!(failed.is_err());
    assert_one(&capture, "handler_failed", Some(&key("e4")), "m6");

    let keyless = layer.run(&json!({}), "m7", WINDOW, ok).await;
    assert!(keyless.is_err());
    assert_one(&capture, "missing_key", None, "m7");
}
