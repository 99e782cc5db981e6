//! The SNS, EventBridge and SQS publishers against LocalStack: more than a batch of events
//! all arrive with the metadata each service routes on (SNS attributes and filter policies,
//! EventBridge detail-type and source, SQS FIFO groups and deduplication), and entries the
//! service refuses come back as failures instead of vanishing.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use eventkit::events::{
    records_from, DecodeOptions, EventBridgePublisher, EventEnvelope, OutgoingEvent,
    PublishFailure, RetryPolicy, SnsPublisher, SqsPublisher,
};
use eventkit_tests::{sqs_event, unique_name, LocalCloud, Queue, DEFAULT_LOCALSTACK_URL, REGION};
use serde_json::{json, Value};

const ARRIVAL: Duration = Duration::from_secs(20);
/// How long to keep listening to be sure nothing more arrives.
const QUIET_PERIOD: Duration = Duration::from_secs(4);

/// A quick policy: the tests wait for the outcome, not for realistic backoff.
fn fast_retry() -> RetryPolicy {
    RetryPolicy::attempts(3).with_delays(Duration::from_millis(20), Duration::from_millis(50))
}

fn envelope(event_type: &str, source: &str, n: usize) -> EventEnvelope<Value> {
    EventEnvelope::from_parts(event_type, 1, source, json!({"n": n}))
}

fn outgoing(envelope: &EventEnvelope<Value>) -> OutgoingEvent {
    OutgoingEvent::from_envelope(envelope).unwrap()
}

fn event_ids<'a>(
    envelopes: impl IntoIterator<Item = &'a EventEnvelope<Value>>,
) -> BTreeSet<String> {
    envelopes.into_iter().map(|e| e.event_id.clone()).collect()
}

/// The envelopes in `messages`, through the same records a handler gets.
fn decoded(queue: &Queue, messages: &[Message], raw_sns: bool) -> Vec<EventEnvelope<Value>> {
    let options = DecodeOptions::default().with_raw_sns_delivery(raw_sns);
    records_from(&sqs_event(queue, messages), &options)
        .iter()
        .map(|record| record.decode::<EventEnvelope<Value>>().unwrap())
        .collect()
}

/// Exactly `expected` messages arrive, and nothing more during a quiet period.
async fn arrive_exactly(cloud: &LocalCloud, queue: &Queue, expected: usize) -> Vec<Message> {
    let messages = cloud.receive(queue, expected, ARRIVAL).await;
    assert_eq!(messages.len(), expected, "{}", queue.name);
    // Received messages stay in flight, so only a further one could show up here.
    let more = cloud.receive(queue, 1, QUIET_PERIOD).await;
    assert!(more.is_empty(), "{}: unexpected {more:?}", queue.name);
    messages
}

fn system_attribute(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message.attributes()?.get(&name).map(String::as_str)
}

#[tokio::test]
async fn sns_publishes_in_batches_with_attributes_that_filter_policies_match() {
    let cloud = LocalCloud::connect().await;
    let topic = cloud.create_topic("publish-sns").await;
    let everything = cloud.create_queue("publish-sns-all", &[]).await;
    let registrations = cloud.create_queue("publish-sns-filtered", &[]).await;
    cloud
        .subscribe_queue(&topic, &everything, false, None)
        .await;
    cloud
        .subscribe_queue(
            &topic,
            &registrations,
            true,
            Some(r#"{"eventType":["CustomerRegistered"]}"#),
        )
        .await;
    // 15 events, two batches; every fifth is of another type.
    let envelopes: Vec<_> = (0..15)
        .map(|n| match n % 5 {
            4 => envelope("OrderPlaced", "orders", n),
            _ => envelope("CustomerRegistered", "customers", n),
        })
        .collect();
    let events: Vec<_> = envelopes.iter().map(outgoing).collect();

    let failures = SnsPublisher::new(cloud.sns.clone(), &topic.arn)
        .publish(&events)
        .await;
    assert_eq!(failures, []);

    let all = arrive_exactly(&cloud, &everything, 15).await;
    let all_records = records_from(&sqs_event(&everything, &all), &DecodeOptions::default());
    assert_eq!(all_records.len(), 15);
    for record in &all_records {
        let envelope = record.decode::<EventEnvelope<Value>>().unwrap();
        assert_eq!(
            record.attribute("eventType"),
            Some(envelope.event_type.as_str())
        );
        assert_eq!(record.attribute("source"), Some(envelope.source.as_str()));
    }
    assert_eq!(
        event_ids(&decoded(&everything, &all, false)),
        event_ids(&envelopes)
    );

    // Only CustomerRegistered passes the filter.
    let filtered = arrive_exactly(&cloud, &registrations, 12).await;
    let expected: Vec<_> = envelopes
        .iter()
        .filter(|e| e.event_type == "CustomerRegistered")
        .collect();
    assert_eq!(
        event_ids(&decoded(&registrations, &filtered, true)),
        event_ids(expected)
    );
    for message in &filtered {
        let attributes = message.message_attributes().unwrap();
        assert_eq!(
            attributes["eventType"].string_value(),
            Some("CustomerRegistered")
        );
    }
}

#[tokio::test]
async fn eventbridge_puts_in_batches_with_detail_type_and_source() {
    let cloud = LocalCloud::connect().await;
    let bus = cloud.create_bus("publish-bus").await;
    let queue = cloud.create_queue("publish-bus", &[]).await;
    cloud
        .route_to_queue(&bus, r#"{"source":["customers"]}"#, &queue)
        .await;
    // 14 events, two batches; the two from another source match no rule.
    let envelopes: Vec<_> = (0..14)
        .map(|n| match n {
            5 | 11 => envelope("InvoiceSent", "billing", n),
            _ if n % 2 == 0 => envelope("CustomerRegistered", "customers", n),
            _ => envelope("CustomerVerified", "customers", n),
        })
        .collect();
    let events: Vec<_> = envelopes.iter().map(outgoing).collect();

    let failures = EventBridgePublisher::new(cloud.eventbridge.clone(), &bus.name)
        .publish(&events)
        .await;
    assert_eq!(failures, []);

    // The billing events match no rule.
    let messages = arrive_exactly(&cloud, &queue, 12).await;
    for message in &messages {
        let delivered: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        let detail: EventEnvelope<Value> =
            serde_json::from_value(delivered["detail"].clone()).unwrap();
        assert_eq!(delivered["detail-type"], detail.event_type.as_str());
        assert_eq!(delivered["source"], "customers");
        assert_eq!(delivered["source"], detail.source.as_str());
        // EventBridge's own `time` is the event's, to the second.
        let event: EventBridgeEvent = serde_json::from_value(delivered.clone()).unwrap();
        assert_eq!(
            event.time.map(|t| t.timestamp()),
            Some(detail.time.timestamp())
        );
    }
    let customers: Vec<_> = envelopes
        .iter()
        .filter(|e| e.source == "customers")
        .collect();
    assert_eq!(
        event_ids(&decoded(&queue, &messages, false)),
        event_ids(customers)
    );
}

#[tokio::test]
async fn sqs_sends_in_batches_with_attributes_and_trace_header() {
    let cloud = LocalCloud::connect().await;
    let queue = cloud.create_queue("publish-sqs", &[]).await;
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    let envelopes: Vec<_> = (0..12)
        .map(|n| envelope("CustomerRegistered", "customers", n).with_trace_id(trace))
        .collect();
    let events: Vec<_> = envelopes
        .iter()
        .map(|e| outgoing(e).with_attribute("tenant", "acme"))
        .collect();

    let failures = SqsPublisher::new(cloud.sqs.clone(), &queue.url)
        .publish(&events)
        .await;
    assert_eq!(failures, []);

    let messages = arrive_exactly(&cloud, &queue, 12).await;
    for record in records_from(&sqs_event(&queue, &messages), &DecodeOptions::default()) {
        assert_eq!(record.attribute("eventType"), Some("CustomerRegistered"));
        assert_eq!(record.attribute("tenant"), Some("acme"));
    }
    for message in &messages {
        assert_eq!(
            system_attribute(message, MessageSystemAttributeName::AwsTraceHeader),
            Some(trace)
        );
    }
    assert_eq!(
        event_ids(&decoded(&queue, &messages, false)),
        event_ids(&envelopes)
    );
}

#[tokio::test]
async fn sqs_fifo_keeps_groups_in_order_and_drops_duplicates() {
    let cloud = LocalCloud::connect().await;
    let queue = cloud.create_fifo_queue("publish-fifo", &[]).await;
    let group = |n: usize| format!("customer-{}", n % 2);
    let envelopes: Vec<_> = (0..12)
        .map(|n| envelope("CustomerRegistered", "customers", n))
        .collect();
    let mut events: Vec<_> = envelopes
        .iter()
        .enumerate()
        .map(|(n, e)| outgoing(e).with_group_id(group(n)))
        .collect();
    // A new event reusing event 0's deduplication id, and event 3 published again: SQS
    // accepts both and delivers neither.
    events.push(
        outgoing(&envelope("CustomerRegistered", "customers", 12))
            .with_group_id(group(0))
            .with_deduplication_id(&envelopes[0].event_id),
    );
    events.push(events[3].clone());

    let failures = SqsPublisher::new(cloud.sqs.clone(), &queue.url)
        .publish(&events)
        .await;
    assert_eq!(failures, []);

    // Wait for 14, get 12: the duplicates are dropped.
    let messages = cloud.drain(&queue, 14, QUIET_PERIOD * 2).await;
    assert_eq!(messages.len(), 12);
    let delivered = decoded(&queue, &messages, false);
    for (message, envelope) in messages.iter().zip(&delivered) {
        let n = envelope.data["n"].as_u64().unwrap() as usize;
        assert_eq!(
            system_attribute(message, MessageSystemAttributeName::MessageGroupId),
            Some(group(n).as_str())
        );
        assert_eq!(
            system_attribute(message, MessageSystemAttributeName::MessageDeduplicationId),
            Some(envelope.event_id.as_str())
        );
    }
    for g in 0..2 {
        let in_group: Vec<u64> = delivered
            .iter()
            .map(|e| e.data["n"].as_u64().unwrap())
            .filter(|n| n % 2 == g)
            .collect();
        let published: Vec<u64> = (0..12).filter(|n| n % 2 == g).collect();
        assert_eq!(in_group, published, "group customer-{g} in publish order");
    }
}

/// Every event failed, by index, with `code` after `attempts` sends.
fn assert_all_failed(
    failures: &[PublishFailure],
    events: &[OutgoingEvent],
    code: &str,
    attempts: u32,
) {
    let seen: Vec<(usize, &str, &str, u32)> = failures
        .iter()
        .map(|f| (f.index, f.event_id.as_str(), f.code.as_str(), f.attempts))
        .collect();
    let expected: Vec<(usize, &str, &str, u32)> = events
        .iter()
        .enumerate()
        .map(|(index, event)| (index, event.event_id.as_str(), code, attempts))
        .collect();
    assert_eq!(seen, expected, "{failures:?}");
}

/// A missing topic or queue is a deployment mistake, not a passing fault: the service's
/// refusal comes back at once, with its code, and is not retried.
#[tokio::test]
async fn publishing_to_a_missing_topic_or_queue_fails_every_entry_at_once() {
    let cloud = LocalCloud::connect().await;
    let events: Vec<_> = (0..12)
        .map(|n| outgoing(&envelope("CustomerRegistered", "customers", n)))
        .collect();
    let missing = unique_name("missing");

    let topic_arn = format!("arn:aws:sns:{REGION}:000000000000:{missing}");
    let sns = SnsPublisher::new(cloud.sns.clone(), topic_arn)
        .with_retry(fast_retry())
        .publish(&events)
        .await;
    assert_all_failed(&sns, &events, "NotFound", 1);

    let queue_url = format!("{}/000000000000/{missing}", DEFAULT_LOCALSTACK_URL);
    let sqs = SqsPublisher::new(cloud.sqs.clone(), queue_url)
        .with_retry(fast_retry())
        .publish(&events)
        .await;
    assert_all_failed(&sqs, &events, "AWS.SimpleQueueService.NonExistentQueue", 1);
}

#[tokio::test]
async fn an_unreachable_eventbridge_fails_every_entry() {
    let cloud = LocalCloud::connect().await;
    let events: Vec<_> = (0..12)
        .map(|n| outgoing(&envelope("CustomerRegistered", "customers", n)))
        .collect();
    // Port 9 has no listener; the SDK's own retries are off to keep the test short.
    let unreachable = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&cloud.config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
            .build(),
    );
    let failures = EventBridgePublisher::new(unreachable, "default")
        .with_retry(fast_retry())
        .publish(&events)
        .await;
    // No answer at all may heal: retried, up to the policy's three attempts.
    assert_all_failed(&failures, &events, "RequestFailed", 3);
}

#[tokio::test]
async fn entries_eventbridge_refuses_fail_alone() {
    // LocalStack accepts events for a bus that does not exist, so refusal is shown with
    // details that are not JSON objects.
    let cloud = LocalCloud::connect().await;
    let bus = cloud.create_bus("publish-refused").await;
    let queue = cloud.create_queue("publish-refused-bus", &[]).await;
    cloud
        .route_to_queue(&bus, r#"{"source":["customers"]}"#, &queue)
        .await;
    let envelopes: Vec<_> = (0..12)
        .map(|n| envelope("CustomerRegistered", "customers", n))
        .collect();
    let mut events: Vec<_> = envelopes.iter().map(outgoing).collect();
    events[2].body = "not an envelope".into();
    events[9].body = "[]".into();

    let failures = EventBridgePublisher::new(cloud.eventbridge.clone(), &bus.name)
        .with_retry(fast_retry())
        .publish(&events)
        .await;
    let refused: Vec<(usize, &str, u32)> = failures
        .iter()
        .map(|f| (f.index, f.code.as_str(), f.attempts))
        .collect();
    // A malformed detail is refused the same way every time: not retried.
    assert_eq!(
        refused,
        [(2, "MalformedDetail", 1), (9, "MalformedDetail", 1)]
    );

    let messages = arrive_exactly(&cloud, &queue, 10).await;
    let accepted = envelopes
        .iter()
        .enumerate()
        .filter(|(n, _)| ![2, 9].contains(n))
        .map(|(_, e)| e);
    assert_eq!(
        event_ids(&decoded(&queue, &messages, false)),
        event_ids(accepted)
    );
}

#[tokio::test]
async fn an_entry_sqs_refuses_fails_alone() {
    let cloud = LocalCloud::connect().await;
    let queue = cloud.create_queue("publish-refused", &[]).await;
    let mut envelopes: Vec<_> = (0..11)
        .map(|n| envelope("CustomerRegistered", "customers", n))
        .collect();
    // U+FFFF is outside the characters SQS accepts in a body, and JSON does not escape it.
    envelopes[6].data = json!({"n": 6, "note": "\u{ffff}"});
    let events: Vec<_> = envelopes.iter().map(outgoing).collect();

    let failures = SqsPublisher::new(cloud.sqs.clone(), &queue.url)
        .with_retry(fast_retry())
        .publish(&events)
        .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].index, 6);
    assert_eq!(failures[0].event_id, envelopes[6].event_id);
    // A sender fault is not retried: it would be refused the same way.
    assert_eq!(failures[0].attempts, 1, "{failures:?}");

    let messages = arrive_exactly(&cloud, &queue, 10).await;
    let mut expected = envelopes;
    expected.remove(6);
    assert_eq!(
        event_ids(&decoded(&queue, &messages, false)),
        event_ids(&expected)
    );
}
