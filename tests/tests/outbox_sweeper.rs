//! The outbox's sweeper against DynamoDB Local and LocalStack with the real SDK clients: a
//! committed event whose stream delivery never got it published (the relay gave up while
//! its destination was down) is published by the sweeper, under its staged id, once the
//! destination is back, however long that took; nothing is published twice by it, and the
//! backlog it reports is what is waiting.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::{Deadline, RecordError};
use eventkit::events::{EventEnvelope, EventRecord, Source, VersionedEvent};
use eventkit::handler::{Handler, Invocation, RecordHandler, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig};
use eventkit::outbox::{
    Backlog, Destination, Relay, Staged, Sweeper, TransactionalLayer, UnitOfWork,
};
use eventkit_tests::LocalCloud;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shipped {
    order_id: String,
}

impl VersionedEvent for Shipped {
    const EVENT_TYPE: &'static str = "Shipped";
    const CURRENT_VERSION: u32 = 1;
}

/// Emits one Shipped per record to `queue_url` through the outbox.
async fn ship(
    queue_url: &&String,
    order: EventEnvelope<Shipped>,
) -> Result<Staged<()>, RecordError> {
    let mut work = UnitOfWork::new();
    let shipped = EventEnvelope::caused_by(
        &order,
        "warehouse",
        Shipped {
            order_id: order.data.order_id.clone(),
        },
    );
    work.emit_envelope(Destination::sqs(queue_url.as_str()), &shipped)?;
    Ok(work.with_output(()))
}

fn order(n: usize) -> EventRecord {
    let id = format!("order-{n}-{}", uuid::Uuid::new_v4().simple());
    let body = json!({
        "eventId": id, "eventType": "Shipped", "eventVersion": 1, "source": "tests",
        "time": "2026-12-06T00:00:00Z", "correlationId": id, "causationId": id,
        "data": {"orderId": format!("o-{n}")}
    });
    EventRecord::new(format!("m-{n}"), Source::Sqs, body.to_string())
}

#[tokio::test]
async fn events_the_stream_never_got_published_are_published_by_the_sweeper_once_their_destination_is_back(
) {
    let cloud = LocalCloud::connect().await;
    let idempotency = cloud.create_idempotency_table("sweep-idempotency").await;
    let outbox = cloud.create_outbox_table("sweep-outbox").await;
    // The destination is down: its queue does not exist until the outage ends (its URL is
    // known, as a deployed stack's is).
    let probe = cloud.create_queue("sweep-probe", &[]).await;
    let name = format!("sweep-down-{}", uuid::Uuid::new_v4().simple());
    let queue_url = format!("{}{name}", probe.url.trim_end_matches(&probe.name));
    let store = DynamoDbStore::new(cloud.dynamodb.clone(), &idempotency).with_outbox(&outbox);
    let handler = Handler::with_state(&queue_url, ship).layer(TransactionalLayer::new(
        store,
        IdempotencyConfig::new("warehouse"),
    ));
    let invocation = Invocation::new(Deadline::after(Duration::from_secs(30)));
    let mut staged_ids = Vec::new();
    for n in 0..3 {
        let record = order(n);
        let cause: Value = serde_json::from_str(record.body().unwrap()).unwrap();
        let committed = handler
            .handle(&record, &invocation)
            .await
            .expect("committed");
        assert!(!committed.replayed);
        staged_ids.push(eventkit::events::derived_event_id(
            cause["eventId"].as_str().unwrap(),
            "Shipped",
            "warehouse",
            None,
        ));
    }
    // The stream's relay gave up on them (its retries ran out while the queue was missing):
    // nothing here runs it.
    let relay = Relay::new(cloud.dynamodb.clone(), &outbox).with_sqs(cloud.sqs.clone());

    let backlog = Sweeper::new(relay.clone()).backlog().await.unwrap();
    assert_eq!(backlog.unpublished, 3);

    // Within the grace period the sweeper leaves them to the stream.
    let early = Sweeper::new(relay.clone()).sweep().await.unwrap();
    assert_eq!(
        (early.published, early.failed, early.backlog.unpublished),
        (0, 0, 3)
    );

    // Past it, with the destination still down: every publish fails, nothing is lost.
    let sweeper = Sweeper::new(relay.clone()).with_grace(Duration::ZERO);
    let down = sweeper.sweep().await.unwrap();
    assert_eq!(
        (down.published, down.failed, down.backlog.unpublished),
        (0, 3, 3)
    );

    // The destination is back: the next sweep publishes each event under its staged id.
    let queue = cloud.create_queue_named(name.clone(), &[]).await;
    assert_eq!(queue.url, queue_url);
    let back = sweeper.sweep().await.unwrap();
    assert_eq!((back.published, back.failed), (3, 0));
    assert_eq!(back.backlog, Backlog::default());
    let received = cloud.receive(&queue, 3, Duration::from_secs(10)).await;
    let mut ids: Vec<String> = received
        .iter()
        .map(|message| {
            let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            body["eventId"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    staged_ids.sort();
    assert_eq!(ids, staged_ids);
    let items = cloud
        .dynamodb
        .scan()
        .table_name(&outbox)
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 3);
    for item in &items {
        assert!(item.contains_key("publishedAt"), "{item:?}");
        assert!(
            !item.contains_key("unpublished"),
            "out of the index: {item:?}"
        );
        assert!(matches!(item.get("expiration"), Some(AttributeValue::N(_))));
    }

    // Published once: a later sweep finds nothing to send.
    let after = sweeper.sweep().await.unwrap();
    assert_eq!((after.published, after.failed), (0, 0));
    assert!(cloud
        .receive(&queue, 1, Duration::from_secs(2))
        .await
        .is_empty());
}

/// Events on completions: the sweeper reads them from the idempotency records, keeps an
/// unpublished record alive past its TTL, and publishes its events once the destination is
/// back.
#[tokio::test]
async fn events_riding_on_records_outlive_the_records_ttl_until_the_sweeper_publishes_them() {
    let cloud = LocalCloud::connect().await;
    // The idempotency table is the outbox: its key `id`, the unpublished index, TTL.
    let table = cloud.create_outbox_table("sweep-records").await;
    let probe = cloud.create_queue("sweep-records-probe", &[]).await;
    let name = format!("sweep-records-down-{}", uuid::Uuid::new_v4().simple());
    let queue_url = format!("{}{name}", probe.url.trim_end_matches(&probe.name));
    let store = DynamoDbStore::new(cloud.dynamodb.clone(), &table).with_outbox_on_completions();
    // A record retention of a minute: far less than the outage below.
    let config = IdempotencyConfig::new("warehouse").with_record_ttl(Duration::from_secs(60));
    let handler =
        Handler::with_state(&queue_url, ship).layer(TransactionalLayer::new(store, config));
    let invocation = Invocation::new(Deadline::after(Duration::from_secs(30)));
    for n in 0..3 {
        let committed = handler
            .handle(&order(n), &invocation)
            .await
            .expect("committed");
        assert!(!committed.replayed);
    }
    let relay = Relay::new(cloud.dynamodb.clone(), &table).with_sqs(cloud.sqs.clone());
    let sweeper = Sweeper::new(relay).with_grace(Duration::ZERO);
    let records = || async {
        cloud
            .dynamodb
            .scan()
            .table_name(&table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    };
    let now = chrono::Utc::now().timestamp();
    let ttl = |item: &std::collections::HashMap<String, AttributeValue>| -> i64 {
        item["expiration"].as_n().unwrap().parse().unwrap()
    };
    assert!(records().await.iter().all(|item| ttl(item) <= now + 120));

    // Destination down: nothing published, and every record's TTL pushed back.
    let down = sweeper.sweep().await.unwrap();
    assert_eq!(
        (down.published, down.failed, down.backlog.unpublished),
        (0, 3, 3)
    );
    for item in records().await {
        assert!(
            ttl(&item) >= now + 24 * 3600,
            "kept alive while unpublished: {item:?}"
        );
        assert_eq!(item["status"].as_s().unwrap(), "COMPLETED");
    }

    // Back: published once each, the records marked and no longer in the index.
    let queue = cloud.create_queue_named(name.clone(), &[]).await;
    let back = sweeper.sweep().await.unwrap();
    assert_eq!((back.published, back.failed), (3, 0));
    assert_eq!(back.backlog, Backlog::default());
    assert_eq!(
        cloud
            .receive(&queue, 3, Duration::from_secs(10))
            .await
            .len(),
        3
    );
    for item in records().await {
        assert!(
            item.contains_key("publishedAt") && !item.contains_key("unpublished"),
            "{item:?}"
        );
    }
    let after = sweeper.sweep().await.unwrap();
    assert_eq!((after.published, after.failed), (0, 0));
}

#[test]
fn the_backlog_is_an_emf_line_the_alarm_can_watch() {
    let backlog = Backlog {
        unpublished: 4,
        oldest_age_secs: 901,
    };
    let line = backlog.to_emf("relay");
    assert_eq!(line["OutboxUnpublished"], 4);
    assert_eq!(line["OutboxOldestUnpublishedAge"], 901);
    assert_eq!(line["service"], "relay");
    let metrics = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metrics["Namespace"], "eventkit");
    assert_eq!(metrics["Metrics"][1]["Name"], "OutboxOldestUnpublishedAge");
}
