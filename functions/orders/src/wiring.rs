//! What every function's `main` does the same way: read its configuration from the
//! environment (the template's `Environment.Variables`), build the idempotency layer and
//! the bus publisher once, at init.

use eventkit::breaker::{Breaker, BreakerConfig, DynamoDbBreakerStore};
use eventkit::events::{EventBridgePublisher, EventEnvelope, OutgoingEvent, PublishFailure};
use eventkit::idempotency::{DynamoDbStore, GuardedStore, Idempotency, IdempotencyConfig};
use eventkit::outbox::{Destination, Relay};
use eventkit::redelivery::{RecordBackoff, Redelivery};
use serde::Serialize;

/// The idempotency table's name.
pub const IDEMPOTENCY_TABLE: &str = "IDEMPOTENCY_TABLE";
/// The event bus's name.
pub const ORDERS_BUS_NAME: &str = "ORDERS_BUS_NAME";
/// The transactional outbox table's name (functions that stage events, the relay and the
/// sweeper). When it names the idempotency table itself, as the template does, the events
/// ride on the idempotency records the completions write
/// ([`DynamoDbStore::with_outbox_on_completions`]); any other table gets an item per event
/// ([`DynamoDbStore::with_outbox`]).
pub const OUTBOX_TABLE: &str = "OUTBOX_TABLE";

/// A required environment variable is missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set (the SAM template sets it; see infra/template.yaml)")]
pub struct MissingVariable(pub &'static str);

/// A required environment variable.
pub fn required(name: &'static str) -> Result<String, MissingVariable> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or(MissingVariable(name))
}

/// The idempotency store the functions run with: DynamoDB, every request through the
/// `idempotency-store` circuit breaker ([`STORE_BREAKER`]).
pub type Store = GuardedStore<DynamoDbStore>;

/// The name of the breaker that guards the idempotency store's requests (and the
/// completions' transactions with their writes and events).
pub const STORE_BREAKER: &str = "idempotency-store";

/// The idempotency layer on the table named by `IDEMPOTENCY_TABLE`, committing staged events
/// to the outbox named by `OUTBOX_TABLE` when it is set (on the completions themselves when
/// that is the idempotency table), configured as the function says
/// (each function's `idempotency_config`): its name prefixes every key and is fixed per
/// function, not taken from the deployed function name, which changes with the stack and
/// would change every key. Its requests go through the [`STORE_BREAKER`] breaker: while
/// DynamoDB is down, one probe per interval reaches it and every other claim fails at once,
/// to come back after the probe. The breaker's own shared state is in DynamoDB too, so during
/// that outage each environment decides alone (fail-open).
pub fn idempotency(
    config: &aws_config::SdkConfig,
    idempotency: IdempotencyConfig,
) -> Result<Idempotency<Store>, WiringError> {
    let table = required(IDEMPOTENCY_TABLE)?;
    let mut store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(config), &table);
    store = match required(OUTBOX_TABLE) {
        Ok(outbox) if outbox == table => store.with_outbox_on_completions(),
        Ok(outbox) => store.with_outbox(outbox),
        Err(_) => store,
    };
    let guarded = GuardedStore::new(store, breaker(config, STORE_BREAKER)?);
    Ok(Idempotency::new(guarded, idempotency))
}

/// The table of the circuit breakers' shared state (one item per breaker).
pub const BREAKER_TABLE: &str = "BREAKER_TABLE";

/// Overrides the breakers: `off` (they never open: the chaos run's paired run without
/// them), or `<probe>,<max probe>` in seconds (local runs on a shorter time scale). The
/// template never sets it.
pub const BREAKERS: &str = "EVENTKIT_BREAKERS";

/// The circuit breaker of dependency `name`, its open state shared through the table named
/// by `BREAKER_TABLE` (in this environment's memory alone when that is unset), with the
/// toolkit's defaults unless `EVENTKIT_BREAKERS` says otherwise, its metrics under the
/// function's service name.
pub fn breaker(config: &aws_config::SdkConfig, name: &str) -> Result<Breaker, InvalidVariable> {
    let mut breaker_config = BreakerConfig::new(name);
    if let Ok(value) = std::env::var(BREAKERS) {
        breaker_config = match value.trim() {
            "off" => breaker_config.with_threshold(u32::MAX),
            other => {
                let (probe, max) = seconds_pair(other)
                    .filter(|(probe, max)| !probe.is_zero() && !max.is_zero())
                    .ok_or_else(|| InvalidVariable {
                        name: BREAKERS,
                        value: value.clone(),
                        expected: "off, or <probe seconds>,<max probe seconds>",
                    })?;
                breaker_config
                    .with_probe_interval(probe, max)
                    .with_probe_lease(probe.max(std::time::Duration::from_secs(1)))
            }
        };
    }
    let breaker = match required(BREAKER_TABLE) {
        Ok(table) => Breaker::new(
            breaker_config,
            DynamoDbBreakerStore::new(aws_sdk_dynamodb::Client::new(config), table),
        ),
        Err(_) => Breaker::in_memory(breaker_config),
    };
    Ok(breaker.with_metrics(service_name()))
}

/// Overrides an SQS consumer's per-record backoff: `off`, or `<base>,<cap>` in seconds. For
/// runs on another time scale (the local cloud's short visibility timeouts); the template
/// never sets it, so deployed functions keep the backoff their code gives.
pub const RECORD_BACKOFF: &str = "EVENTKIT_RECORD_BACKOFF";

/// An environment variable's value that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} is {value:?}: expected {expected}")]
pub struct InvalidVariable {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What it should look like.
    pub expected: &'static str,
}

/// The SQS consumer's way of sending failed records back with a delay: `backoff` (the
/// function's own, which the infra checks hold against the template's receive counts),
/// unless `EVENTKIT_RECORD_BACKOFF` says otherwise.
pub fn redelivery(
    config: &aws_config::SdkConfig,
    backoff: RecordBackoff,
) -> Result<Redelivery, InvalidVariable> {
    let backoff = match std::env::var(RECORD_BACKOFF) {
        Ok(value) if !value.is_empty() => record_backoff(&value).ok_or(InvalidVariable {
            name: RECORD_BACKOFF,
            value,
            expected: "`off` or `<base seconds>,<cap seconds>`",
        })?,
        _ => backoff,
    };
    Ok(Redelivery::new(aws_sdk_sqs::Client::new(config)).with_backoff(backoff))
}

/// `off`, or `<base>,<cap>` in seconds.
fn record_backoff(text: &str) -> Option<RecordBackoff> {
    if text.trim() == "off" {
        return Some(RecordBackoff::off());
    }
    let (base, cap) = seconds_pair(text)?;
    Some(RecordBackoff::new(base, cap))
}

/// `<a>,<b>` in seconds (fractions allowed), as the local runs' overrides give them.
fn seconds_pair(text: &str) -> Option<(std::time::Duration, std::time::Duration)> {
    let (first, second) = text.split_once(',')?;
    let seconds = |part: &str| {
        let seconds: f64 = part.trim().parse().ok()?;
        std::time::Duration::try_from_secs_f64(seconds).ok()
    };
    Some((seconds(first)?, seconds(second)?))
}

/// The relay of the outbox table named by `OUTBOX_TABLE`, publishing to the orders bus: what
/// the relay function runs on the stream and the outbox sweeper on its schedule.
pub fn relay(config: &aws_config::SdkConfig) -> Result<Relay, WiringError> {
    Ok(Relay::new(
        aws_sdk_dynamodb::Client::new(config),
        required(OUTBOX_TABLE)?,
    )
    .with_eventbridge(aws_sdk_eventbridge::Client::new(config))
    .with_breaker(breaker(config, BUS_BREAKER)?))
}

/// The name of the breaker that guards the relay's and the sweeper's publishes to the bus.
pub const BUS_BREAKER: &str = "orders-bus";

/// A variable missing or unreadable.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// Not set.
    #[error(transparent)]
    Missing(#[from] MissingVariable),
    /// Set, but not readable.
    #[error(transparent)]
    Invalid(#[from] InvalidVariable),
}

/// The bus named by `ORDERS_BUS_NAME`, as the destination of staged events.
pub fn orders_destination() -> Result<Destination, MissingVariable> {
    Ok(Destination::event_bridge(required(ORDERS_BUS_NAME)?))
}

/// The service name of the function's metrics: `EVENTKIT_SERVICE`, else the function's
/// name (`AWS_LAMBDA_FUNCTION_NAME`), else `eventkit`.
pub fn service_name() -> String {
    std::env::var("EVENTKIT_SERVICE")
        .or_else(|_| std::env::var("AWS_LAMBDA_FUNCTION_NAME"))
        .unwrap_or_else(|_| "eventkit".into())
}

/// The publisher for the bus named by `ORDERS_BUS_NAME`. Built with the `validate` feature
/// (the test suite's builds), it checks every event against its schema before sending.
pub fn orders_bus(config: &aws_config::SdkConfig) -> Result<EventBridgePublisher, MissingVariable> {
    let bus = EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(config),
        required(ORDERS_BUS_NAME)?,
    );
    #[cfg(feature = "validate")]
    let bus = bus.with_validation(std::sync::Arc::new(crate::contracts::schema_validator()));
    Ok(bus)
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The envelope did not serialize.
    #[error("event {event_id} did not serialize: {source}")]
    Serialize {
        /// The event.
        event_id: String,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// The bus did not accept the event after the publisher's retries.
    #[error(transparent)]
    Rejected(#[from] PublishFailure),
}

/// A publish that failed may succeed on the next delivery.
impl eventkit::batch::Classify for PublishError {}

/// Publishes one event to the bus; an event still rejected after the publisher's retries is
/// an error, so the record is retried rather than the event lost.
pub async fn publish<T: Serialize>(
    bus: &EventBridgePublisher,
    event: &EventEnvelope<T>,
) -> Result<(), PublishError> {
    let outgoing =
        OutgoingEvent::from_envelope(event).map_err(|source| PublishError::Serialize {
            event_id: event.event_id.clone(),
            source,
        })?;
    Ok(bus.publish_one(&outgoing).await?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_backoff_override_is_off_or_a_base_and_a_cap() {
        assert_eq!(record_backoff("off"), Some(RecordBackoff::off()));
        assert_eq!(
            record_backoff("3, 60"),
            Some(RecordBackoff::new(
                Duration::from_secs(3),
                Duration::from_secs(60)
            ))
        );
        for bad in ["", "3", "3,x", "on", "-1,5", "NaN,5"] {
            assert_eq!(record_backoff(bad), None, "{bad}");
        }
    }
}
