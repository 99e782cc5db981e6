//! What a guarded call returns when it fails: the call was not made (the circuit is open), or
//! the dependency's own error, kept with its class.

use crate::batch::{Classify, ErrorClass};

/// A call not made because its dependency's circuit is open: retry after `retry_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "circuit breaker {breaker} is open: {breaker} not called; retry after {retry_at_ms} (epoch ms)"
)]
pub struct BreakerOpen {
    /// The breaker's name.
    pub breaker: String,
    /// The next probe plus jitter (epoch ms): the earliest a retry is worth it.
    pub retry_at_ms: u64,
}

/// Transient, available again after the next probe.
impl Classify for BreakerOpen {
    fn unavailable_until_ms(&self) -> Option<u64> {
        Some(self.retry_at_ms)
    }
}

/// The failure of a call guarded by [`Breaker::call`](super::Breaker::call).
///
/// `?` turns it into a [`RecordError`](crate::batch::RecordError): an open circuit becomes
/// [`RecordError::dependency_unavailable`](crate::batch::RecordError::dependency_unavailable)
/// (its record comes back after the next probe), the dependency's error keeps its class.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// The circuit is open: the call was not made.
    #[error(transparent)]
    Open(#[from] BreakerOpen),
    /// The call was made and failed (counted against the dependency if transient).
    #[error(transparent)]
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The dependency's error, when the call was made.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(error) => Some(error),
            Self::Open(_) => None,
        }
    }

    /// Whether the call was not made because the circuit is open.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open(_))
    }
}

/// Open: transient, until the next probe. The dependency's error: its own class.
impl<E: Classify> Classify for BreakerError<E> {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Open(open) => open.class(),
            Self::Inner(error) => error.class(),
        }
    }

    fn unavailable_until_ms(&self) -> Option<u64> {
        match self {
            Self::Open(open) => open.unavailable_until_ms(),
            Self::Inner(error) => error.unavailable_until_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{FailureKind, RecordError};

    #[test]
    fn an_open_circuit_becomes_a_transient_record_error_retried_after_the_probe() {
        let open: BreakerError<std::io::Error> = BreakerOpen {
            breaker: "orders-bus".into(),
            retry_at_ms: 1_700_000_060_000,
        }
        .into();
        assert_eq!(open.class(), ErrorClass::Transient);
        let error = RecordError::from(open);
        assert_eq!(error.class(), ErrorClass::Transient);
        assert_eq!(error.kind(), FailureKind::DependencyUnavailable);
        assert_eq!(error.retry_at_ms(), Some(1_700_000_060_000));
        assert!(error.to_string().contains("orders-bus"), "{error}");
    }

    #[test]
    fn the_dependencys_error_keeps_its_class_and_its_chain() {
        let bad: BreakerError<serde_json::Error> =
            BreakerError::Inner(serde_json::from_str::<u32>("x").unwrap_err());
        let error = RecordError::from(bad);
        assert_eq!(error.class(), ErrorClass::Permanent);
        assert_eq!(error.kind(), FailureKind::Error);
        assert_eq!(error.retry_at_ms(), None);
        let down = BreakerError::Inner(std::io::Error::other("connection reset"));
        let error = RecordError::from(down);
        assert_eq!(error.class(), ErrorClass::Transient);
        assert_eq!(error.to_string(), "connection reset");
    }
}
