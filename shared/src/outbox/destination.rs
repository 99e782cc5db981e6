//! Where a staged event goes, as the outbox item names it.

use std::fmt;
use std::str::FromStr;

use crate::events::Carrier;

/// Where the relay publishes an outbox event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// An EventBridge bus, by name or ARN.
    EventBridge(String),
    /// An SNS topic, by ARN.
    Sns(String),
    /// An SQS queue, by URL.
    Sqs(String),
}

impl Destination {
    /// The EventBridge bus `bus` (name or ARN).
    pub fn event_bridge(bus: impl Into<String>) -> Self {
        Self::EventBridge(bus.into())
    }

    /// The SNS topic `topic_arn`.
    pub fn sns(topic_arn: impl Into<String>) -> Self {
        Self::Sns(topic_arn.into())
    }

    /// The SQS queue `queue_url`.
    pub fn sqs(queue_url: impl Into<String>) -> Self {
        Self::Sqs(queue_url.into())
    }

    /// What carries its events there: an event for it keeps that carrier's limit
    /// ([`Carrier::max_bytes`]), or it is refused when staged.
    pub fn carrier(&self) -> Carrier {
        match self {
            Self::EventBridge(_) => Carrier::EventBridge,
            Self::Sns(_) => Carrier::Sns,
            Self::Sqs(_) => Carrier::Sqs,
        }
    }
}

/// `eventbridge:<bus>`, `sns:<topic ARN>` or `sqs:<queue URL>`: the outbox item's
/// `destination` attribute.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventBridge(bus) => write!(f, "eventbridge:{bus}"),
            Self::Sns(topic) => write!(f, "sns:{topic}"),
            Self::Sqs(queue) => write!(f, "sqs:{queue}"),
        }
    }
}

/// A `destination` attribute that names no known kind, or names nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("destination {0:?} is not `eventbridge:<bus>`, `sns:<topic ARN>` or `sqs:<queue URL>`")]
pub struct UnknownDestination(pub String);

impl FromStr for Destination {
    type Err = UnknownDestination;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownDestination(text.to_string());
        let (kind, target) = text.split_once(':').ok_or_else(unknown)?;
        if target.trim().is_empty() {
            return Err(unknown());
        }
        match kind {
            "eventbridge" => Ok(Self::EventBridge(target.into())),
            "sns" => Ok(Self::Sns(target.into())),
            "sqs" => Ok(Self::Sqs(target.into())),
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_attribute_form() {
        for destination in [
            Destination::event_bridge("orders"),
            Destination::sns("arn:aws:sns:us-east-1:000000000000:topic"),
            Destination::sqs("http://127.0.0.1:4566/queue/us-east-1/000000000000/q"),
        ] {
            assert_eq!(destination.to_string().parse(), Ok(destination));
        }
        assert_eq!(
            "eventbridge:arn:aws:events:us-east-1:1:event-bus/b".parse(),
            Ok(Destination::event_bridge(
                "arn:aws:events:us-east-1:1:event-bus/b"
            ))
        );
        for bad in ["kinesis:stream", "eventbridge:", "orders", ""] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
    }
}
