//! Circuit breakers per dependency, their open state shared by every execution environment.
//!
//! When a dependency (the idempotency store's DynamoDB, the event bus, an HTTP payment
//! provider) is down, every record of every batch would still call it on every receive:
//! each call waits for its timeout, fails, and burns one of the record's receives. A
//! [`Breaker`] names one dependency; once it has seen the dependency fail it refuses calls
//! (and a [`BreakerLayer`] refuses whole records, unattempted) until a single probe call,
//! made by a single environment, says the dependency is back. Refused records fail transient
//! with a [`retry_at_ms`](crate::batch::RecordError::retry_at_ms) past the next probe, so
//! [`redelivery`](crate::redelivery) keeps them away until then.
//!
//! ```no_run
//! use eventkit::breaker::{Breaker, BreakerConfig, DynamoDbBreakerStore};
//!
//! # async fn example(client: aws_sdk_dynamodb::Client) {
//! let payments = Breaker::new(
//!     BreakerConfig::new("payment-provider"),
//!     DynamoDbBreakerStore::new(client, "breakers"),
//! )
//! .with_metrics("payments");
//! let receipt = payments
//!     .call(|| async { Ok::<_, std::io::Error>("charged") })
//!     .await;
//! # let _ = receipt;
//! # }
//! ```
//!
//! # States
//!
//! - **Closed**: calls go through. Failures are counted in memory, per environment: only
//!   errors of class [`Transient`](crate::batch::ErrorClass::Transient) (a permanent error is
//!   the input's fault, not the dependency's); a success resets the count; failures further
//!   apart than the failure window start it again. After a failure the environment reads the
//!   shared record (at most once per shared-check interval), so a new environment adopts a
//!   circuit another one opened after one failure, not after the threshold.
//! - **Closed → open**: at the threshold (5 consecutive by default) the environment writes
//!   an open record with the time of the next probe, conditional on no open record being
//!   there (an existing one, and its probe time, is adopted instead).
//! - **Open**: calls are refused until the next probe: the first wait is drawn between half
//!   and all of the probe interval (equal jitter, [`backoff`](crate::backoff)), each failed
//!   probe doubles it, up to a cap.
//! - **Open → half-open**: the first call after the probe time claims the probe with a
//!   conditional write of an owner token and a lease; of the environments claiming at once,
//!   exactly one wins and makes the call; the others adopt what they found and refuse.
//! - **Half-open → closed**: the probe succeeded; its owner writes the closed record,
//!   conditional on still holding the probe. The other environments learn it when their
//!   timer next fires (their claim finds the circuit closed).
//! - **Half-open → open**: the probe failed; its owner writes the next probe time, the same
//!   way. A probe that ended with a permanent error says nothing of the dependency and is
//!   handed back (the next call probes). A probe whose owner never answered (killed
//!   mid-call) is claimable again once its lease lapses.
//! - **Fail-open**: when the breaker's own store is unreachable (DynamoDB down, which is
//!   exactly when the idempotency store's breaker opens), the environment decides on its own
//!   state: it opens on its own failures, probes on its own timer, and logs that it does. A
//!   failing store never makes it refuse a call.
//!
//! # What a breaker costs in requests to its store
//!
//! - **Closed, healthy**: none.
//! - **Closed, after failures**: at most one read per environment per shared-check interval
//!   (10 s by default), and one conditional write by the environment that reaches the
//!   threshold.
//! - **Open**: nothing until the probe time; then one conditional write per environment
//!   whose timer fired (one wins) plus the single probe call to the dependency, and the
//!   winner's one conditional write of the outcome. An environment that lost learns the
//!   outcome with one more conditional write when the probe's lease lapses.
//! - Nothing else calls the dependency while the circuit is open.
//!
//! # Observability
//!
//! Each transition is a `tracing` event with the fields `breaker` and `transition`
//! (`closed_to_open`, `open_to_half_open`, `half_open_to_closed`, `half_open_to_open`,
//! `fail_open`), and a count in the breaker's EMF line ([`metrics`]: `BreakerOpened`,
//! `BreakerProbed`, `BreakerClosed`, `BreakerReopened`, `BreakerRejected`,
//! `BreakerFailOpen`, dimension `Breaker`).
//!
//! # Pieces
//!
//! - [`BreakerRecord`]: the shared state and the rules of its transitions.
//! - [`BreakerStore`]: four conditional operations; [`DynamoDbBreakerStore`] (feature
//!   `dynamodb`) and [`InMemoryBreakerStore`].
//! - [`Breaker`]: the logic above the store; [`Breaker::call`] guards a call.
//! - [`BreakerLayer`]: the gate for records.

mod circuit;
mod config;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod error;
mod layer;
pub mod metrics;
mod record;
mod store;

pub use circuit::Breaker;
pub use config::BreakerConfig;
pub use error::{BreakerError, BreakerOpen};
pub use layer::{BreakerLayer, Gated};
pub use metrics::{
    BreakerMetrics, BREAKER_CLOSED, BREAKER_DIMENSION, BREAKER_FAIL_OPEN, BREAKER_OPENED,
    BREAKER_PROBED, BREAKER_REJECTED, BREAKER_REOPENED,
};
pub use record::{probe_claimable, BreakerRecord, CircuitState};
#[cfg(feature = "dynamodb")]
pub use store::{BreakerAttributeNames, DynamoDbBreakerStore};
pub use store::{BreakerStore, BreakerStoreError, InMemoryBreakerStore, OpenOutcome, ProbeClaim};

#[cfg(test)]
mod tests;
