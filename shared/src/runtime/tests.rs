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
