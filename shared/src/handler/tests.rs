use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::*;
use crate::batch::{Classify, Deadline, ErrorClass};
use crate::events::{EventEnvelope, Source, VersionedEvent};
use crate::idempotency::{IdempotencyConfig, IdempotencyLayer, InMemoryStore};

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

fn invocation() -> Invocation {
    Invocation::new(Deadline::after(Duration::from_secs(30))).with_request_id("req-1")
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
    .layer(IdempotencyLayer::new(
        InMemoryStore::new(),
        IdempotencyConfig::new("test"),
    ));

    let first = handler
        .handle(&order_record("m-1", "e-1"), &invocation())
        .await
        .unwrap();
    let second = handler
        .handle(&order_record("m-2", "e-1"), &invocation())
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
    let error = handler.handle(&record, &invocation()).await.unwrap_err();
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
    let error = transient.handle(&record, &invocation()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.to_string(), "table unavailable");
    let error = permanent.handle(&record, &invocation()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[derive(Debug, thiserror::Error)]
enum StockError {
    #[error("order {0} is invalid")]
    Invalid(String),
    #[error("table unavailable")]
    Table(#[source] std::io::Error),
}

impl Classify for StockError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::Permanent,
            Self::Table(_) => ErrorClass::Transient,
        }
    }
}

#[tokio::test]
async fn an_error_type_declares_its_class_once_and_keeps_its_type_and_cause() {
    let handler = Handler::new(|Json(fail): Json<String>| async move {
        match fail.as_str() {
            "invalid" => Err::<(), _>(StockError::Invalid("o-1".into())),
            _ => Err(StockError::Table(std::io::Error::other("connection reset"))),
        }
    });
    let invalid = EventRecord::new("m-1", Source::Sqs, r#""invalid""#);
    let error = handler.handle(&invalid, &invocation()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(matches!(
        error.downcast_ref::<StockError>(),
        Some(StockError::Invalid(_))
    ));

    let table = EventRecord::new("m-2", Source::Sqs, r#""table""#);
    let error = handler.handle(&table, &invocation()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);
    // The whole chain, from the handler's error to its cause, as std::error::Error.
    let source = std::error::Error::source(&error).unwrap();
    assert_eq!(source.to_string(), "table unavailable");
    assert_eq!(source.source().unwrap().to_string(), "connection reset");
    assert_eq!(error.to_string(), "table unavailable: connection reset");
}

struct Warehouse {
    name: &'static str,
}

impl Warehouse {
    async fn reserve(&self, event: EventEnvelope<OrderPlaced>) -> Result<String, RecordError> {
        Ok(format!("{} in {}", event.data.order_id, self.name))
    }
}

#[tokio::test]
async fn a_handler_with_state_and_the_invocation() {
    let handler = Handler::with_state(Warehouse { name: "north" }, Warehouse::reserve);
    let handled = handler
        .handle(&order_record("m-1", "e-1"), &invocation())
        .await
        .unwrap();
    assert_eq!(handled.output, "o-1 in north");

    let with_context = Handler::new(
        |(event, invocation): (EventEnvelope<OrderPlaced>, Invocation)| async move {
            Ok::<_, RecordError>(format!(
                "{} by {}",
                event.data.order_id,
                invocation.request_id()
            ))
        },
    );
    let handled = with_context
        .handle(&order_record("m-1", "e-1"), &invocation())
        .await
        .unwrap();
    assert_eq!(handled.output, "o-1 by req-1");
}
