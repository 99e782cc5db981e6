//! The direct Lambda events (SNS and EventBridge triggers) for what arrived in a queue: a
//! queue subscribed to a topic without raw delivery receives the very notification SNS
//! would invoke a function with, and a queue targeted by a rule receives the very event
//! EventBridge would invoke it with. Building the direct form from real deliveries lets a
//! test compare every way an event can reach a handler without faking any of them.
//!
//! For the SQS event itself see [`sqs_event`](crate::sqs_event).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use serde_json::{json, Value};

/// The `SnsEvent` Lambda would receive for `notification`, an SNS notification as SNS wrote
/// it into an SQS body (subscription without raw delivery).
pub fn sns_event(notification: &str, subscription_arn: &str) -> SnsEvent {
    let notification: Value =
        serde_json::from_str(notification).expect("an SNS notification is JSON");
    serde_json::from_value(json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription_arn,
            "Sns": notification,
        }]
    }))
    .expect("SnsEvent from an SNS notification")
}

/// The `EventBridgeEvent` Lambda would receive for `event`, an EventBridge event as a rule
/// delivered it to a queue (the body is the same JSON a function target gets).
pub fn eventbridge_event(event: &str) -> EventBridgeEvent {
    serde_json::from_str(event).expect("EventBridgeEvent from a delivered event")
}
