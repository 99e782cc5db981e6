//! An SNS subscription's dead-letter queue through the CLI: what SNS could not deliver
//! goes back to the subscription that failed, never to the topic (which would reach every
//! other subscriber too). SNS stamps nothing on such a dead letter; the queue is the one
//! the subscription's redrive policy names. The dead letters are written here as SNS
//! writes them (LocalStack's SNS delivers to its queues without failing).

mod support;

use std::time::Duration;

use eventkit_local::clients::{Clients, Endpoints};
use serde_json::json;
use support::*;

async fn write(clients: &Clients, queue: &str, body: &str) {
    clients
        .sqs
        .send_message()
        .queue_url(queue)
        .message_body(body)
        .send()
        .await
        .expect("the dead letter is written");
}

/// The serverless-patterns fan-out (raw delivery to a queue): an order SNS could not
/// deliver goes to the subscription's queue again, and the function processes it there.
#[tokio::test(flavor = "multi_thread")]
async fn a_raw_message_goes_back_to_the_subscriptions_queue() {
    cloud_env();
    let stack = format!("subdlq-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: SNS_TO_SQS,
        stack: &stack,
    };
    let running = Running::start(app, &["--no-watch"]);
    let clients = Clients::new(&Endpoints::from_env()).await;
    let dlq = queue_url(&clients, &stack, "TopicDeliveryDLQ").await;
    write(&clients, &dlq, r#"{"orderId": "o-7", "quantity": 7}"#).await;

    let listed = ok(app, &["dlq", "list"]);
    let line = listed
        .lines()
        .find(|line| line.starts_with("TopicDeliveryDLQ"))
        .unwrap_or_else(|| panic!("not listed:\n{listed}"));
    assert!(
        line.contains(&format!(
            "what subscriptions of {stack}-OrdersTopic could not deliver"
        )),
        "{listed}"
    );
    let redriven = ok(app, &["dlq", "redrive", "TopicDeliveryDLQ"]);
    assert!(
        redriven.contains(
            "TopicDeliveryDLQ: 1 message(s) delivered to their subscription's queue OrdersQueue again"
        ),
        "{redriven}"
    );
    wait_until("the order processed", Duration::from_secs(60), || {
        function_log(app).contains("order of 7 processed")
    });
    assert_eq!(dead_letters(app, "TopicDeliveryDLQ"), 0);
    running.stop();
}

/// An SNS event source of a plain lambda_runtime function: a notification SNS could not
/// deliver invokes the function again with the SNS event around it; one of another topic
/// is left, with why.
#[tokio::test(flavor = "multi_thread")]
async fn a_notification_invokes_the_subscribed_function_again() {
    cloud_env();
    let stack = format!("subfn-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: "tests/apps/templates/topic-to-function.yaml",
        stack: &stack,
    };
    let running = Running::start(app, &["--no-watch"]);
    let clients = Clients::new(&Endpoints::from_env()).await;
    let dlq = queue_url(&clients, &stack, "AlertsDeliveryDLQ").await;
    let alerts = topic_arn(&clients, &stack, "Alerts").await;
    let notification = |topic: &str, message_id: &str| {
        json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic,
            "Message": "{\"alert\":\"undelivered\"}",
            "Timestamp": "2026-11-30T10:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "c2ln",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        })
        .to_string()
    };
    write(&clients, &dlq, &notification(&alerts, "n-1")).await;
    let elsewhere = "arn:aws:sns:us-east-1:000000000000:somebody-elses";
    write(&clients, &dlq, &notification(elsewhere, "n-2")).await;

    let redriven = ok(app, &["dlq", "redrive", "AlertsDeliveryDLQ"]);
    assert!(
        redriven.contains("AlertsDeliveryDLQ: 1 message(s) invoked Probe again, asynchronously"),
        "{redriven}"
    );
    assert!(
        redriven.contains(&format!(
            "a notification of {elsewhere} that a subscription failed"
        )),
        "{redriven}"
    );
    let log = root()
        .join("tests/apps/templates/.local-cloud/logs")
        .join(&stack)
        .join("Probe.log");
    let invoked = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with("invoked with ") && line.contains("undelivered"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_until("the function invoked", Duration::from_secs(60), || {
        !invoked().is_empty()
    });
    let event: serde_json::Value = invoked()
        .first()
        .and_then(|line| line.strip_prefix("invoked with "))
        .and_then(|payload| serde_json::from_str(payload).ok())
        .unwrap_or_default();
    let record = &event["Records"][0];
    assert_eq!(record["EventSource"], "aws:sns", "{event}");
    assert_eq!(record["Sns"]["MessageId"], "n-1", "{event}");
    assert_eq!(record["Sns"]["TopicArn"], alerts.as_str(), "{event}");
    assert_eq!(
        record["Sns"]["Message"], r#"{"alert":"undelivered"}"#,
        "{event}"
    );
    // The one of another topic stays.
    assert_eq!(dead_letters(app, "AlertsDeliveryDLQ"), 1);
    running.stop();
}
