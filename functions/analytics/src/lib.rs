//! Analytics: counts every order event per type and day (`pk = <eventType>#<yyyy-mm-dd>`,
//! `count`). The counters are atomic ADDs, which are not idempotent by themselves (a
//! redelivered event would count twice); the idempotency layer makes them exactly-once.
//! Consumes an SQS queue fed by the bus (every event) and by the topic (OrderPlaced).

use std::sync::Arc;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::RecordError;
use eventkit::events::EventRecord;
use eventkit::handler::Handler;
use eventkit::idempotency::{DynamoDbStore, Idempotency};
use eventkit::runtime::EventFunction;
use futures::future::BoxFuture;

/// The analytics table's name.
pub const ANALYTICS_TABLE: &str = "ANALYTICS_TABLE";

/// The per-type, per-day counters.
#[derive(Clone, Debug)]
pub struct Counters {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Counters {
    /// Counters in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Counts one event (any type); returns the counter's key. The day is the event's own
    /// (its envelope `time`), so a late redelivery counts on the right day.
    pub async fn count(&self, record: EventRecord) -> Result<String, RecordError> {
        let event = record
            .envelope::<serde_json::Value>()
            .map_err(RecordError::permanent)?;
        let key = format!("{}#{}", event.event_type, event.time.format("%Y-%m-%d"));
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.clone()))
            .update_expression("ADD #count :one")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .map_err(|e| {
                RecordError::transient(format!("analytics table: {}", DisplayErrorContext(e)))
            })?;
        tracing::info!(counter = %key, "event counted");
        Ok(key)
    }
}

/// The function's type: its handler, its input, its idempotency store.
pub type Function = EventFunction<Handler<HandlerFn, EventRecord, DynamoDbStore>>;

/// The handler type the function runs.
pub type HandlerFn =
    Box<dyn Fn(EventRecord) -> BoxFuture<'static, Result<String, RecordError>> + Send + Sync>;

/// The Lambda function: every count under the idempotency layer, keyed by eventId.
pub fn function(counters: Arc<Counters>, idempotency: Idempotency<DynamoDbStore>) -> Function {
    let handle: HandlerFn = Box::new(move |record| {
        let counters = counters.clone();
        Box::pin(async move { counters.count(record).await })
    });
    EventFunction::new(Handler::new(handle).with_idempotency(idempotency))
}
