//! eventkit as a function uses it (see the README): a typed handler under the idempotency
//! layer on DynamoDB, run by `EventFunction::handle`, with the functions' logging; and the
//! same handler staging its work through the outbox's unit of work under the transactional
//! layer, as the order pipeline's functions do.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use eventkit::batch::Deadline;
use eventkit::batch::RecordError;
use eventkit::events::{EventEnvelope, VersionedEvent};
use eventkit::handler::{Handler, RecordHandler, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig, IdempotencyLayer};
use eventkit::outbox::{Destination, Staged, TransactionalLayer, UnitOfWork};
use eventkit::runtime::EventFunction;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{failures_in, Contender};

/// The time left in each invocation, as the peers are told too.
const INVOCATION_TIME: Duration = Duration::from_secs(60);

// Every field is decoded, as a real handler's would be, though the function reads only some.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderPlaced {
    order_id: String,
    customer_id: String,
    items: Vec<Item>,
    total_cents: u64,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Item {
    sku: String,
    quantity: u64,
}

impl VersionedEvent for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const CURRENT_VERSION: u32 = 1;
}

/// The event the transactional contender stages for each order.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StockReserved {
    order_id: String,
    units: u64,
}

impl VersionedEvent for StockReserved {
    const EVENT_TYPE: &'static str = "StockReserved";
    const CURRENT_VERSION: u32 = 1;
}

/// What every contender's function returns, and the idempotency layer stores.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reserved {
    order_id: String,
    units: u64,
    reserved: bool,
}

struct Eventkit<H> {
    function: EventFunction<H>,
    runs: Arc<AtomicUsize>,
}

impl<H> Contender for Eventkit<H>
where
    H: RecordHandler,
    H::Output: eventkit::handler::RecordOutput,
{
    async fn invoke(&self, payload: &str) -> Result<usize> {
        let payload: Value = serde_json::from_str(payload).context("parsing the event")?;
        let response = self
            .function
            .handle(payload, Deadline::after(INVOCATION_TIME))
            .await
            .context("the invocation failed")?;
        // As the runtime wrapper does after every invocation: nothing when export is off.
        eventkit::telemetry::otel::flush().await;
        // Lambda's runtime serializes the response; so does every contender.
        let text = serde_json::to_string(&response)?;
        std::hint::black_box(text);
        Ok(failures_in(&response))
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::Relaxed)
    }
}

/// The eventkit contender on `table`, with the SDK configured from the environment; with
/// `batched` claims (the layer's default) or per record.
pub async fn contender(table: &str, batched: bool) -> impl Contender {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let idempotency = IdempotencyLayer::new(
        store,
        IdempotencyConfig::new("bench").with_batched_claims(batched),
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let handler = Handler::new(move |order: EventEnvelope<OrderPlaced>| {
        counter.fetch_add(1, Ordering::Relaxed);
        let units = order.data.items.iter().map(|item| item.quantity).sum();
        async move {
            Ok::<_, std::io::Error>(Reserved {
                order_id: order.data.order_id,
                units,
                reserved: true,
            })
        }
    });
    Eventkit {
        // With its EMF line per batch, as a deployed function has.
        function: EventFunction::new(handler.layer(idempotency)).with_metrics("bench"),
        runs,
    }
}

/// What the transactional contenders stage per order, and where the events go.
#[derive(Clone, Copy, Debug)]
pub enum Staging {
    /// The reservation (a put) and its `StockReserved` event, on the completion.
    WriteAndEvent,
    /// The `StockReserved` event alone, on the completion: a handler that only emits.
    EventOnly,
    /// The reservation and its event as an item of an outbox table (here the same table).
    WriteAndOutboxItem,
}

/// The transactional contender on `table`: per record, the claim (batched), then the
/// completion committed with what `staging` says (the order's reservation, a put, and one
/// `StockReserved` event, on the completion or as an outbox item in the same table: its
/// items' ids cannot meet the idempotency keys'), the batch's records sharing transactions.
/// Nothing relays the events: what is measured is the handler's path.
pub async fn transactional(table: &str, staging: Staging) -> impl Contender {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let store = match staging {
        Staging::WriteAndOutboxItem => store.with_outbox(table),
        Staging::WriteAndEvent | Staging::EventOnly => store.with_outbox_on_completions(),
    };
    let layer = TransactionalLayer::new(store, IdempotencyConfig::new("bench"));
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let table = table.to_string();
    let handler = Handler::new(move |order: EventEnvelope<OrderPlaced>| {
        counter.fetch_add(1, Ordering::Relaxed);
        let table = table.clone();
        async move { stage_reservation(&table, &order, staging) }
    });
    Eventkit {
        function: EventFunction::new(handler.layer(layer)).with_metrics("bench"),
        runs,
    }
}

/// The reservation and its event, staged.
fn stage_reservation(
    table: &str,
    order: &EventEnvelope<OrderPlaced>,
    staging: Staging,
) -> Result<Staged<Reserved>, RecordError> {
    use aws_sdk_dynamodb::types::{AttributeValue, Put};
    let units: u64 = order.data.items.iter().map(|item| item.quantity).sum();
    let order_id = order.data.order_id.clone();
    let mut work = UnitOfWork::new();
    if let Staging::WriteAndEvent | Staging::WriteAndOutboxItem = staging {
        work.put(
            Put::builder()
                .table_name(table)
                .item("id", AttributeValue::S(format!("reservation#{order_id}")))
                .item("units", AttributeValue::N(units.to_string()))
                .build()
                .map_err(RecordError::permanent)?,
        )?;
    }
    let reserved = EventEnvelope::caused_by(
        order,
        "bench",
        StockReserved {
            order_id: order_id.clone(),
            units,
        },
    );
    work.emit_envelope(Destination::event_bridge("bench-bus"), &reserved)?;
    Ok(work.with_output(Reserved {
        order_id,
        units,
        reserved: true,
    }))
}
