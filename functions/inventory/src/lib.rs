//! Inventory: reserves every line of a placed order or none (StockReserved or
//! StockReservationFailed), and puts the stock back when the order's payment fails
//! (StockReleased), the saga's compensation.
//!
//! Triggers: the `orders` queue (OrderPlaced, raw SNS delivery) and the compensation queue
//! (PaymentFailed from the bus), both SQS with partial batch responses.

mod incoming;
mod stock;
pub mod test_hold;

use eventkit::batch::RecordError;
use eventkit::events::EventEnvelope;
use eventkit::handler::{EventHandler, Handler, Invocation, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use eventkit::outbox::{
    Destination, Staged, Transactional, TransactionalLayer, TransactionalStore, UnitOfWork,
};
use eventkit::redelivery::RecordBackoff;
use eventkit::runtime::EventFunction;
use orders::{PaymentFailed, StockReleased, StockReservationFailed, StockReserved, SOURCE};
use serde::{Deserialize, Serialize};

pub use incoming::InventoryEvent;
pub use stock::{
    Release, Reservation, Stock, StockError, EXPIRATION_ATTRIBUTE, RESERVATION_LIFETIME,
};

/// The inventory table's name.
pub const INVENTORY_TABLE: &str = "INVENTORY_TABLE";

/// What the function did with an event (the idempotency layer stores it, and replays it
/// for duplicates).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Handled {
    /// Every line reserved; StockReserved staged.
    Reserved {
        /// The order.
        order_id: String,
    },
    /// Reserved already by another event for the same order; nothing staged, so the
    /// order is reported (and charged) once.
    AlreadyReserved {
        /// The order.
        order_id: String,
    },
    /// Not enough stock; StockReservationFailed staged.
    Rejected {
        /// The order.
        order_id: String,
        /// The first SKU short of stock.
        sku: String,
    },
    /// A declined order's stock put back; StockReleased staged.
    Released {
        /// The order.
        order_id: String,
    },
    /// Nothing was reserved for the declined order (or it was released already).
    NothingToRelease {
        /// The order.
        order_id: String,
    },
}

/// The inventory service: its table and the bus it reports to. Its stock changes and its
/// events are staged in one unit of work, committed with the idempotency completion.
#[derive(Debug)]
pub struct Inventory {
    stock: Stock,
    bus: Destination,
}

impl Inventory {
    /// Inventory over `stock`, reporting to `bus` (through the outbox).
    pub fn new(stock: Stock, bus: Destination) -> Self {
        Self { stock, bus }
    }

    async fn reserve(
        &self,
        placed: &EventEnvelope<orders::OrderPlaced>,
    ) -> Result<Staged<Handled>, RecordError> {
        let order = &placed.data.order();
        let mut work = UnitOfWork::new();
        match self.stock.reserve(order, &mut work).await? {
            Reservation::Reserved => {
                tracing::info!(order_id = %order.order_id, "stock reserved");
                let event = EventEnvelope::caused_by(placed, SOURCE, StockReserved(order.clone()));
                work.emit_envelope(self.bus.clone(), &event)?;
                Ok(work.with_output(Handled::Reserved {
                    order_id: order.order_id.clone(),
                }))
            }
            Reservation::AlreadyReserved => {
                // Reporting it again would make a second StockReserved under a new id (its
                // cause differs), and payments would charge the order twice.
                tracing::info!(order_id = %order.order_id, "order reserved already by another event; nothing to report");
                Ok(work.with_output(Handled::AlreadyReserved {
                    order_id: order.order_id.clone(),
                }))
            }
            Reservation::Short { sku } => {
                tracing::warn!(order_id = %order.order_id, %sku, "not enough stock; order rejected");
                let reason = format!("not enough stock of {sku}");
                let data = StockReservationFailed {
                    order_id: order.order_id.clone(),
                    sku: sku.clone(),
                    reason,
                };
                work.emit_envelope(
                    self.bus.clone(),
                    &EventEnvelope::caused_by(placed, SOURCE, data),
                )?;
                Ok(work.with_output(Handled::Rejected {
                    order_id: order.order_id.clone(),
                    sku,
                }))
            }
        }
    }

    async fn release(
        &self,
        failed: &EventEnvelope<PaymentFailed>,
    ) -> Result<Staged<Handled>, RecordError> {
        let order_id = failed.data.order.order_id.clone();
        let mut work = UnitOfWork::new();
        match self.stock.release(&order_id, &mut work).await? {
            Release::Released { items } => {
                tracing::info!(%order_id, "stock released after declined payment");
                let data = StockReleased {
                    order_id: order_id.clone(),
                    items,
                };
                work.emit_envelope(
                    self.bus.clone(),
                    &EventEnvelope::caused_by(failed, SOURCE, data),
                )?;
                Ok(work.with_output(Handled::Released { order_id }))
            }
            Release::NothingReserved => {
                tracing::warn!(%order_id, "no reservation to release");
                Ok(Staged::nothing(Handled::NothingToRelease { order_id }))
            }
        }
    }
}

impl EventHandler for Inventory {
    type Event = InventoryEvent;
    type Output = Staged<Handled>;
    type Error = RecordError;

    async fn handle(
        &self,
        event: InventoryEvent,
        _: &Invocation,
    ) -> Result<Staged<Handled>, RecordError> {
        test_hold::wait_if_held().await;
        match event {
            InventoryEvent::OrderPlaced(placed) => self.reserve(&placed).await,
            InventoryEvent::PaymentFailed(failed) => self.release(&failed).await,
        }
    }
}

/// The function's idempotency configuration, the one its `main` runs with: keys named
/// `inventory#<hash>` (fixed: another name would orphan every stored record and let duplicates
/// through), records kept for eventkit's default retention
/// ([`DEFAULT_RECORD_TTL`](eventkit::idempotency::DEFAULT_RECORD_TTL)), longer than any path
/// by which infra/template.yaml can deliver an event again (the infra checks' horizon test
/// reads the retention here).
pub fn idempotency_config() -> IdempotencyConfig {
    IdempotencyConfig::new("inventory")
}

/// How long a record that failed transiently stays away from its queue: the toolkit's
/// defaults (base 60 s, cap 2 h, equal jitter), which with the template's `maxReceiveCount:
/// 10` keep a healthy record out of the DLQ through a 3-hour outage (checked against the
/// template in tests/tests/infra_checks/outages.rs).
pub fn record_backoff() -> RecordBackoff {
    RecordBackoff::default()
}

/// The function's type: the inventory service, under the transactional idempotency layer.
pub type Function<S = DynamoDbStore> = EventFunction<Transactional<Handler<Inventory>, S>>;

/// The Lambda function: `inventory` under the transactional idempotency layer, keyed by
/// eventId (its store needs an outbox table).
pub fn function<S: TransactionalStore>(
    inventory: Inventory,
    idempotency: Idempotency<S>,
) -> Function<S> {
    EventFunction::new(
        Handler::from_service(inventory).layer(TransactionalLayer::from(idempotency)),
    )
}
