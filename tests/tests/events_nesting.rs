//! Real deliveries from LocalStack, every way an event can reach a handler: SNS to SQS with
//! and without raw delivery, EventBridge to SQS, and the direct SNS and EventBridge events
//! built from those same deliveries. Each must decode to the same domain event (old
//! versions upcast), with the record id a partial batch response needs.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use eventkit::events::{
    records_from, DecodeOptions, EventBridgePublisher, EventEnvelope, EventRecord, OutgoingEvent,
    SnsPublisher, Source, SqsPublisher, UpcastError, VersionedEvent,
};
use eventkit_tests::lambda_events::{eventbridge_event, sns_event};
use eventkit_tests::{sqs_event, LocalCloud, Queue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const ARRIVAL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerRegistered {
    customer_id: String,
    first_name: String,
    last_name: String,
}

/// Version 1 had a single `name`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerRegisteredV1 {
    customer_id: String,
    name: String,
}

impl VersionedEvent for CustomerRegistered {
    const EVENT_TYPE: &'static str = "CustomerRegistered";
    const CURRENT_VERSION: u32 = 2;

    fn upcast(version: u32, data: Value) -> Result<Self, UpcastError> {
        match version {
            1 => {
                let v1: CustomerRegisteredV1 = serde_json::from_value(data)?;
                let (first, last) = v1.name.split_once(' ').unwrap_or((&v1.name, ""));
                Ok(Self {
                    customer_id: v1.customer_id,
                    first_name: first.into(),
                    last_name: last.into(),
                })
            }
            _ => Err(UpcastError::UnknownVersion),
        }
    }
}

/// A current event and an old one, as published, and what each must decode to.
struct Published {
    outgoing: Vec<OutgoingEvent>,
    expected: HashMap<String, EventEnvelope<CustomerRegistered>>,
}

fn published() -> Published {
    let current = EventEnvelope::new(
        "customers",
        CustomerRegistered {
            customer_id: "c-42".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        },
    )
    .with_trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
    let old = EventEnvelope::from_parts(
        "CustomerRegistered",
        1,
        "customers",
        json!({"customerId": "c-7", "name": "Grace Brewster Hopper"}),
    );
    let mut old_upcast = old.clone().map_data(|_| CustomerRegistered {
        customer_id: "c-7".into(),
        first_name: "Grace".into(),
        last_name: "Brewster Hopper".into(),
    });
    old_upcast.event_version = 2;
    Published {
        outgoing: vec![
            OutgoingEvent::from_envelope(&current).unwrap(),
            OutgoingEvent::from_envelope(&old).unwrap(),
        ],
        expected: HashMap::from([
            (current.event_id.clone(), current),
            (old.event_id.clone(), old_upcast),
        ]),
    }
}

impl Published {
    /// Every record decodes to the expected event, and together they are all of them.
    fn assert_decoded(&self, records: &[EventRecord], form: &str) {
        let mut seen = Vec::new();
        for record in records {
            let event = record
                .event::<CustomerRegistered>()
                .unwrap_or_else(|error| panic!("{form}: {error}"));
            assert_eq!(Some(&event), self.expected.get(&event.event_id), "{form}");
            seen.push(event.event_id);
        }
        seen.sort();
        let mut all: Vec<&String> = self.expected.keys().collect();
        all.sort();
        assert_eq!(seen.iter().collect::<Vec<_>>(), all, "{form}");
    }
}

/// The ids a partial batch response must name: the SQS message ids.
fn assert_sqs_ids(records: &[EventRecord], messages: &[Message]) {
    let ids: Vec<&str> = records.iter().map(EventRecord::id).collect();
    let message_ids: Vec<&str> = messages.iter().filter_map(Message::message_id).collect();
    assert_eq!(ids, message_ids);
    assert!(records.iter().all(|r| r.receive_count() == Some(1)));
}

async fn received(cloud: &LocalCloud, queue: &Queue, expected: usize) -> Vec<Message> {
    let messages = cloud.receive(queue, expected, ARRIVAL).await;
    assert_eq!(messages.len(), expected, "{}: {messages:?}", queue.name);
    messages
}

#[tokio::test]
async fn sns_to_sqs_raw_and_enveloped_decode_like_direct_sns() {
    let cloud = LocalCloud::connect().await;
    let topic = cloud.create_topic("nesting-sns").await;
    let raw_queue = cloud.create_queue("nesting-sns-raw", &[]).await;
    let enveloped_queue = cloud.create_queue("nesting-sns-envelope", &[]).await;
    cloud.subscribe_queue(&topic, &raw_queue, true, None).await;
    cloud
        .subscribe_queue(&topic, &enveloped_queue, false, None)
        .await;
    let published = published();

    let failures = SnsPublisher::new(cloud.sns.clone(), &topic.arn)
        .publish(&published.outgoing)
        .await;
    assert_eq!(failures, []);

    let raw = received(&cloud, &raw_queue, 2).await;
    let raw_records = records_from(
        &sqs_event(&raw_queue, &raw),
        &DecodeOptions::default().with_raw_sns_delivery(true),
    );
    assert_sqs_ids(&raw_records, &raw);
    published.assert_decoded(&raw_records, "SNS to SQS, raw");

    let enveloped = received(&cloud, &enveloped_queue, 2).await;
    let enveloped_records = records_from(
        &sqs_event(&enveloped_queue, &enveloped),
        &DecodeOptions::default(),
    );
    assert_sqs_ids(&enveloped_records, &enveloped);
    published.assert_decoded(&enveloped_records, "SNS to SQS, enveloped");

    // The notifications in the enveloped queue are what SNS invokes a function with.
    let mut direct_records = Vec::new();
    for message in &enveloped {
        let notification = message.body().unwrap_or_default();
        let sns_id = serde_json::from_str::<Value>(notification).unwrap()["MessageId"].clone();
        let records = records_from(
            &sns_event(notification, &format!("{}:sub", topic.arn)),
            &DecodeOptions::default(),
        );
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].id(), sns_id.as_str().unwrap());
        direct_records.extend(records);
    }
    published.assert_decoded(&direct_records, "SNS direct");

    for (records, source) in [
        (&raw_records, Source::SnsViaSqs { raw: true }),
        (&enveloped_records, Source::SnsViaSqs { raw: false }),
        (&direct_records, Source::Sns),
    ] {
        for record in records.iter() {
            assert_eq!(record.source(), source);
            // Raw delivery turns SNS attributes into SQS ones; otherwise they ride in the
            // notification. Either way the record has them.
            assert_eq!(
                record.attribute("eventType"),
                Some("CustomerRegistered"),
                "{source}"
            );
            assert_eq!(record.attribute("source"), Some("customers"), "{source}");
        }
    }
}

#[tokio::test]
async fn eventbridge_to_sqs_decodes_like_direct_eventbridge() {
    let cloud = LocalCloud::connect().await;
    let bus = cloud.create_bus("nesting-bus").await;
    let queue = cloud.create_queue("nesting-bus", &[]).await;
    cloud
        .route_to_queue(
            &bus,
            r#"{"source":["customers"],"detail-type":["CustomerRegistered"]}"#,
            &queue,
        )
        .await;
    let published = published();

    let failures = EventBridgePublisher::new(cloud.eventbridge.clone(), &bus.name)
        .publish(&published.outgoing)
        .await;
    assert_eq!(failures, []);

    let messages = received(&cloud, &queue, 2).await;
    let nested = records_from(&sqs_event(&queue, &messages), &DecodeOptions::default());
    assert_sqs_ids(&nested, &messages);
    assert!(nested
        .iter()
        .all(|r| r.source() == Source::EventBridgeViaSqs));
    published.assert_decoded(&nested, "EventBridge to SQS");

    // The delivered events are what EventBridge invokes a function target with.
    let direct: Vec<EventRecord> = messages
        .iter()
        .map(|message| {
            let event = eventbridge_event(message.body().unwrap_or_default());
            let record = records_from(&event, &DecodeOptions::default()).remove(0);
            assert_eq!(Some(record.id()), event.id.as_deref());
            assert_eq!(record.source(), Source::EventBridge);
            record
        })
        .collect();
    published.assert_decoded(&direct, "EventBridge direct");
}

#[tokio::test]
async fn sqs_direct_decodes_the_same() {
    let cloud = LocalCloud::connect().await;
    let queue = cloud.create_queue("nesting-sqs", &[]).await;
    let published = published();

    let failures = SqsPublisher::new(cloud.sqs.clone(), &queue.url)
        .publish(&published.outgoing)
        .await;
    assert_eq!(failures, []);

    let messages = received(&cloud, &queue, 2).await;
    let records = records_from(&sqs_event(&queue, &messages), &DecodeOptions::default());
    assert_sqs_ids(&records, &messages);
    assert!(records.iter().all(
        |r| r.source() == Source::Sqs && r.attribute("eventType") == Some("CustomerRegistered")
    ));
    published.assert_decoded(&records, "SQS direct");
}
