//! The spans of the steps inside a record (feature `otel`): the idempotency claim, the
//! handler, the completion (with its outbox commit), so that a trace shows where a record's
//! time went, and whether it was replayed.
//!
//! A step span exists only while the record is traced (its span has an OpenTelemetry
//! context: the feature on, export configured): otherwise each is `Span::none()`, so a
//! function that exports nothing pays one look at the current span per step, and its log
//! lines stay as they were. Without the feature every function here is a no-op.

#[cfg(not(feature = "otel"))]
use tracing::Span;

/// What the claim of a record's idempotency key found: `claimed` (the handler runs),
/// `replayed` (a stored result answers), `in_progress` (another delivery holds it) or an
/// error's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClaimOutcome(pub &'static str);

impl ClaimOutcome {
    pub(crate) const CLAIMED: Self = Self("claimed");
    pub(crate) const REPLAYED: Self = Self("replayed");
    pub(crate) const IN_PROGRESS: Self = Self("in_progress");
    pub(crate) const FAILED: Self = Self("failed");
}

#[cfg(feature = "otel")]
mod traced {
    use opentelemetry::trace::{Status, TraceContextExt};
    use opentelemetry::KeyValue;
    use tracing::field::Empty;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::ClaimOutcome;

    /// Whether the current span is recorded by OpenTelemetry.
    fn traced_now() -> bool {
        may_be_traced(&Span::current())
    }

    /// Whether `span` is recorded by OpenTelemetry, asked cheaply: with this process's
    /// export set up ([`otel::layer`](super::super::otel::layer)) every enabled span is;
    /// otherwise (a subscriber of the program's own, the tests') whether the span has an
    /// OpenTelemetry context. (#34: building that context on every step, to ask, was a
    /// twentieth of what export cost.)
    fn may_be_traced(span: &Span) -> bool {
        if super::super::otel::is_exporting() {
            return !span.is_disabled();
        }
        super::super::spans::traced(span)
    }

    pub(crate) fn claim(key: &str) -> Span {
        if !traced_now() {
            return Span::none();
        }
        tracing::info_span!(
            "idempotency claim",
            otel.name = "idempotency claim",
            otel.kind = "client",
            eventkit.idempotency.key = key,
            eventkit.idempotency.batched = false,
            eventkit.idempotency.outcome = Empty,
            eventkit.idempotency.replayed = Empty,
        )
    }

    /// A claim the batch's one request made: what it found goes on the record's own span
    /// (the current one) as attributes, not on a span of its own, which would last no time
    /// (the batch's claim span shows the request).
    pub(crate) fn claimed_in_batch(key: &str, outcome: ClaimOutcome) {
        let record = Span::current();
        if !may_be_traced(&record) {
            return;
        }
        // One look-up of the record's OpenTelemetry span for all its attributes.
        let context = record.context();
        let span = context.span();
        span.set_attributes([
            KeyValue::new("eventkit.idempotency.key", key.to_string()),
            KeyValue::new("eventkit.idempotency.batched", true),
            KeyValue::new("eventkit.idempotency.outcome", outcome.0),
            KeyValue::new(
                "eventkit.idempotency.replayed",
                outcome == ClaimOutcome::REPLAYED,
            ),
        ]);
        if outcome == ClaimOutcome::FAILED {
            span.set_status(Status::error("the idempotency store failed"));
        }
    }

    pub(crate) fn claim_batch(claims: usize) -> Span {
        if !traced_now() {
            return Span::none();
        }
        tracing::info_span!(
            "idempotency claim batch",
            otel.name = "idempotency claim batch",
            otel.kind = "client",
            eventkit.idempotency.claims = claims,
        )
    }

    pub(crate) fn claimed(span: &Span, outcome: ClaimOutcome) {
        if span.is_none() {
            return;
        }
        span.record("eventkit.idempotency.outcome", outcome.0);
        span.record(
            "eventkit.idempotency.replayed",
            outcome == ClaimOutcome::REPLAYED,
        );
        if outcome == ClaimOutcome::FAILED {
            span.set_status(Status::error("the idempotency store failed"));
        }
    }

    pub(crate) fn handler(event_type: Option<&str>) -> Span {
        if !traced_now() {
            return Span::none();
        }
        tracing::info_span!(
            "handler",
            otel.name = format!("handle {}", event_type.unwrap_or("record")),
            otel.kind = "internal",
            eventkit.outcome = Empty,
        )
    }

    pub(crate) fn handled<T, E: std::fmt::Display>(span: &Span, result: &Result<T, E>) {
        if span.is_none() {
            return;
        }
        match result {
            Ok(_) => {
                span.record("eventkit.outcome", "ok");
            }
            Err(error) => {
                span.record("eventkit.outcome", "failed");
                span.set_status(Status::error(error.to_string()));
            }
        }
    }

    pub(crate) fn complete(key: &str, events: usize) -> Span {
        if !traced_now() {
            return Span::none();
        }
        // One write: the completion and the unit of work's events go in one transaction,
        // so the span is the outbox commit when it carries events.
        let name = if events > 0 {
            "outbox commit"
        } else {
            "idempotency complete"
        };
        tracing::info_span!(
            "idempotency complete",
            otel.name = name,
            otel.kind = "client",
            eventkit.idempotency.key = key,
            eventkit.outbox.events = events,
            eventkit.idempotency.outcome = Empty,
        )
    }

    pub(crate) fn complete_batch(completions: usize, events: usize) -> Span {
        if !traced_now() {
            return Span::none();
        }
        let name = if events > 0 {
            "outbox commit batch"
        } else {
            "idempotency complete batch"
        };
        tracing::info_span!(
            "idempotency complete batch",
            otel.name = name,
            otel.kind = "client",
            eventkit.idempotency.completions = completions,
            eventkit.outbox.events = events,
        )
    }

    pub(crate) fn completed_in_batch(outcome: &'static str, ok: bool) {
        let record = Span::current();
        if !may_be_traced(&record) {
            return;
        }
        let context = record.context();
        let span = context.span();
        span.set_attribute(KeyValue::new("eventkit.idempotency.completion", outcome));
        if !ok {
            span.set_status(Status::error(outcome));
        }
    }

    pub(crate) fn completed(span: &Span, outcome: &'static str, ok: bool) {
        if span.is_none() {
            return;
        }
        span.record("eventkit.idempotency.outcome", outcome);
        if !ok {
            span.set_status(Status::error(outcome));
        }
    }
}

#[cfg(feature = "otel")]
pub(crate) use traced::{
    claim, claim_batch, claimed, claimed_in_batch, complete, complete_batch, completed,
    completed_in_batch, handled, handler,
};

/// The span of the claim of `key`, by a request of its own (a batch's claims are told with
/// [`claimed_in_batch`]).
#[cfg(not(feature = "otel"))]
pub(crate) fn claim(_key: &str) -> Span {
    Span::none()
}

/// Records what the batch's claim of `key` found, on the record's span.
#[cfg(not(feature = "otel"))]
pub(crate) fn claimed_in_batch(_key: &str, _outcome: ClaimOutcome) {}

/// The span of one request claiming `claims` keys.
#[cfg(not(feature = "otel"))]
pub(crate) fn claim_batch(_claims: usize) -> Span {
    Span::none()
}

/// Records what the claim found.
#[cfg(not(feature = "otel"))]
pub(crate) fn claimed(_span: &Span, _outcome: ClaimOutcome) {}

/// The span the user's handler runs in (the events it creates carry its context).
#[cfg(not(feature = "otel"))]
pub(crate) fn handler(_event_type: Option<&str>) -> Span {
    Span::none()
}

/// Records the handler's result.
#[cfg(not(feature = "otel"))]
pub(crate) fn handled<T, E: std::fmt::Display>(_span: &Span, _result: &Result<T, E>) {}

/// The span of the completion of `key`, with the unit of work's `events` (the outbox
/// commit).
#[cfg(not(feature = "otel"))]
pub(crate) fn complete(_key: &str, _events: usize) -> Span {
    Span::none()
}

/// The span of one request completing `completions` records (their `events` with them).
#[cfg(not(feature = "otel"))]
pub(crate) fn complete_batch(_completions: usize, _events: usize) -> Span {
    Span::none()
}

/// Records how a completion that shared its batch's request ended, on the record's span.
#[cfg(not(feature = "otel"))]
pub(crate) fn completed_in_batch(_outcome: &'static str, _ok: bool) {}

/// Records how the completion ended.
#[cfg(not(feature = "otel"))]
pub(crate) fn completed(_span: &Span, _outcome: &'static str, _ok: bool) {}
