//! Analytics: counts every order event per type and day (`pk = <eventType>#<yyyy-mm-dd>`,
//! `count`). The counters are atomic ADDs, which are not idempotent by themselves (a
//! redelivered event would count twice); the idempotency layer makes them exactly-once.
//! Consumes an SQS queue fed by the bus (every event) and by the topic (OrderPlaced).

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::RecordError;
use eventkit::events::EventEnvelope;
use eventkit::handler::{EventHandler, Handler, Invocation, Json, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyLayer, Idempotent};
use eventkit::runtime::EventFunction;
use serde_json::Value;

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
}

/// Counts one event of ours, whatever its type (only the envelope is read); returns the
/// counter's key. The day is the event's own (its envelope `time`), so a late redelivery
/// counts on the right day.
impl EventHandler for Counters {
    type Event = Json<EventEnvelope<Value>>;
    type Output = String;
    type Error = RecordError;

    async fn handle(
        &self,
        Json(event): Self::Event,
        _: &Invocation,
    ) -> Result<String, RecordError> {
        let key = format!("{}#{}", event.event_type, event.time.format("%Y-%m-%d"));
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.clone()))
            .update_expression("ADD #count :one")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await?;
        tracing::info!(counter = %key, "event counted");
        Ok(key)
    }
}

/// The function's type: the counters, under the idempotency layer.
pub type Function = EventFunction<Idempotent<Handler<Counters>, DynamoDbStore>>;

/// The Lambda function: every count under the idempotency layer, keyed by eventId.
pub fn function(counters: Counters, idempotency: Idempotency<DynamoDbStore>) -> Function {
    EventFunction::new(Handler::from_service(counters).layer(IdempotencyLayer::from(idempotency)))
}
