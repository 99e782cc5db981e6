//! [`EventFunction`]: a record handler with its batch settings, run per invocation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use super::payload::{InvocationError, LambdaPayload};
use crate::batch::{BatchConfig, BatchError, BatchOutcome, BatchProcessor};
use crate::events::{records_from, DecodeOptions, EventRecord};
use crate::handler::{Handled, Invocation, RecordHandler, RecordOutput};
use crate::telemetry::with_trace_id;

/// A Lambda function: the record handler (a [`Handler`](crate::handler::Handler) and its
/// layers), how batches run, how records are built, and whether each batch reports EMF
/// metrics.
#[derive(Debug)]
pub struct EventFunction<H> {
    handler: H,
    batch: BatchProcessor,
    decode: DecodeOptions,
    metrics_service: Option<String>,
    #[cfg(feature = "sqs")]
    redelivery: Option<crate::redelivery::Redelivery>,
}

/// The longest an SQS batch's response waits for its failed records' visibility to change:
/// past it, the response returns and the records keep their queue's visibility timeout.
#[cfg(feature = "sqs")]
const SEND_BACK_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl<H> EventFunction<H> {
    /// A function around `handler`, with default batch and decode settings and no metrics.
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            batch: BatchProcessor::default(),
            decode: DecodeOptions::default(),
            metrics_service: None,
            #[cfg(feature = "sqs")]
            redelivery: None,
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

    /// Prints one CloudWatch EMF line per batch (records processed, failed, replayed, in
    /// progress; batch duration) with `service` as its dimension. Off by default, so tests
    /// and functions that do not want metrics print nothing.
    pub fn with_metrics(mut self, service: impl Into<String>) -> Self {
        self.metrics_service = Some(service.into());
        self
    }

    /// Sends the SQS records that fail transiently back to their queues with a delay that
    /// grows with their receive count (exponential, equal jitter, capped:
    /// [`RecordBackoff`](crate::redelivery::RecordBackoff)), before the batch response
    /// returns, instead of letting each come back after the queue's fixed visibility
    /// timeout. Without it (the default) nothing changes and no request is made.
    ///
    /// ```no_run
    /// # use eventkit::handler::{Handler, Json};
    /// # use eventkit::runtime::EventFunction;
    /// use eventkit::redelivery::{RecordBackoff, Redelivery};
    /// # async fn handle(_: Json<serde_json::Value>) -> Result<(), std::io::Error> { Ok(()) }
    /// # async fn example(config: aws_config::SdkConfig) {
    /// let redelivery = Redelivery::new(aws_sdk_sqs::Client::new(&config))
    ///     .with_backoff(RecordBackoff::default()); // base 60 s, cap 2 h
    /// let function = EventFunction::new(Handler::new(handle)).with_redelivery(redelivery);
    /// # }
    /// ```
    ///
    /// The defaults are chosen with the queue's `maxReceiveCount`: every wait is at least
    /// half its ceiling, so 10 receives span at least 3 h 3 min (30 s, then 1, 2, 4, 8, 16
    /// and 32 min, 1 h and 1 h) and a record failing through a 3-hour outage of a
    /// dependency is not dead-lettered; see RELIABILITY.md, "Outlasting outages". Permanent
    /// failures (poison) and records that were not attempted keep the queue's visibility
    /// timeout; a record whose key was in progress elsewhere comes back just after that
    /// claim's in-progress expiry. The role needs `sqs:GetQueueUrl` and
    /// `sqs:ChangeMessageVisibility` on the queues; if changing the visibility fails, that
    /// is logged, the response returns as it would have, and the record comes back after
    /// the visibility timeout.
    #[cfg(feature = "sqs")]
    pub fn with_redelivery(mut self, redelivery: crate::redelivery::Redelivery) -> Self {
        self.redelivery = Some(redelivery);
        self
    }

    /// The wrapped handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

impl<H> EventFunction<H>
where
    H: RecordHandler,
    H::Output: RecordOutput,
{
    /// Runs every record of `records` (and prints the batch's EMF line when metrics are on).
    pub async fn process(
        &self,
        records: Vec<EventRecord>,
        invocation: impl Into<Invocation>,
    ) -> BatchOutcome<Handled<H::Output>> {
        let invocation = &invocation.into();
        #[cfg(feature = "otel")]
        let span = crate::telemetry::spans::invocation_span(&records, invocation);
        let batch = self.handler.handle_batch(records, invocation, &self.batch);
        #[cfg(feature = "otel")]
        let batch = tracing::Instrument::instrument(batch, span.clone());
        let outcome = batch.await;
        #[cfg(feature = "otel")]
        span.record("eventkit.records_failed", outcome.failed());
        if let Some(service) = &self.metrics_service {
            outcome.metrics(|handled| handled.replayed).emit(service);
        }
        outcome
    }

    /// One invocation of any kind: the partial batch response (exactly the failed message
    /// ids) for SQS and DynamoDB streams, `null` for the asynchronous (SNS, EventBridge) invocations,
    /// whose failures are errors so that Lambda's retries and the function's DLQ apply.
    ///
    /// This is the whole invocation minus the Runtime API: a test calls it with a Lambda
    /// event (as JSON) and an [`Invocation`] (or just a [`Deadline`](crate::batch::Deadline)).
    pub async fn handle(
        &self,
        payload: Value,
        invocation: impl Into<Invocation>,
    ) -> Result<Value, InvocationError> {
        let invocation = invocation.into();
        match LambdaPayload::parse(payload)? {
            LambdaPayload::Sqs(event) => {
                let response = self.handle_sqs(&event, invocation).await?;
                serde_json::to_value(response).map_err(|source| InvocationError::Invalid {
                    kind: "SQS response",
                    source,
                })
            }
            LambdaPayload::Sns(event) => {
                self.handle_sns(&event, invocation).await?;
                Ok(Value::Null)
            }
            LambdaPayload::EventBridge(event) => {
                self.handle_eventbridge(&event, invocation).await?;
                Ok(Value::Null)
            }
            #[cfg(feature = "dynamodb")]
            LambdaPayload::DynamoDb(event) => {
                let response = self.handle_dynamodb(&event, invocation).await?;
                serde_json::to_value(response).map_err(|source| InvocationError::Invalid {
                    kind: "DynamoDB stream response",
                    source,
                })
            }
        }
    }

    /// A DynamoDB stream invocation (`FunctionResponseTypes: [ReportBatchItemFailures]`):
    /// the records run in shard order, one at a time, and the first failure stops the batch;
    /// the response names it and every record after it, so Lambda resumes the shard at the
    /// failed record and the order of changes is kept.
    #[cfg(feature = "dynamodb")]
    pub async fn handle_dynamodb(
        &self,
        event: &aws_lambda_events::dynamodb::Event,
        invocation: impl Into<Invocation>,
    ) -> Result<aws_lambda_events::streams::DynamoDbEventResponse, BatchError> {
        // One shard per batch: in order, stopped at the first failure.
        let records = records_from(event, &self.decode)
            .into_iter()
            .map(|record| record.with_message_group_id(Some("shard".into())))
            .collect();
        let outcome = self.process(records, invocation).await;
        let response = outcome.sqs_response(self.batch.config().all_failed)?;
        let mut stream_response = aws_lambda_events::streams::DynamoDbEventResponse::default();
        stream_response.batch_item_failures = response
            .batch_item_failures
            .into_iter()
            .map(|failure| {
                let mut item = aws_lambda_events::streams::DynamoDbBatchItemFailure::default();
                item.item_identifier = Some(failure.item_identifier);
                item
            })
            .collect();
        Ok(stream_response)
    }

    /// An SQS invocation: the partial batch response listing exactly the failed message ids
    /// (or an error when all failed and the policy says so).
    pub async fn handle_sqs(
        &self,
        event: &SqsEvent,
        invocation: impl Into<Invocation>,
    ) -> Result<SqsBatchResponse, BatchError> {
        let invocation = invocation.into();
        let deadline = invocation.deadline();
        let records = records_from(event, &self.decode);
        let outcome = self.process(records, invocation).await;
        #[cfg(feature = "sqs")]
        if let Some(redelivery) = &self.redelivery {
            let limit = SEND_BACK_LIMIT.min(
                deadline
                    .remaining()
                    .saturating_sub(self.batch.config().deadline_margin / 4),
            );
            if tokio::time::timeout(limit, redelivery.back_off(event, &outcome))
                .await
                .is_err()
            {
                tracing::warn!(limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX), "sending failed records back took too long; they keep their queue's visibility timeout");
            }
        }
        #[cfg(not(feature = "sqs"))]
        let _ = deadline;
        outcome.sqs_response(self.batch.config().all_failed)
    }

    /// A direct SNS invocation: an error if any record failed, so Lambda's asynchronous
    /// retries and the function's DLQ apply.
    pub async fn handle_sns(
        &self,
        event: &SnsEvent,
        invocation: impl Into<Invocation>,
    ) -> Result<(), BatchError> {
        let records = records_from(event, &self.decode);
        self.process(records, invocation)
            .await
            .require_all_succeeded()
    }

    /// A direct EventBridge invocation: an error if the event failed, so Lambda's
    /// asynchronous retries and the function's DLQ apply.
    pub async fn handle_eventbridge(
        &self,
        event: &EventBridgeEvent,
        invocation: impl Into<Invocation>,
    ) -> Result<(), BatchError> {
        let records = records_from(event, &self.decode);
        self.process(records, invocation)
            .await
            .require_all_succeeded()
    }
}

impl<H> EventFunction<H>
where
    H: RecordHandler + 'static,
    H::Output: RecordOutput,
{
    /// The function as a tower `Service<LambdaEvent<Value>>`, for
    /// `lambda_runtime::Runtime::new(..)`, so that lambda_runtime's own layers (tracing,
    /// OpenTelemetry) and the user's wrap it:
    ///
    /// ```no_run
    /// # use eventkit::handler::{Handler, Json};
    /// # use eventkit::runtime::EventFunction;
    /// # async fn handle(_: Json<serde_json::Value>) -> Result<(), std::io::Error> { Ok(()) }
    /// # async fn example() -> Result<(), lambda_runtime::Error> {
    /// let function = EventFunction::new(Handler::new(handle));
    /// lambda_runtime::Runtime::new(function.into_service())
    ///     .layer(lambda_runtime::layers::TracingLayer::new())
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn into_service(self) -> EventService<H> {
        EventService {
            function: Arc::new(self),
        }
    }

    /// Serves invocations from the Lambda Runtime API until the process is stopped, with
    /// lambda_runtime's tracing layer (the invocation's span carries its `requestId`): the
    /// short path for [`into_service`](Self::into_service).
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::Runtime::new(self.into_service())
            .layer(lambda_runtime::layers::TracingLayer::new())
            .run()
            .await
    }
}

/// An [`EventFunction`] as a tower `Service<LambdaEvent<Value>>` (see
/// [`EventFunction::into_service`]). Cheap to clone: clones share the function.
#[derive(Debug)]
pub struct EventService<H> {
    function: Arc<EventFunction<H>>,
}

impl<H> Clone for EventService<H> {
    fn clone(&self) -> Self {
        Self {
            function: self.function.clone(),
        }
    }
}

/// The future of one invocation of an [`EventService`].
pub type InvocationFuture = Pin<Box<dyn Future<Output = Result<Value, InvocationError>>>>;

impl<H> tower::Service<LambdaEvent<Value>> for EventService<H>
where
    H: RecordHandler + 'static,
    H::Output: RecordOutput,
{
    type Response = Value;
    type Error = InvocationError;
    type Future = InvocationFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<Value>) -> Self::Future {
        let function = self.function.clone();
        Box::pin(async move {
            let invocation = Invocation::from_context(&event.context);
            // Events created while the invocation runs carry its X-Ray trace.
            let trace_id = invocation.trace_id().map(str::to_string);
            let response =
                with_trace_id(trace_id, function.handle(event.payload, invocation)).await;
            // Lambda freezes the process once the response is sent: the invocation's spans
            // leave first.
            #[cfg(feature = "otel")]
            crate::telemetry::otel::flush().await;
            response
        })
    }
}
