//! The W3C trace context (`traceparent`, `tracestate`) events carry from their producer to
//! their consumers, so that the consumer's spans join the producer's trace, or link to it.
//!
//! The context travels in the message (the envelope's fields, and a `traceparent` message
//! attribute where the carrier has attributes), never in a process-wide variable: a batch
//! mixes records of many traces. Written and read with OpenTelemetry's own W3C propagator,
//! so the format is the standard's, not ours. Without the feature `otel` nothing is read or
//! written and events keep whatever context they were given.

/// The message attribute (SNS, SQS) that carries an event's `traceparent` beside its body.
pub const TRACEPARENT_ATTRIBUTE: &str = "traceparent";

/// A W3C trace context as it travels in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
    pub traceparent: String,
    /// Vendor entries, when there are any.
    pub tracestate: Option<String>,
}

/// The context of the current span, for an event created now: `None` unless the feature
/// `otel` is on and the span is recorded by OpenTelemetry (export configured, the span
/// sampled or not, its context valid).
pub fn current_trace_context() -> Option<TraceContext> {
    #[cfg(feature = "otel")]
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        inject(&tracing::Span::current().context())
    }
    #[cfg(not(feature = "otel"))]
    {
        None
    }
}

/// `context`'s span as a W3C context; `None` when it has no valid span.
#[cfg(feature = "otel")]
pub(crate) fn inject(context: &opentelemetry::Context) -> Option<TraceContext> {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(context, &mut carrier);
    Some(TraceContext {
        traceparent: carrier.remove("traceparent")?,
        tracestate: carrier
            .remove("tracestate")
            .filter(|state| !state.is_empty()),
    })
}

/// The remote span context `traceparent` (and `tracestate`) name; `None` when it does not
/// parse: a malformed context costs the event its link, never the event.
#[cfg(feature = "otel")]
pub(crate) fn extract(
    traceparent: &str,
    tracestate: Option<&str>,
) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    if !is_well_formed(traceparent) {
        return None;
    }
    let mut carrier =
        std::collections::HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_string(), state.to_string());
    }
    let context = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// Whether `traceparent` has the W3C form: `version-traceid-parentid-flags` of 2, 32, 16 and
/// 2 lowercase hex digits (the SDK's parser also takes shorter ids, which the standard
/// calls invalid).
#[cfg(feature = "otel")]
fn is_well_formed(traceparent: &str) -> bool {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    parts.len() >= 4
        && parts[..4].iter().zip([2, 32, 16, 2]).all(|(part, size)| {
            part.len() == size
                && part
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_context_survives_extract_and_inject() {
        let span = extract(TRACEPARENT, Some("vendor=1")).unwrap();
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span.is_remote());
        use opentelemetry::trace::TraceContextExt;
        let context = opentelemetry::Context::new().with_remote_span_context(span);
        assert_eq!(
            inject(&context),
            Some(TraceContext {
                traceparent: TRACEPARENT.into(),
                tracestate: Some("vendor=1".into()),
            })
        );
    }

    #[test]
    fn a_malformed_context_is_none() {
        for bad in [
            "",
            "00-abc-def-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            assert_eq!(extract(bad, None), None, "{bad}");
        }
        assert_eq!(inject(&opentelemetry::Context::new()), None);
    }

    #[test]
    fn outside_any_traced_span_there_is_no_current_context() {
        assert_eq!(current_trace_context(), None);
    }
}
