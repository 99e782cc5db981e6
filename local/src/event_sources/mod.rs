//! What invokes a function, as Lambda's services do: the SQS event source mapping
//! ([`queue_poller`]), the DynamoDB stream event source mapping ([`stream_poller`], its
//! retry rule in [`stream_batch`], its payloads in [`stream_records`]) and asynchronous
//! invocation for SNS and EventBridge ([`async_invoker`]), all feeding
//! [`FunctionHost::invoke`](super::host::FunctionHost::invoke) with the payloads of
//! [`payloads`]. Both mappings drop the records their `FilterCriteria` does not admit
//! ([`filter`]).

pub mod async_invoker;
pub mod filter;
pub mod payloads;
pub mod queue_poller;
pub mod schedule;
pub mod stream_batch;
pub mod stream_poller;
pub mod stream_records;
