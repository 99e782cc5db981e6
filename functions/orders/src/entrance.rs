//! What the pipeline admits from producers outside it.
//!
//! `OrderPlaced` is the one event that enters from outside: the checkout service (a role
//! named in the template's `ProducerRoleArns`) or, with `PublisherPrincipals`, a producer in
//! another account publishes it to the orders topic. Every other event is put on the bus by
//! the relay alone (the bus policy), from what a function of the pipeline committed. So before
//! a consumer acts on an `OrderPlaced` it checks what the pipeline cannot vouch for:
//!
//! - the `eventId` is a random UUID (version 4), the form [`EventEnvelope::new`] gives a root
//!   event. Derived events' ids are name-based (version 5, from their cause); refusing that
//!   form here means an outside producer cannot take a derived event's key in a consumer's
//!   idempotency records and have the real event dropped as its duplicate;
//! - the envelope matches the `OrderPlaced` contract (its JSON Schema, the same document the
//!   schema registry holds), whatever the producer's language.
//!
//! A refused record is a [`DecodeError`] naming it and the reason: permanent, so it ends in
//! the consumer's dead-letter queue, never half-processed.

use std::sync::LazyLock;

use eventkit::events::schema::SchemaValidator;
use eventkit::events::{DecodeError, DecodeReason, EventEnvelope, EventRecord, VersionedEvent};

use crate::contracts::OrderPlaced;

/// The OrderPlaced contract (every version it accepts), compiled once per process, on the
/// first order checked: the one event that enters from outside.
static CONTRACTS: LazyLock<SchemaValidator> =
    LazyLock::new(|| SchemaValidator::new().with::<OrderPlaced>());

/// Checks an `OrderPlaced` record from outside the pipeline (see the module's docs): its
/// `eventId`'s form and its contract, without decoding it into a type.
pub fn check(record: &EventRecord) -> Result<(), DecodeError> {
    event_id(record)?;
    CONTRACTS.validate(record.json()?).map_err(|violation| {
        record.decode_error(DecodeReason::InvalidData {
            detail: violation.to_string(),
        })
    })
}

/// Checks only the `eventId`'s form: for a consumer that reads the envelope and not the
/// order (analytics counts what arrives, its data unread), whose idempotency keys must still
/// not be taken by an outside producer.
pub fn event_id(record: &EventRecord) -> Result<(), DecodeError> {
    let json = record.json()?;
    let event_id = json
        .get("eventId")
        .and_then(|id| id.as_str())
        .unwrap_or_default();
    let random = uuid::Uuid::parse_str(event_id)
        .is_ok_and(|id| id.get_version() == Some(uuid::Version::Random));
    if !random {
        return Err(record.decode_error(DecodeReason::InvalidData {
            detail: format!(
                "eventId `{event_id}` of an {} is not a random (version 4) UUID, the form of \
                 the events that enter the pipeline",
                OrderPlaced::EVENT_TYPE
            ),
        }));
    }
    Ok(())
}

/// An `OrderPlaced` from outside the pipeline: [`check`]ed, then decoded.
pub fn order_placed(record: &EventRecord) -> Result<EventEnvelope<OrderPlaced>, DecodeError> {
    check(record)?;
    record.event()
}

#[cfg(test)]
mod tests {
    use eventkit::events::{derived_event_id, Source};
    use serde_json::{json, Value};

    use super::*;

    fn order(event_id: &str) -> Value {
        json!({
            "eventId": event_id, "eventType": "OrderPlaced", "eventVersion": 2,
            "source": "checkout", "time": "2026-12-07T10:00:00Z",
            "correlationId": event_id, "causationId": event_id,
            "data": {"orderId": "o-1", "customerId": "c-1", "customerEmail": "ada@example.com",
                     "items": [{"sku": "SKU-1", "quantity": 1}],
                     "total": {"amountCents": 1200, "currency": "EUR"}}
        })
    }

    fn record(body: &Value) -> EventRecord {
        EventRecord::new("m-1", Source::SnsViaSqs { raw: true }, body.to_string())
    }

    #[test]
    fn an_order_with_a_random_id_and_the_contracts_shape_is_admitted() {
        let id = uuid::Uuid::new_v4().to_string();
        let event = order_placed(&record(&order(&id))).expect("admitted");
        assert_eq!(event.event_id, id);
    }

    #[test]
    fn a_derived_or_made_up_event_id_is_refused_with_the_record_named() {
        let derived = derived_event_id(
            "4f1c2d3e-0000-4000-8000-000000000001",
            "StockReserved",
            "eventkit.orders",
            None,
        );
        for id in [derived.as_str(), "order-123", ""] {
            let error = check(&record(&order(id))).unwrap_err();
            assert_eq!(error.record_id, "m-1");
            assert!(
                error
                    .to_string()
                    .contains("is not a random (version 4) UUID"),
                "{error}"
            );
        }
    }

    #[test]
    fn an_order_that_breaks_its_contract_is_refused_with_what_is_wrong() {
        let mut body = order(&uuid::Uuid::new_v4().to_string());
        body["data"]["items"][0]["quantity"] = json!(-2);
        let error = check(&record(&body)).unwrap_err();
        assert!(
            error.to_string().contains("/data/items/0/quantity"),
            "{error}"
        );
    }
}
