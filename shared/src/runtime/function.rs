//! [`EventFunction`]: a [`Handler`] with its batch settings, run per invocation.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use super::payload::{InvocationError, LambdaPayload};
use crate::batch::{BatchConfig, BatchError, BatchOutcome, BatchProcessor, Deadline};
use crate::events::{
    record_from_eventbridge_with, records_from_sns_with, records_from_sqs_with, DecodeOptions,
    EventRecord,
};
use crate::handler::{Handled, RecordHandler};
use crate::telemetry::{with_trace_id, BatchMetrics};

/// A Lambda function: the record handler (usually a [`Handler`](crate::handler::Handler)), how batches run, how records are decoded, and the
/// service name its metrics carry.
#[derive(Debug)]
pub struct EventFunction<H> {
    handler: H,
    batch: BatchProcessor,
    decode: DecodeOptions,
    service: String,
}

impl<H> EventFunction<H> {
    /// A function around `handler`, with default batch settings and the service name from
    /// `EVENTKIT_SERVICE`, else `AWS_LAMBDA_FUNCTION_NAME`, else `eventkit`.
    pub fn new(handler: H) -> Self {
        let service = std::env::var("EVENTKIT_SERVICE")
            .or_else(|_| std::env::var("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or_else(|_| "eventkit".into());
        Self {
            handler,
            batch: BatchProcessor::default(),
            decode: DecodeOptions::default(),
            service,
        }
    }

    /// Sets how batches run (concurrency, FIFO and all-failed policies, deadline margin).
    pub fn with_batch_config(mut self, config: BatchConfig) -> Self {
        self.batch = BatchProcessor::new(config);
        self
    }

    /// Sets how records are built from Lambda events (body limit, raw SNS delivery).
    pub fn with_decode_options(mut self, options: DecodeOptions) -> Self {
        self.decode = options;
        self
    }

    /// Sets the service name of the metrics.
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The wrapped handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

impl<H: RecordHandler> EventFunction<H> {
    /// Runs every record of `records` and emits the batch's EMF metrics line.
    pub async fn process(
        &self,
        records: Vec<EventRecord>,
        deadline: Deadline,
    ) -> BatchOutcome<Handled<H::Output>> {
        let outcome = self
            .batch
            // Boxed: the composed future type (runtime, batch, idempotency, SDK) is otherwise
            // deep enough to overflow rustc's layout query depth in a function's `main`.
            .process(records, deadline, |record| {
                Box::pin(self.handler.handle(record, deadline))
            })
            .await;
        BatchMetrics::from_outcome(&outcome, |handled| handled.replayed).emit(&self.service);
        outcome
    }

    /// An SQS invocation: the partial batch response listing exactly the failed message ids
    /// (or an error when all failed and the policy says so).
    pub async fn handle_sqs(
        &self,
        event: &SqsEvent,
        deadline: Deadline,
    ) -> Result<SqsBatchResponse, BatchError> {
        let records = records_from_sqs_with(event, &self.decode);
        let outcome = self.process(records, deadline).await;
        outcome.sqs_response(self.batch.config().all_failed)
    }

    /// A direct SNS invocation: an error if any record failed, so Lambda's asynchronous
    /// retries and the function's DLQ apply.
    pub async fn handle_sns(&self, event: &SnsEvent, deadline: Deadline) -> Result<(), BatchError> {
        let records = records_from_sns_with(event, &self.decode);
        self.process(records, deadline)
            .await
            .require_all_succeeded()
    }

    /// A direct EventBridge invocation: an error if the event failed, so Lambda's
    /// asynchronous retries and the function's DLQ apply.
    pub async fn handle_eventbridge(
        &self,
        event: &EventBridgeEvent,
        deadline: Deadline,
    ) -> Result<(), BatchError> {
        let records = vec![record_from_eventbridge_with(event, &self.decode)];
        self.process(records, deadline)
            .await
            .require_all_succeeded()
    }

    /// One invocation of any kind: the SQS batch response for SQS, `null` for the
    /// asynchronous (SNS, EventBridge) invocations, whose failures are errors.
    pub async fn handle(
        &self,
        payload: Value,
        deadline: Deadline,
    ) -> Result<Value, InvocationError> {
        match LambdaPayload::parse(payload)? {
            LambdaPayload::Sqs(event) => {
                let response = self.handle_sqs(&event, deadline).await?;
                serde_json::to_value(response).map_err(|source| InvocationError::Invalid {
                    kind: "SQS response",
                    source,
                })
            }
            LambdaPayload::Sns(event) => {
                self.handle_sns(&event, deadline).await?;
                Ok(Value::Null)
            }
            LambdaPayload::EventBridge(event) => {
                self.handle_eventbridge(&event, deadline).await?;
                Ok(Value::Null)
            }
        }
    }

    /// Serves invocations from the Lambda Runtime API until the process is stopped: SQS,
    /// SNS and EventBridge events alike, told apart by their shape.
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        let function = &self;
        lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
            let deadline = Deadline::from_epoch_ms(event.context.deadline);
            let trace_id = event.context.xray_trace_id.clone();
            // Boxed for the same reason as the per-record future in `process`.
            with_trace_id(trace_id, Box::pin(function.handle(event.payload, deadline))).await
        }))
        .await
    }
}
