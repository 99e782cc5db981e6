//! What invokes a function, as Lambda's services do: the SQS event source mapping
//! ([`queue_poller`]) and asynchronous invocation for SNS and EventBridge
//! ([`async_invoker`]), both feeding [`FunctionHost::invoke`](super::host::FunctionHost::invoke)
//! with the payloads of [`payloads`].

pub mod async_invoker;
pub mod payloads;
pub mod queue_poller;
