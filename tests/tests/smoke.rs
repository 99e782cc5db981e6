//! Smoke tests of the local cloud itself: each asserts what actually arrived (or did not), so
//! the later tests can trust SNS fan-out, filter policies, EventBridge rules and DynamoDB
//! conditional writes as LocalStack and DynamoDB Local implement them.

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_sns::types::MessageAttributeValue;
use eventkit_tests::LocalCloud;
use serde_json::Value;

/// How long to wait for a message that is expected.
const ARRIVAL: Duration = Duration::from_secs(20);
/// How long to keep listening, once a marker sent behind a filtered-out message arrived, to
/// be sure the filtered-out one does not arrive after all.
const QUIET_AFTER_MARKER: Duration = Duration::from_secs(2);

/// Receives until a message whose body satisfies `is_marker` has arrived (or `ARRIVAL`
/// passed), then listens `QUIET_AFTER_MARKER` longer: everything that arrived, in order.
async fn receive_through_marker(
    cloud: &LocalCloud,
    queue: &eventkit_tests::Queue,
    is_marker: impl Fn(&str) -> bool,
) -> Vec<aws_sdk_sqs::types::Message> {
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    while !received
        .iter()
        .any(|m: &aws_sdk_sqs::types::Message| is_marker(m.body().unwrap_or_default()))
    {
        assert!(
            started.elapsed() < ARRIVAL,
            "the marker did not arrive within {ARRIVAL:?}: {received:?}"
        );
        received.extend(cloud.receive(queue, 1, Duration::from_secs(1)).await);
    }
    // Received messages stay in flight, so only a further one could show up here.
    received.extend(cloud.receive(queue, 1, QUIET_AFTER_MARKER).await);
    received
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("attribute has a type")
}

#[tokio::test]
async fn sns_delivers_to_sqs_in_the_sns_envelope() {
    let cloud = LocalCloud::connect().await;
    let topic = cloud.create_topic("smoke-envelope").await;
    let queue = cloud.create_queue("smoke-envelope", &[]).await;
    cloud.subscribe_queue(&topic, &queue, false, None).await;

    cloud
        .sns
        .publish()
        .topic_arn(&topic.arn)
        .message(r#"{"orderId":"o-1"}"#)
        .message_attributes("eventType", attribute("OrderPlaced"))
        .send()
        .await
        .expect("Publish");

    let received = cloud.receive(&queue, 1, ARRIVAL).await;
    assert_eq!(received.len(), 1);
    let body: Value =
        serde_json::from_str(received[0].body().unwrap_or_default()).expect("JSON envelope");
    assert_eq!(body["Type"], "Notification");
    assert_eq!(body["TopicArn"], topic.arn.as_str());
    assert_eq!(body["Message"], r#"{"orderId":"o-1"}"#);
    assert_eq!(
        body["MessageAttributes"]["eventType"]["Value"],
        "OrderPlaced"
    );
}

#[tokio::test]
async fn sns_raw_delivery_applies_the_filter_policy() {
    let cloud = LocalCloud::connect().await;
    let topic = cloud.create_topic("smoke-raw").await;
    let queue = cloud.create_queue("smoke-raw", &[]).await;
    cloud
        .subscribe_queue(
            &topic,
            &queue,
            true,
            Some(r#"{"eventType":["OrderPlaced"]}"#),
        )
        .await;

    // The marker goes last, behind the filtered-out message.
    for (event_type, body) in [
        ("OrderCancelled", "filtered-out"),
        ("OrderPlaced", "wanted"),
        ("OrderPlaced", "marker"),
    ] {
        cloud
            .sns
            .publish()
            .topic_arn(&topic.arn)
            .message(body)
            .message_attributes("eventType", attribute(event_type))
            .send()
            .await
            .expect("Publish");
    }

    let received = receive_through_marker(&cloud, &queue, |body| body == "marker").await;
    // A standard queue keeps no order: compared as a set.
    let mut bodies: Vec<&str> = received.iter().filter_map(|m| m.body()).collect();
    bodies.sort_unstable();
    assert_eq!(
        bodies,
        ["marker", "wanted"],
        "raw bodies, and the filtered-out message never arrives"
    );
    let wanted = received
        .iter()
        .find(|m| m.body() == Some("wanted"))
        .expect("wanted arrived");
    let attributes = wanted
        .message_attributes()
        .expect("raw delivery keeps attributes");
    assert_eq!(attributes["eventType"].string_value(), Some("OrderPlaced"));
}

#[tokio::test]
async fn eventbridge_rule_on_a_custom_bus_targets_a_queue() {
    let cloud = LocalCloud::connect().await;
    let bus = cloud.create_bus("smoke-bus").await;
    let queue = cloud.create_queue("smoke-bus", &[]).await;
    cloud
        .route_to_queue(
            &bus,
            r#"{"source":["eventkit.orders"],"detail-type":["OrderPlaced"]}"#,
            &queue,
        )
        .await;

    let entry = |detail_type: &str, order: &str| {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&bus.name)
            .source("eventkit.orders")
            .detail_type(detail_type)
            .detail(format!(r#"{{"orderId":"{order}"}}"#))
            .build()
    };
    let response = cloud
        .eventbridge
        .put_events()
        .entries(entry("OrderShipped", "o-ignored"))
        .entries(entry("OrderPlaced", "o-2"))
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(response.failed_entry_count(), 0);
    // A marker, put behind the ignored event.
    let marker = cloud
        .eventbridge
        .put_events()
        .entries(entry("OrderPlaced", "o-marker"))
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(marker.failed_entry_count(), 0);

    let events: Vec<Value> =
        receive_through_marker(&cloud, &queue, |body| body.contains("o-marker"))
            .await
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("JSON event"))
            .collect();
    let mut orders: Vec<&str> = events
        .iter()
        .filter_map(|e| e["detail"]["orderId"].as_str())
        .collect();
    orders.sort_unstable();
    assert_eq!(
        orders,
        ["o-2", "o-marker"],
        "only the matching events arrive: {events:?}"
    );
    let event = events
        .iter()
        .find(|e| e["detail"]["orderId"] == "o-2")
        .expect("o-2 arrived");
    assert_eq!(event["detail-type"], "OrderPlaced");
    assert_eq!(event["source"], "eventkit.orders");
}

#[tokio::test]
async fn dynamodb_conditional_put_succeeds_once_then_returns_the_old_item() {
    let cloud = LocalCloud::connect().await;
    let table = cloud.create_table("smoke-table", "id").await;
    let put = |owner: &str| {
        cloud
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("id", AttributeValue::S("key-1".into()))
            .item("owner", AttributeValue::S(owner.into()))
            .condition_expression("attribute_not_exists(id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
    };

    put("first")
        .await
        .expect("the first conditional put succeeds");
    let error = put("second")
        .await
        .expect_err("the second conditional put fails");
    match error.into_service_error() {
        PutItemError::ConditionalCheckFailedException(failed) => {
            let old = failed.item().expect("ALL_OLD returns the old item");
            assert_eq!(old.get("owner"), Some(&AttributeValue::S("first".into())));
        }
        other => panic!("expected ConditionalCheckFailed, got {other:?}"),
    }
}
