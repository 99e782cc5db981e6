//! One invocation of a function and how it ended, as the event sources see it.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

/// An invocation waiting for (or held by) an execution environment.
#[derive(Debug)]
pub struct Invocation {
    /// Lambda's request id.
    pub request_id: String,
    /// The event, as Lambda would send it.
    pub payload: Value,
    /// The X-Ray trace header value.
    pub trace_id: String,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Outcome>,
}

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The function returned this response.
    Response(Value),
    /// The function reported an error (`/invocation/{id}/error`).
    FunctionError {
        /// Its `errorType`.
        error_type: String,
        /// Its `errorMessage`.
        message: String,
    },
    /// The process exited (or failed to start) before responding.
    Crashed(String),
    /// The function ran past its timeout and was stopped.
    TimedOut(Duration),
}

impl Outcome {
    /// Whether the function answered with a response.
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Response(_))
    }

    /// Lambda's error type for a failed invocation (`Unhandled`-style names).
    pub fn error_type(&self) -> &str {
        match self {
            Self::Response(_) => "",
            Self::FunctionError { error_type, .. } => error_type,
            Self::Crashed(_) => "Runtime.ExitError",
            Self::TimedOut(_) => "Sandbox.Timedout",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response(_) => f.write_str("success"),
            Self::FunctionError {
                error_type,
                message,
            } => write!(f, "{error_type}: {message}"),
            Self::Crashed(reason) => write!(f, "Runtime.ExitError: {reason}"),
            Self::TimedOut(timeout) => {
                write!(
                    f,
                    "Task timed out after {:.2} seconds",
                    timeout.as_secs_f64()
                )
            }
        }
    }
}
