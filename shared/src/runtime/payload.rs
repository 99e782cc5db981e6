//! Telling Lambda's event payloads apart, so one function can have SQS, SNS and EventBridge
//! triggers at once (as the SAM template allows) and still get typed events.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;

use crate::batch::BatchError;

/// A Lambda event this runtime serves.
#[derive(Debug)]
pub enum LambdaPayload {
    /// From an SQS event source mapping.
    Sqs(SqsEvent),
    /// From an SNS subscription (asynchronous invocation).
    Sns(SnsEvent),
    /// From an EventBridge rule (asynchronous invocation).
    EventBridge(EventBridgeEvent),
    /// From a DynamoDB stream event source mapping.
    #[cfg(feature = "dynamodb")]
    DynamoDb(aws_lambda_events::dynamodb::Event),
}

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// Records failed and the invocation must say so (direct invocations, or all failed).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The payload is none of the events this runtime serves.
    #[error("unrecognised Lambda payload: {0}")]
    Unrecognised(String),
    /// The payload looked like an event of a kind but did not parse as one.
    #[error("invalid {kind} payload: {source}")]
    Invalid {
        /// Which kind it looked like.
        kind: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(error: InvocationError) -> Self {
        match error {
            InvocationError::Batch(batch) => batch.into(),
            other => Self {
                error_type: "eventkit.InvalidPayload".into(),
                error_message: other.to_string(),
            },
        }
    }
}

impl LambdaPayload {
    /// Recognises the payload by the fields only its kind has: `Records[].eventSource`
    /// `aws:sqs` or `aws:dynamodb`, `Records[].EventSource` `aws:sns`, or a top-level
    /// `detail-type`.
    /// (Every field of the `aws_lambda_events` records is optional, so trying each type in
    /// turn would accept an SNS event as an SQS one.)
    pub fn parse(payload: Value) -> Result<Self, InvocationError> {
        let first = payload.get("Records").and_then(|records| records.get(0));
        let sqs = first
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str)
            == Some("aws:sqs");
        let sns = first
            .and_then(|r| r.get("EventSource"))
            .and_then(Value::as_str)
            == Some("aws:sns");
        let invalid = |kind| move |source| InvocationError::Invalid { kind, source };
        #[cfg(feature = "dynamodb")]
        if first
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str)
            == Some("aws:dynamodb")
        {
            return serde_json::from_value(payload)
                .map(Self::DynamoDb)
                .map_err(invalid("DynamoDB stream"));
        }
        if sqs {
            serde_json::from_value(payload)
                .map(Self::Sqs)
                .map_err(invalid("SQS"))
        } else if sns {
            serde_json::from_value(payload)
                .map(Self::Sns)
                .map_err(invalid("SNS"))
        } else if payload.get("detail-type").is_some() {
            serde_json::from_value(payload)
                .map(Self::EventBridge)
                .map_err(invalid("EventBridge"))
        } else {
            let mut shown = payload.to_string();
            shown.truncate(200);
            Err(InvocationError::Unrecognised(shown))
        }
    }
}
