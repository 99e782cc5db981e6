//! Payments: charges each order whose stock is reserved and reports PaymentCompleted or
//! PaymentFailed. Invoked directly (asynchronously) by an EventBridge rule on StockReserved.

mod provider;

use eventkit::batch::RecordError;
use eventkit::events::{EventBridgePublisher, EventEnvelope};
use eventkit::handler::{EventHandler, Handler, Invocation, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyLayer, Idempotent};
use eventkit::runtime::EventFunction;
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
    async fn charge(&self, reserved: EventEnvelope<StockReserved>) -> Result<Handled, RecordError> {
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

impl EventHandler for Payments {
    type Event = EventEnvelope<StockReserved>;
    type Output = Handled;
    type Error = RecordError;

    async fn handle(
        &self,
        reserved: EventEnvelope<StockReserved>,
        _: &Invocation,
    ) -> Result<Handled, RecordError> {
        self.charge(reserved).await
    }
}

/// The function's type: the payments service, under the idempotency layer.
pub type Function = EventFunction<Idempotent<Handler<Payments>, DynamoDbStore>>;

/// The Lambda function: `payments` under the idempotency layer, keyed by eventId.
pub fn function(payments: Payments, idempotency: Idempotency<DynamoDbStore>) -> Function {
    EventFunction::new(Handler::from_service(payments).layer(IdempotencyLayer::from(idempotency)))
}
