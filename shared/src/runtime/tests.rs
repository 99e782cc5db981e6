//! The invocation wrappers on Lambda's own JSON payloads (the Runtime API left out).

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::{json, Value};

use super::EventFunction;
use crate::batch::{AllFailedPolicy, BatchConfig, BatchError, Deadline, RecordError};
use crate::handler::{Handler, Json};

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

/// Succeeds for `{"ok": true}` bodies, fails permanently otherwise.
async fn judge(Json(body): Json<Value>) -> Result<bool, RecordError> {
    if body["ok"] == json!(true) {
        Ok(true)
    } else {
        Err(RecordError::permanent("not ok"))
    }
}

fn sns_event(messages: &[Value]) -> SnsEvent {
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            json!({
                "EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:000000000000:orders:sub",
                "Sns": {
                    "Type": "Notification", "MessageId": format!("sns-{i}"),
                    "TopicArn": "arn:aws:sns:us-east-1:000000000000:orders",
                    "Subject": null, "Message": message.to_string(),
                    "Timestamp": "2026-11-22T00:00:00.000Z", "SignatureVersion": "1",
                    "Signature": "x", "SigningCertUrl": "x", "UnsubscribeUrl": "x",
                    "MessageAttributes": {}
                }
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn a_direct_sns_invocation_fails_when_any_record_fails() {
    let function = EventFunction::new(Handler::new(judge));
    let good = sns_event(&[json!({"ok": true})]);
    assert!(function.handle_sns(&good, deadline()).await.is_ok());
    let mixed = sns_event(&[json!({"ok": true}), json!({"ok": false})]);
    match function.handle_sns(&mixed, deadline()).await {
        Err(BatchError::RecordsFailed {
            failed,
            total,
            first_id,
            ..
        }) => assert_eq!((failed, total, first_id.as_str()), (1, 2, "sns-1")),
        other => panic!("expected RecordsFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_direct_eventbridge_invocation_reports_its_failure() {
    let function = EventFunction::new(Handler::new(judge));
    let event = |detail: Value| -> EventBridgeEvent {
        serde_json::from_value(json!({
            "version": "0", "id": "eb-1", "detail-type": "StockReserved",
            "source": "eventkit.orders", "account": "000000000000",
            "time": "2026-11-22T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": detail
        }))
        .unwrap()
    };
    assert!(function
        .handle_eventbridge(&event(json!({"ok": true})), deadline())
        .await
        .is_ok());
    let error = function
        .handle_eventbridge(&event(json!({"ok": false})), deadline())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("eb-1"), "{error}");
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "eventkit.RecordsFailed");
}

#[tokio::test]
async fn an_sqs_batch_that_all_failed_is_an_error_only_when_configured() {
    let event: SqsEvent = serde_json::from_value(json!({"Records": [
        {"messageId": "m-1", "body": "{\"ok\": false}", "eventSource": "aws:sqs"},
        {"messageId": "m-2", "body": "not json", "eventSource": "aws:sqs"}
    ]}))
    .unwrap();
    let report = EventFunction::new(Handler::new(judge));
    let response = report.handle_sqs(&event, deadline()).await.unwrap();
    let ids: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(ids, ["m-1", "m-2"]);
    let strict = EventFunction::new(Handler::new(judge))
        .with_batch_config(BatchConfig::default().with_all_failed(AllFailedPolicy::Error));
    assert!(matches!(
        strict.handle_sqs(&event, deadline()).await,
        Err(BatchError::AllFailed { count: 2, .. })
    ));
}

#[tokio::test]
async fn one_function_serves_every_trigger_told_apart_by_shape() {
    let function = EventFunction::new(Handler::new(judge));
    let sqs = json!({"Records": [
        {"messageId": "m-1", "body": "{\"ok\": true}", "eventSource": "aws:sqs"},
        {"messageId": "m-2", "body": "{\"ok\": false}", "eventSource": "aws:sqs"}
    ]});
    let response = function.handle(sqs, deadline()).await.unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
    );

    let sns = serde_json::to_value(sns_event(&[json!({"ok": true})])).unwrap();
    assert_eq!(function.handle(sns, deadline()).await.unwrap(), Value::Null);

    let unknown = function.handle(json!({"hello": "world"}), deadline()).await;
    assert!(matches!(
        unknown,
        Err(super::InvocationError::Unrecognised(_))
    ));
}

#[tokio::test]
async fn a_dead_lettered_events_error_names_its_record_once() {
    let function = EventFunction::new(Handler::new(judge));
    let poison = sns_event(&[]);
    let mut poison = serde_json::to_value(poison).unwrap();
    poison["Records"] = json!([{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:000000000000:orders:sub",
        "Sns": {
            "Type": "Notification", "MessageId": "sns-poison",
            "TopicArn": "arn:aws:sns:us-east-1:000000000000:orders",
            "Subject": null, "Message": "{not json",
            "Timestamp": "2026-11-22T00:00:00.000Z", "SignatureVersion": "1",
            "Signature": "x", "SigningCertUrl": "x", "UnsubscribeUrl": "x",
            "MessageAttributes": {}
        }
    }]);
    let error = function.handle(poison, deadline()).await.unwrap_err();
    let message = lambda_runtime::Diagnostic::from(error).error_message;
    assert_eq!(message.matches("sns-poison").count(), 1, "{message}");
    assert!(message.contains("invalid JSON"), "{message}");
}

/// A user's own tower layer: records the request id of every invocation it sees.
#[derive(Clone, Default)]
struct SeenRequests(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

struct Watched<S> {
    inner: S,
    seen: SeenRequests,
}

impl<S> tower::Layer<S> for SeenRequests {
    type Service = Watched<S>;

    fn layer(&self, inner: S) -> Watched<S> {
        Watched {
            inner,
            seen: self.clone(),
        }
    }
}

impl<S: tower::Service<lambda_runtime::LambdaEvent<Value>>>
    tower::Service<lambda_runtime::LambdaEvent<Value>> for Watched<S>
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: lambda_runtime::LambdaEvent<Value>) -> Self::Future {
        let request_id = event.context.request_id.clone();
        self.seen.0.lock().unwrap().push(request_id);
        self.inner.call(event)
    }
}

/// The same stack under lambda_runtime's Runtime with its own tracing layer: this only has to
/// compile (a Runtime needs the Lambda environment to be built).
#[allow(dead_code)]
fn runs_under_lambda_runtime(seen: SeenRequests) {
    let service = tower::ServiceBuilder::new()
        .layer(seen)
        .service(EventFunction::new(Handler::new(judge)).into_service());
    let _runtime =
        lambda_runtime::Runtime::new(service).layer(lambda_runtime::layers::TracingLayer::new());
}

#[tokio::test]
async fn a_user_supplied_layer_sees_every_invocation() {
    use tower::Service;

    let seen = SeenRequests::default();
    let mut service = tower::ServiceBuilder::new()
        .layer(seen.clone())
        .service(EventFunction::new(Handler::new(judge)).into_service());
    for (request, ok) in [("req-1", true), ("req-2", false), ("req-3", true)] {
        let mut context = lambda_runtime::Context::default();
        context.request_id = request.into();
        context.deadline = deadline().epoch_ms();
        let event = json!({"Records": [
            {"messageId": format!("m-{request}"), "body": json!({"ok": ok}).to_string(), "eventSource": "aws:sqs"}
        ]});
        let response = service
            .call(lambda_runtime::LambdaEvent::new(event, context))
            .await
            .unwrap();
        let failures = response["batchItemFailures"].as_array().unwrap().len();
        assert_eq!(failures, usize::from(!ok), "{request}: {response}");
    }
    assert_eq!(*seen.0.lock().unwrap(), ["req-1", "req-2", "req-3"]);
}
