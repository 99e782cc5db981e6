//! The provider's ledger: one item per idempotency key, recording the first request's
//! answer and how many requests came with that key. It models the provider's side (as
//! Stripe keeps an `Idempotency-Key`'s first response), so it lives in a table of its own,
//! `PaymentsLedgerTable`, which nothing but the provider writes. The fault-injection run
//! reads these attributes to count charges per order.
//!
//! This ledger keeps every key for good (the table has no TTL). A real provider does not:
//! Stripe, for one, prunes an idempotency key about 24 hours after its first request, and a
//! request with a pruned key is a new charge. That day is enough wherever the function's own
//! idempotency record decides: a copy of a StockReserved whose charge completed is answered
//! from the record (kept 30 days, past every redelivery the template allows; see
//! RELIABILITY.md) and never reaches the provider. The key alone protects a rerun of the
//! handler whose completion was never written (a crash between the charge and the
//! completion, a lost completion), and Lambda's retries of it come within the function's
//! MaximumEventAgeInSeconds (one hour), inside the provider's day. What falls outside is a
//! dead letter of PaymentsDlq whose record is not COMPLETED, redriven more than a day after
//! its charge: the provider charges again. Before redriving such a message, look the order's
//! charge up at the provider (by its order id) rather than trusting the key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use orders::Order;

use super::decision::Charge;

/// The ledger table's partition key.
pub const KEY: &str = "idempotencyKey";
/// The attribute counting the requests made with one key.
pub const REQUESTS: &str = "requests";

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// One charge, as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The key the charge was requested with.
    pub idempotency_key: String,
    /// The order charged.
    pub order_id: String,
    /// The amount, in the currency's minor unit.
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The answer given to the first request, and to every later one.
    pub charge: Charge,
    /// When the first request was decided (RFC 3339).
    pub charged_at: String,
    /// How many requests came with this key (1 for the first).
    pub requests: u64,
}

/// A stored ledger item that does not read as a [`LedgerEntry`].
#[derive(Debug, thiserror::Error)]
#[error("attribute {attribute}: {problem}")]
pub struct MalformedEntry {
    /// The attribute at fault.
    pub attribute: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl LedgerEntry {
    /// The entry of a first request: `charge` decided for `order` now.
    pub fn first(idempotency_key: &str, order: &Order, charge: Charge) -> Self {
        Self {
            idempotency_key: idempotency_key.to_string(),
            order_id: order.order_id.clone(),
            amount_cents: order.amount_cents,
            currency: order.currency.clone(),
            charge,
            charged_at: chrono::Utc::now().to_rfc3339(),
            requests: 1,
        }
    }

    /// The item: exactly `idempotencyKey`, `orderId`, `amountCents`, `currency`, `outcome`,
    /// `paymentId` (approved) or `reason` (declined), `chargedAt`, `requests`.
    pub fn to_item(&self) -> Item {
        let s = |value: &str| AttributeValue::S(value.to_string());
        let n = |value: u64| AttributeValue::N(value.to_string());
        let mut item = Item::from([
            (KEY.to_string(), s(&self.idempotency_key)),
            ("orderId".to_string(), s(&self.order_id)),
            ("amountCents".to_string(), n(self.amount_cents)),
            ("currency".to_string(), s(&self.currency)),
            ("chargedAt".to_string(), s(&self.charged_at)),
            (REQUESTS.to_string(), n(self.requests)),
        ]);
        let (outcome, detail) = match &self.charge {
            Charge::Approved { payment_id } => ("approved", ("paymentId", payment_id)),
            Charge::Declined { reason } => ("declined", ("reason", reason)),
        };
        item.insert("outcome".into(), s(outcome));
        item.insert(detail.0.into(), s(detail.1));
        item
    }

    /// Reads a stored item back.
    pub fn from_item(item: &Item) -> Result<Self, MalformedEntry> {
        let charge = match text(item, "outcome")?.as_str() {
            "approved" => Charge::Approved {
                payment_id: text(item, "paymentId")?,
            },
            "declined" => Charge::Declined {
                reason: text(item, "reason")?,
            },
            other => {
                return Err(MalformedEntry {
                    attribute: "outcome",
                    problem: format!("{other:?} is neither \"approved\" nor \"declined\""),
                })
            }
        };
        Ok(Self {
            idempotency_key: text(item, KEY)?,
            order_id: text(item, "orderId")?,
            amount_cents: number(item, "amountCents")?,
            currency: text(item, "currency")?,
            charge,
            charged_at: text(item, "chargedAt")?,
            requests: number(item, REQUESTS)?,
        })
    }
}

fn text(item: &Item, attribute: &'static str) -> Result<String, MalformedEntry> {
    match item.get(attribute) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        Some(other) => Err(MalformedEntry {
            attribute,
            problem: format!("not a string: {other:?}"),
        }),
        None => Err(MalformedEntry {
            attribute,
            problem: "missing".into(),
        }),
    }
}

fn number(item: &Item, attribute: &'static str) -> Result<u64, MalformedEntry> {
    match item.get(attribute) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| MalformedEntry {
            attribute,
            problem: format!("{value} is not a whole number"),
        }),
        Some(other) => Err(MalformedEntry {
            attribute,
            problem: format!("not a number: {other:?}"),
        }),
        None => Err(MalformedEntry {
            attribute,
            problem: "missing".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order {
            order_id: "o-1".into(),
            customer_id: "c-1".into(),
            customer_email: "a@example.com".into(),
            items: vec![],
            amount_cents: 4999,
            currency: "EUR".into(),
        }
    }

    #[test]
    fn an_entry_is_exactly_the_documented_attributes_and_reads_back() {
        let approved = Charge::Approved {
            payment_id: "pay-o-1".into(),
        };
        let entry = LedgerEntry::first("charge:e-1", &order(), approved);
        let item = entry.to_item();
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "amountCents",
                "chargedAt",
                "currency",
                "idempotencyKey",
                "orderId",
                "outcome",
                "paymentId",
                "requests"
            ]
        );
        assert_eq!(item["outcome"], AttributeValue::S("approved".into()));
        assert_eq!(item["requests"], AttributeValue::N("1".into()));
        assert_eq!(LedgerEntry::from_item(&item).unwrap(), entry);

        let declined = Charge::Declined {
            reason: "card declined by issuer".into(),
        };
        let item = LedgerEntry::first("charge:e-2", &order(), declined).to_item();
        assert_eq!(item["outcome"], AttributeValue::S("declined".into()));
        assert!(item.contains_key("reason") && !item.contains_key("paymentId"));
    }

    #[test]
    fn a_malformed_item_names_the_attribute_at_fault() {
        let entry = LedgerEntry::first(
            "charge:e-1",
            &order(),
            Charge::Declined { reason: "x".into() },
        );
        let mut item = entry.to_item();
        item.insert("outcome".into(), AttributeValue::S("maybe".into()));
        let error = LedgerEntry::from_item(&item).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"attribute outcome: "maybe" is neither "approved" nor "declined""#
        );
        let mut item = entry.to_item();
        item.insert(REQUESTS.into(), AttributeValue::S("two".into()));
        let error = LedgerEntry::from_item(&item).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"attribute requests: not a number: S("two")"#
        );
    }
}
