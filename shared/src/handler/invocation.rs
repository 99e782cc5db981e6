//! The invocation a record belongs to: what a handler may want to know of Lambda's context.

use crate::batch::Deadline;

/// The Lambda invocation being served: its request id, deadline, function name and X-Ray
/// trace. Handlers get it as an argument ([`EventHandler`](super::EventHandler)) or by
/// asking for it ([`FromRecord`](super::FromRecord) for `(Invocation, T)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    request_id: String,
    deadline: Deadline,
    function_name: String,
    trace_id: Option<String>,
}

impl Invocation {
    /// An invocation that must end by `deadline`, with no request id or trace, named after
    /// `AWS_LAMBDA_FUNCTION_NAME` when it is set: what a unit test needs.
    pub fn new(deadline: Deadline) -> Self {
        Self {
            request_id: String::new(),
            deadline,
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            trace_id: None,
        }
    }

    /// The invocation lambda_runtime is serving.
    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        Self {
            request_id: context.request_id.clone(),
            deadline: Deadline::from_epoch_ms(context.deadline),
            function_name: context.env_config.function_name.clone(),
            trace_id: context.xray_trace_id.clone(),
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Sets the function name.
    pub fn with_function_name(mut self, function_name: impl Into<String>) -> Self {
        self.function_name = function_name.into();
        self
    }

    /// Lambda's request id of the invocation (empty outside Lambda).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// When Lambda stops the invocation.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// The X-Ray trace header of the invocation, when tracing is on.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }
}

impl From<Deadline> for Invocation {
    fn from(deadline: Deadline) -> Self {
        Self::new(deadline)
    }
}
