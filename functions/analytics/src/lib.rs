//! Analytics: counts every order event per type and day (`pk = <eventType>#<yyyy-mm-dd>`,
//! `count`). The counters are atomic ADDs, which are not idempotent by themselves (a
//! redelivered event would count twice). The ADD is staged and committed in one transaction
//! with the idempotency completion, so it happens exactly when the event is recorded as
//! counted: a crash before the commit counts nothing, a crash after it leaves a completed
//! record whose redeliveries replay (and an invocation whose claim was taken over cannot
//! commit at all).
//! Consumes an SQS queue fed by the bus (every event) and by the topic (OrderPlaced).

use aws_sdk_dynamodb::types::{AttributeValue, Update};
use eventkit::batch::RecordError;
use eventkit::events::EventEnvelope;
use eventkit::events::{DecodeError, EventRecord, VersionedEvent};
use eventkit::handler::{EventHandler, FromRecord, Handler, Invocation, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use eventkit::outbox::{Staged, Transactional, TransactionalLayer, TransactionalStore, UnitOfWork};
use eventkit::redelivery::RecordBackoff;
use eventkit::runtime::EventFunction;
use serde_json::Value;

/// The analytics table's name.
pub const ANALYTICS_TABLE: &str = "ANALYTICS_TABLE";

/// The per-type, per-day counters. Their writes go through the idempotency store's
/// transaction, so they need no client of their own.
#[derive(Clone, Debug)]
pub struct Counters {
    table: String,
}

impl Counters {
    /// Counters in `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
        }
    }
}

/// An event to count, whatever its type: only the envelope is read. An `OrderPlaced` (from
/// the orders topic, where producers outside the pipeline publish) must carry an `eventId` of
/// the entrance's form ([`orders::entrance::event_id`]), so that no outside producer takes a
/// derived event's key; its data stays unread (a poison order is counted, as it arrived).
/// The other events come from the bus, where only the relay puts the pipeline's events.
#[derive(Debug)]
pub struct Counted(pub EventEnvelope<Value>);

impl FromRecord for Counted {
    fn from_record(record: &EventRecord, _: &Invocation) -> Result<Self, DecodeError> {
        if record.event_type()? == orders::OrderPlaced::EVENT_TYPE {
            orders::entrance::event_id(record)?;
        }
        record.decode().map(Self)
    }
}

/// Counts one event of ours, whatever its type (only the envelope is read); returns the
/// counter's key. The day is the event's own (its envelope `time`), so a late redelivery
/// counts on the right day.
impl EventHandler for Counters {
    type Event = Counted;
    type Output = Staged<String>;
    type Error = RecordError;

    async fn handle(
        &self,
        Counted(event): Self::Event,
        _: &Invocation,
    ) -> Result<Staged<String>, RecordError> {
        let key = format!("{}#{}", event.event_type, event.time.format("%Y-%m-%d"));
        let add = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.clone()))
            .update_expression("ADD #count :one")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(RecordError::permanent)?;
        let mut work = UnitOfWork::new();
        work.update(add)?;
        tracing::info!(counter = %key, "event counted");
        Ok(work.with_output(key))
    }
}

/// The function's idempotency configuration, the one its `main` runs with: keys named
/// `analytics#<hash>` (fixed: another name would orphan every stored record and let duplicates
/// through), records kept for eventkit's default retention
/// ([`DEFAULT_RECORD_TTL`](eventkit::idempotency::DEFAULT_RECORD_TTL)), longer than any path
/// by which infra/template.yaml can deliver an event again (the infra checks' horizon test
/// reads the retention here).
pub fn idempotency_config() -> IdempotencyConfig {
    IdempotencyConfig::new("analytics")
}

/// How long a record that failed transiently stays away from its queue: the toolkit's
/// defaults (base 60 s, cap 2 h, equal jitter), which with the template's `maxReceiveCount:
/// 10` keep a healthy record out of the DLQ through a 3-hour outage (checked against the
/// template in tests/tests/infra_checks/outages.rs).
pub fn record_backoff() -> RecordBackoff {
    RecordBackoff::default()
}

/// The function's type: the counters, under the transactional idempotency layer.
pub type Function<S = DynamoDbStore> = EventFunction<Transactional<Handler<Counters>, S>>;

/// The Lambda function: every count committed with its idempotency record, keyed by eventId.
pub fn function<S: TransactionalStore>(
    counters: Counters,
    idempotency: Idempotency<S>,
) -> Function<S> {
    EventFunction::new(Handler::from_service(counters).layer(TransactionalLayer::from(idempotency)))
}
