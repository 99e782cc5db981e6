//! Payments: charges each order whose stock is reserved and reports PaymentCompleted or
//! PaymentFailed. Invoked directly (asynchronously) by an EventBridge rule on StockReserved.

mod provider;

use std::sync::Arc;

use eventkit::batch::RecordError;
use eventkit::events::{EventBridgePublisher, EventEnvelope};
use eventkit::handler::Handler;
use eventkit::idempotency::{DynamoDbStore, Idempotency};
use eventkit::runtime::EventFunction;
use futures::future::BoxFuture;
use orders::{wiring, PaymentCompleted, PaymentFailed, StockReserved, SOURCE};
use serde::{Deserialize, Serialize};

pub use provider::{Charge, FakeProvider};

/// What happened to the order's payment (stored by the idempotency layer, so a duplicate
/// delivery never charges twice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Handled {
    /// Charged; PaymentCompleted published.
    Charged {
        /// The provider's payment id.
        payment_id: String,
    },
    /// Declined; PaymentFailed published.
    Declined {
        /// The provider's reason.
        reason: String,
    },
}

/// The payments service.
#[derive(Debug)]
pub struct Payments {
    provider: FakeProvider,
    bus: EventBridgePublisher,
}

impl Payments {
    /// Payments through `provider`, reporting to `bus`.
    pub fn new(provider: FakeProvider, bus: EventBridgePublisher) -> Self {
        Self { provider, bus }
    }

    /// Charges one reserved order.
    pub async fn handle(
        &self,
        reserved: EventEnvelope<StockReserved>,
    ) -> Result<Handled, RecordError> {
        let order = reserved.data.0.clone();
        match self.provider.charge(&order) {
            Charge::Approved { payment_id } => {
                tracing::info!(order_id = %order.order_id, %payment_id, "payment completed");
                let data = PaymentCompleted {
                    order,
                    payment_id: payment_id.clone(),
                };
                wiring::publish(
                    &self.bus,
                    &EventEnvelope::caused_by(&reserved, SOURCE, data),
                )
                .await?;
                Ok(Handled::Charged { payment_id })
            }
            Charge::Declined { reason } => {
                tracing::warn!(order_id = %order.order_id, %reason, "payment declined");
                let data = PaymentFailed {
                    order,
                    reason: reason.clone(),
                };
                wiring::publish(
                    &self.bus,
                    &EventEnvelope::caused_by(&reserved, SOURCE, data),
                )
                .await?;
                Ok(Handled::Declined { reason })
            }
        }
    }
}

/// The function's type: its handler, its input, its idempotency store.
pub type Function = EventFunction<Handler<HandlerFn, EventEnvelope<StockReserved>, DynamoDbStore>>;

/// The handler type the function runs.
pub type HandlerFn = Box<
    dyn Fn(EventEnvelope<StockReserved>) -> BoxFuture<'static, Result<Handled, RecordError>>
        + Send
        + Sync,
>;

/// The Lambda function: `payments` under the idempotency layer, keyed by eventId.
pub fn function(payments: Arc<Payments>, idempotency: Idempotency<DynamoDbStore>) -> Function {
    let handle: HandlerFn = Box::new(move |event| {
        let payments = payments.clone();
        Box::pin(async move { payments.handle(event).await })
    });
    EventFunction::new(Handler::new(handle).with_idempotency(idempotency))
}
