//! An EventBridge consumer invoked directly by a rule: each event's `detail` is an eventkit
//! envelope, decoded and upcast to the current version. A failure fails the invocation, so
//! Lambda's asynchronous retries and the function's DLQ (or on-failure destination) apply.
//! Build: `cargo build -p eventkit-lambda --example eventbridge_consumer`.
// The composed future (runtime, batch, idempotency, SDK; spans with the `otel` feature)
// nests deeper than rustc's default layout query depth (128).
#![recursion_limit = "256"]

use eventkit::batch::{Classify, ErrorClass};
use eventkit::events::{EventEnvelope, UpcastError, VersionedEvent};
use eventkit::handler::{Handler, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig, IdempotencyLayer};
use eventkit::runtime::EventFunction;
use serde::Deserialize;
use serde_json::Value;

/// Version 2 split the amount into value and currency.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentCompleted {
    order_id: String,
    amount_cents: u64,
    currency: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentCompletedV1 {
    order_id: String,
    amount_eur_cents: u64,
}

impl VersionedEvent for PaymentCompleted {
    const EVENT_TYPE: &'static str = "PaymentCompleted";
    const CURRENT_VERSION: u32 = 2;

    fn upcast(version: u32, data: Value) -> Result<Self, UpcastError> {
        match version {
            1 => {
                let v1: PaymentCompletedV1 = serde_json::from_value(data)?;
                Ok(Self {
                    order_id: v1.order_id,
                    amount_cents: v1.amount_eur_cents,
                    currency: "EUR".into(),
                })
            }
            _ => Err(UpcastError::UnknownVersion),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReceiptError {
    #[error("mail server unavailable")]
    MailServer(#[source] std::io::Error),
}

/// A mail server that is down may be up on the next attempt.
impl Classify for ReceiptError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

async fn send_receipt(payment: EventEnvelope<PaymentCompleted>) -> Result<String, ReceiptError> {
    let receipt = format!(
        "receipt for {}: {} {} (correlation {})",
        payment.data.order_id,
        payment.data.amount_cents,
        payment.data.currency,
        payment.correlation_id
    );
    if payment.data.currency.is_empty() {
        return Err(ReceiptError::MailServer(std::io::Error::other(
            "no currency",
        )));
    }
    Ok(receipt)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), "idempotency");
    let handler = Handler::new(send_receipt).layer(IdempotencyLayer::new(
        store,
        IdempotencyConfig::new("receipts"),
    ));
    EventFunction::new(handler).run().await
}
