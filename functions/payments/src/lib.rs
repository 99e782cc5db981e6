//! Payments: charges each order whose stock is reserved and reports PaymentCompleted or
//! PaymentFailed. Invoked directly (asynchronously) by an EventBridge rule on StockReserved.

mod provider;

use eventkit::batch::RecordError;
use eventkit::breaker::{Breaker, BreakerConfig, BreakerLayer, Gated};
use eventkit::events::EventEnvelope;
use eventkit::handler::{EventHandler, Handler, Invocation, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, Idempotency, IdempotencyConfig};
use eventkit::outbox::{
    Destination, Staged, Transactional, TransactionalLayer, TransactionalStore, UnitOfWork,
};
use eventkit::redelivery::RecordBackoff;
use eventkit::runtime::EventFunction;
use orders::{PaymentCompleted, PaymentFailed, StockReserved, SOURCE};
use serde::{Deserialize, Serialize};

pub use provider::{charge_key, Charge, FakeProvider, LedgerEntry, ProviderError};

/// The payment provider's ledger table's name (`PaymentsLedgerTable`).
pub const LEDGER_TABLE: &str = "LEDGER_TABLE";

/// Where the fake provider's requests go, when not to DynamoDB's own endpoint. A real
/// provider has a URL of its own, and can be down while DynamoDB is up; the chaos run puts
/// the provider behind a fault proxy of its own through this variable to take it down
/// alone. The template never sets it.
pub const PROVIDER_ENDPOINT: &str = "PAYMENT_PROVIDER_ENDPOINT";

/// The client the fake provider talks to its ledger with: `config`'s DynamoDB client, at
/// [`PROVIDER_ENDPOINT`] when that is set.
pub fn provider_client(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(config);
    if let Ok(endpoint) = std::env::var(PROVIDER_ENDPOINT) {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// What happened to the order's payment (stored by the idempotency layer, so a duplicate
/// delivery never charges twice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Handled {
    /// Charged; PaymentCompleted staged.
    Charged {
        /// The provider's payment id.
        payment_id: String,
    },
    /// Declined; PaymentFailed staged.
    Declined {
        /// The provider's reason.
        reason: String,
    },
}

/// The payments service. The charge happens at the provider, outside any transaction, under
/// an idempotency key derived from the StockReserved event ([`charge_key`]), so a rerun is
/// not charged again; its event is staged and committed with the idempotency completion.
#[derive(Debug)]
pub struct Payments {
    provider: FakeProvider,
    breaker: Breaker,
    bus: Destination,
}

impl Payments {
    /// Payments through `provider`, reporting to `bus` (through the outbox).
    /// Its calls to the provider go through a breaker of this environment alone; give it the
    /// shared one with [`with_breaker`](Self::with_breaker).
    pub fn new(provider: FakeProvider, bus: Destination) -> Self {
        Self {
            provider,
            breaker: Breaker::in_memory(BreakerConfig::new(PROVIDER_BREAKER)),
            bus,
        }
    }

    /// Charges go through `breaker` (named [`PROVIDER_BREAKER`], its open state shared by
    /// every environment): while the provider is down, one probe per interval calls it, and
    /// the other records wait in their queue until the probe.
    pub fn with_breaker(mut self, breaker: Breaker) -> Self {
        self.breaker = breaker;
        self
    }

    /// The provider's breaker, which the function's [`BreakerLayer`] checks before each
    /// record.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Charges one reserved order.
    async fn charge(
        &self,
        reserved: EventEnvelope<StockReserved>,
    ) -> Result<Staged<Handled>, RecordError> {
        let order = reserved.data.0.clone();
        let mut work = UnitOfWork::new();
        let key = charge_key(&reserved);
        let charged = self
            .breaker
            .call(|| self.provider.charge(&order, &key))
            .await?;
        match charged {
            Charge::Approved { payment_id } => {
                tracing::info!(order_id = %order.order_id, %payment_id, "payment completed");
                let data = PaymentCompleted {
                    order,
                    payment_id: payment_id.clone(),
                };
                work.emit_envelope(
                    self.bus.clone(),
                    &EventEnvelope::caused_by(&reserved, SOURCE, data),
                )?;
                Ok(work.with_output(Handled::Charged { payment_id }))
            }
            Charge::Declined { reason } => {
                tracing::warn!(order_id = %order.order_id, %reason, "payment declined");
                let data = PaymentFailed {
                    order,
                    reason: reason.clone(),
                };
                work.emit_envelope(
                    self.bus.clone(),
                    &EventEnvelope::caused_by(&reserved, SOURCE, data),
                )?;
                Ok(work.with_output(Handled::Declined { reason }))
            }
        }
    }
}

impl EventHandler for Payments {
    type Event = EventEnvelope<StockReserved>;
    type Output = Staged<Handled>;
    type Error = RecordError;

    async fn handle(
        &self,
        reserved: EventEnvelope<StockReserved>,
        _: &Invocation,
    ) -> Result<Staged<Handled>, RecordError> {
        self.charge(reserved).await
    }
}

/// The function's idempotency configuration, the one its `main` runs with: keys named
/// `payments#<hash>` (fixed: another name would orphan every stored record and let duplicates
/// through), records kept for eventkit's default retention
/// ([`DEFAULT_RECORD_TTL`](eventkit::idempotency::DEFAULT_RECORD_TTL)), longer than any path
/// by which infra/template.yaml can deliver an event again (the infra checks' horizon test
/// reads the retention here).
pub fn idempotency_config() -> IdempotencyConfig {
    IdempotencyConfig::new("payments")
}

/// How long a record that failed transiently stays away from its queue: the toolkit's
/// defaults (base 60 s, cap 2 h, equal jitter), which with the template's `maxReceiveCount:
/// 10` keep a healthy record out of the DLQ through a 3-hour outage (checked against the
/// template in tests/tests/infra_checks/outages.rs).
pub fn record_backoff() -> RecordBackoff {
    RecordBackoff::default()
}

/// The name of the payment provider's circuit breaker (its item in the breakers' table,
/// its `Breaker` metric dimension, the template's alarm).
pub const PROVIDER_BREAKER: &str = "payment-provider";

/// The function's type: the payments service, under the transactional idempotency layer,
/// gated by the provider's breaker.
pub type Function<S = DynamoDbStore> = EventFunction<Gated<Transactional<Handler<Payments>, S>>>;

/// The Lambda function: `payments` under the transactional idempotency layer, keyed by
/// eventId (its store needs an outbox table); while the provider's breaker is open, records
/// are not started (no claim, no charge) and go back to their queue until its next probe.
pub fn function<S: TransactionalStore>(
    payments: Payments,
    idempotency: Idempotency<S>,
) -> Function<S> {
    let breaker = payments.breaker().clone();
    EventFunction::new(
        Handler::from_service(payments)
            .layer(TransactionalLayer::from(idempotency))
            .layer(BreakerLayer::new([breaker])),
    )
}
