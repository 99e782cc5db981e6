//! A fake payment provider that behaves like a real one where it matters for exactly-once
//! charging: it remembers every charge by the idempotency key it was requested with (in its
//! own ledger table), so a second request with the same key is answered with the first
//! one's result and charges nothing. The charge happens outside the outbox's transaction;
//! this is what makes a handler rerun (a lost completion, a claim taken over) safe.

mod decision;
mod ledger;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use eventkit::batch::{Classify, ErrorClass};
use eventkit::events::EventEnvelope;
use orders::{Order, StockReserved};

pub use decision::{decide, Charge};
pub use ledger::{LedgerEntry, MalformedEntry};

/// The key of the one charge a StockReserved event asks for: `charge:` and the event's
/// `eventId`. A rerun of the handler for that event sends the same key; StockReserved's id
/// is itself derived from its OrderPlaced's (`EventEnvelope::caused_by`), so an inventory
/// rerun that stages the event again does not change it either.
pub fn charge_key(reserved: &EventEnvelope<StockReserved>) -> String {
    format!("charge:{}", reserved.event_id)
}

/// Why the provider did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The ledger could not be reached or refused the request (retry later).
    #[error("payment provider's ledger ({table}): {detail}")]
    Unavailable {
        /// The ledger table.
        table: String,
        /// The SDK's error, with its context.
        detail: String,
    },
    /// The item recorded under the key does not read back (poison: it will not on a retry).
    #[error("payment provider's ledger entry {key} is malformed: {source}")]
    MalformedEntry {
        /// The idempotency key.
        key: String,
        /// What is wrong with it.
        source: MalformedEntry,
    },
    /// The key was used before for another order or amount, as a real provider refuses it.
    #[error("idempotency key {key} was first used for order {recorded_order} ({recorded_cents} cents), not order {order_id} ({amount_cents} cents)")]
    KeyReused {
        /// The idempotency key.
        key: String,
        /// The order recorded under it.
        recorded_order: String,
        /// The amount recorded under it.
        recorded_cents: u64,
        /// The order of this request.
        order_id: String,
        /// The amount of this request.
        amount_cents: u64,
    },
}

impl Classify for ProviderError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable { .. } => ErrorClass::Transient,
            Self::MalformedEntry { .. } | Self::KeyReused { .. } => ErrorClass::Permanent,
        }
    }
}

/// The fake provider, over its ledger table (`PaymentsLedgerTable`, key `idempotencyKey`).
#[derive(Clone, Debug)]
pub struct FakeProvider {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl FakeProvider {
    /// The provider keeping its ledger in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Charges `order` once per `idempotency_key`. The first request decides ([`decide`])
    /// and records the answer with a conditional Put; a later one (the Put's condition
    /// failing) charges nothing, counts itself with an atomic `ADD requests :one` and gets
    /// the recorded answer back. A crash after the Put leaves a recorded charge, which the
    /// rerun finds.
    pub async fn charge(
        &self,
        order: &Order,
        idempotency_key: &str,
    ) -> Result<Charge, ProviderError> {
        let entry = LedgerEntry::first(idempotency_key, order, decide(order));
        let recorded = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(entry.to_item()))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", ledger::KEY)
            .send()
            .await;
        match recorded {
            Ok(_) => Ok(entry.charge),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.repeat(order, idempotency_key).await
            }
            Err(error) => Err(self.unavailable(error)),
        }
    }

    /// A request with a key already recorded: counted, answered from the ledger.
    async fn repeat(&self, order: &Order, key: &str) -> Result<Charge, ProviderError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ledger::KEY, AttributeValue::S(key.to_string()))
            .update_expression("ADD #requests :one")
            // Never create a stub: the entry is there unless deleted meanwhile (then the
            // retry records it anew).
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#requests", ledger::REQUESTS)
            .expression_attribute_names("#key", ledger::KEY)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|error| self.unavailable(error))?;
        let item = updated.attributes.unwrap_or_default();
        let entry =
            LedgerEntry::from_item(&item).map_err(|source| ProviderError::MalformedEntry {
                key: key.to_string(),
                source,
            })?;
        if entry.order_id != order.order_id || entry.amount_cents != order.amount_cents {
            return Err(ProviderError::KeyReused {
                key: key.to_string(),
                recorded_order: entry.order_id,
                recorded_cents: entry.amount_cents,
                order_id: order.order_id.clone(),
                amount_cents: order.amount_cents,
            });
        }
        tracing::info!(idempotency_key = %key, requests = entry.requests, "charge already made; not charged again");
        Ok(entry.charge)
    }

    fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        error: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> ProviderError {
        ProviderError::Unavailable {
            table: self.table.clone(),
            detail: DisplayErrorContext(error).to_string(),
        }
    }
}
