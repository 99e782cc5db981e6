//! [`BreakerLayer`]: records refused, unattempted, while a dependency they need is down.
//!
//! The layer gates; it does not count. Which dependency a record's failure came from is
//! known only where the call is made, so the handler guards each call with
//! [`Breaker::call`], which counts it against the right breaker (counting every transient
//! failure of a record against every breaker it names would open the payment provider's
//! circuit when the bus is down). A handler that names a breaker here and never calls
//! through it leaves the breaker closed forever.

use std::sync::Arc;
use std::time::Instant;

use super::circuit::Breaker;
use super::error::BreakerOpen;
use crate::batch::{settle, BatchOutcome, BatchProcessor, RecordError};
use crate::events::EventRecord;
use crate::handler::{Handled, Invocation, RecordHandler};

/// A tower [`Layer`](tower::Layer) that refuses each record while any of its breakers is
/// open, without calling anything: the record fails transient
/// ([`FailureKind::DependencyUnavailable`](crate::batch::FailureKind::DependencyUnavailable))
/// with a [`retry_at_ms`](RecordError::retry_at_ms) past the breaker's next probe, which
/// the function's [`Redelivery`](crate::redelivery) honours.
///
/// The check is in memory and made before each record starts, so a circuit that opens in
/// the middle of a batch stops the records not yet started; a batch that arrives while a
/// circuit is open is refused whole before the layers inside it run (no idempotency claim
/// is made for it). Add it last (outermost), so that it runs first:
///
/// ```
/// use eventkit::breaker::{Breaker, BreakerConfig, BreakerLayer};
/// use eventkit::handler::{Handler, Json, RecordHandlerExt};
/// use eventkit::idempotency::{IdempotencyConfig, IdempotencyLayer, InMemoryStore};
///
/// let payments = Breaker::in_memory(BreakerConfig::new("payment-provider"));
/// let guarded = payments.clone();
/// let handler = Handler::new(move |Json(cents): Json<u64>| {
///     let payments = guarded.clone();
///     async move { payments.call(|| async { Ok::<_, std::io::Error>(cents) }).await }
/// })
/// .layer(IdempotencyLayer::new(InMemoryStore::new(), IdempotencyConfig::new("payments")))
/// .layer(BreakerLayer::new([payments]));
/// # let _ = handler;
/// ```
#[derive(Clone, Debug)]
pub struct BreakerLayer {
    breakers: Arc<[Breaker]>,
}

impl BreakerLayer {
    /// Gates records on `breakers`: the dependencies every record needs.
    pub fn new(breakers: impl IntoIterator<Item = Breaker>) -> Self {
        Self {
            breakers: breakers.into_iter().collect(),
        }
    }

    /// The breakers it checks.
    pub fn breakers(&self) -> &[Breaker] {
        &self.breakers
    }
}

impl<H> tower::Layer<H> for BreakerLayer {
    type Service = Gated<H>;

    fn layer(&self, inner: H) -> Gated<H> {
        Gated {
            inner,
            breakers: self.breakers.clone(),
        }
    }
}

/// A record handler run only while its breakers are closed (made by [`BreakerLayer`]).
#[derive(Clone, Debug)]
pub struct Gated<H> {
    inner: H,
    breakers: Arc<[Breaker]>,
}

impl<H> Gated<H> {
    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

/// The first of `breakers` that refuses a call now.
fn refusal(breakers: &[Breaker]) -> Option<BreakerOpen> {
    breakers.iter().find_map(|breaker| breaker.check().err())
}

fn gate(breakers: &[Breaker]) -> Result<(), RecordError> {
    refusal(breakers).map_or(Ok(()), |open| Err(RecordError::from(open)))
}

impl<H: RecordHandler> RecordHandler for Gated<H> {
    type Output = H::Output;

    async fn handle(
        &self,
        record: &EventRecord,
        invocation: &Invocation,
    ) -> Result<Handled<H::Output>, RecordError> {
        gate(&self.breakers)?;
        self.inner.handle(record, invocation).await
    }

    /// Refused whole while a breaker is open; otherwise the inner handler's batch (its
    /// batched claims kept), each record gated by the processor before it starts.
    async fn handle_batch(
        &self,
        records: Vec<EventRecord>,
        invocation: &Invocation,
        processor: &BatchProcessor,
    ) -> BatchOutcome<Handled<H::Output>> {
        let outcome = match refusal(&self.breakers) {
            Some(first) => refuse_all(&self.breakers, &records, first),
            None => {
                let breakers = self.breakers.clone();
                let gated = processor.with_gate(Arc::new(move |_: &EventRecord| gate(&breakers)));
                self.inner.handle_batch(records, invocation, &gated).await
            }
        };
        for breaker in self.breakers.iter() {
            breaker.flush_metrics();
        }
        outcome
    }
}

/// Every record refused, each with its own draw of the retry instant (so that they do not
/// all come back at once), none started.
fn refuse_all<O>(
    breakers: &[Breaker],
    records: &[EventRecord],
    first: BreakerOpen,
) -> BatchOutcome<O> {
    let started = Instant::now();
    let mut open = first;
    let outcomes = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            if index > 0 {
                // None only if the probe fell due meanwhile: the last refusal stands.
                if let Some(next) = refusal(breakers) {
                    open = next;
                }
            }
            settle(record, Err(RecordError::from(open.clone())))
        })
        .collect();
    BatchOutcome {
        records: outcomes,
        duration: started.elapsed(),
    }
}
