//! Batch processing on real SQS queues in LocalStack, with the idempotency layer on DynamoDB
//! Local: the test plays Lambda's event source mapping (poll, invoke, delete the successes)
//! and SQS itself redelivers failures and moves them to the DLQ.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit::batch::{Deadline, RecordError};
use eventkit::events::{records_from, DecodeOptions, EventEnvelope, VersionedEvent};
use eventkit::handler::{Handler, Json, RecordHandlerExt};
use eventkit::idempotency::{DynamoDbStore, IdempotencyConfig, IdempotencyLayer};
use eventkit::runtime::EventFunction;
use eventkit_tests::{sqs_event, LocalCloud, Queue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

async fn send(cloud: &LocalCloud, queue: &Queue, body: &str) {
    cloud
        .sqs
        .send_message()
        .queue_url(&queue.url)
        .message_body(body)
        .send()
        .await
        .expect("SendMessage");
}

async fn approximate_count(cloud: &LocalCloud, queue: &Queue) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    let attributes = cloud
        .sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    [
        ApproximateNumberOfMessages,
        ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|name| attributes.get(name)?.parse::<usize>().ok())
    .sum()
}

#[tokio::test]
async fn failures_come_back_after_the_visibility_timeout_and_reach_the_dlq() {
    let cloud = LocalCloud::connect().await;
    let (queue, dlq) = cloud.create_queue_with_dlq("partial", 3, 1).await;

    // Successful runs per message number, and every attempt at the poison ones.
    let succeeded: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let poison_attempts: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let (ok_log, poison_log) = (succeeded.clone(), poison_attempts.clone());
    let function = EventFunction::new(Handler::new(move |Json(body): Json<Value>| {
        let (ok_log, poison_log) = (ok_log.clone(), poison_log.clone());
        async move {
            let n = body["n"].as_u64().ok_or("no n")?;
            if body["poison"] == json!(true) {
                *poison_log.lock().map_err(|_| "lock")?.entry(n).or_default() += 1;
                return Err(RecordError::permanent(format!(
                    "order {n} can never be reserved"
                )));
            }
            *ok_log.lock().map_err(|_| "lock")?.entry(n).or_default() += 1;
            Ok(n)
        }
    }));

    for n in 0..6 {
        let body = json!({"n": n, "poison": n == 1 || n == 4});
        send(&cloud, &queue, &body.to_string()).await;
    }

    // Lambda's loop: poll, invoke, delete the successes; until the queue has drained.
    let started = Instant::now();
    let mut invocations = 0;
    while approximate_count(&cloud, &queue).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "queue never drained"
        );
        let messages = cloud.poll_batch(&queue, 10, Duration::from_secs(1)).await;
        if messages.is_empty() {
            continue;
        }
        let response = function
            .handle_sqs(&sqs_event(&queue, &messages), deadline())
            .await
            .expect("partial failures are reported, not raised");
        // Exactly the poison messages are reported failed.
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        let poison_ids: Vec<_> = messages
            .iter()
            .filter(|m| m.body().unwrap_or_default().contains("\"poison\":true"))
            .filter_map(|m| m.message_id().map(String::from))
            .collect();
        assert_eq!(failed, poison_ids);
        cloud
            .apply_batch_response(&queue, &messages, &response)
            .await;
        invocations += 1;
    }

    let succeeded = succeeded.lock().unwrap().clone();
    assert_eq!(succeeded, HashMap::from([(0, 1), (2, 1), (3, 1), (5, 1)]));
    // Each poison message was tried maxReceiveCount (3) times, then SQS moved it.
    let poison_attempts = poison_attempts.lock().unwrap().clone();
    assert_eq!(poison_attempts, HashMap::from([(1, 3), (4, 3)]));
    assert!(invocations >= 3);
    let dead = cloud.receive(&dlq, 2, Duration::from_secs(5)).await;
    let mut dead_numbers: Vec<u64> = dead
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    dead_numbers.sort_unstable();
    assert_eq!(dead_numbers, [1, 4]);
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderPlaced {
    order_id: String,
}

impl VersionedEvent for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const CURRENT_VERSION: u32 = 1;
}

fn order_placed(order_id: &str) -> EventEnvelope<OrderPlaced> {
    EventEnvelope::new(
        "tests",
        OrderPlaced {
            order_id: order_id.into(),
        },
    )
}

#[tokio::test]
async fn a_batch_of_ten_with_three_duplicates_and_two_failures() {
    let cloud = LocalCloud::connect().await;
    let queue = cloud.create_queue("ten", &[]).await;
    let idempotency_table = cloud.create_table("idempotency", "id").await;
    let counters = cloud.create_table("counters", "orderId").await;

    // The side effect: an atomic ADD per order, which would double-count without the layer.
    let dynamodb = cloud.dynamodb.clone();
    let table = counters.clone();
    let handler = Handler::new(move |event: EventEnvelope<OrderPlaced>| {
        let (dynamodb, table) = (dynamodb.clone(), table.clone());
        async move {
            dynamodb
                .update_item()
                .table_name(table)
                .key("orderId", AttributeValue::S(event.data.order_id.clone()))
                .update_expression("ADD handled :one")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .send()
                .await
                .map_err(|e| {
                    RecordError::transient(
                        aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
            Ok::<_, RecordError>(format!("reserved {}", event.data.order_id))
        }
    })
    .layer(IdempotencyLayer::new(
        DynamoDbStore::new(cloud.dynamodb.clone(), idempotency_table),
        IdempotencyConfig::new("inventory"),
    ));
    let function = EventFunction::new(handler);

    // Three orders processed once already.
    let earlier: Vec<_> = ["o-1", "o-2", "o-3"]
        .iter()
        .map(|id| order_placed(id))
        .collect();
    for event in &earlier {
        send(&cloud, &queue, &serde_json::to_string(event).unwrap()).await;
    }
    let first = cloud.receive(&queue, 3, Duration::from_secs(10)).await;
    let response = function
        .handle_sqs(&sqs_event(&queue, &first), deadline())
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    cloud.apply_batch_response(&queue, &first, &response).await;

    // The batch: those three again (new message ids, same eventIds), five new, two poison.
    for event in &earlier {
        send(&cloud, &queue, &serde_json::to_string(event).unwrap()).await;
    }
    for id in ["o-4", "o-5", "o-6", "o-7", "o-8"] {
        send(
            &cloud,
            &queue,
            &serde_json::to_string(&order_placed(id)).unwrap(),
        )
        .await;
    }
    let poison_bodies = [
        "{\"eventId\": truncated".to_string(),
        json!({"eventType": "OrderPlaced", "data": {}}).to_string(),
    ];
    for body in &poison_bodies {
        send(&cloud, &queue, body).await;
    }
    let batch = cloud.receive(&queue, 10, Duration::from_secs(10)).await;
    assert_eq!(batch.len(), 10);

    let event = sqs_event(&queue, &batch);
    let outcome = function
        .process(records_from(&event, &DecodeOptions::default()), deadline())
        .await;
    let response = function.handle_sqs(&event, deadline()).await.unwrap();

    let ids_where = |wanted: &dyn Fn(&str) -> bool| -> Vec<String> {
        batch
            .iter()
            .filter(|m| wanted(m.body().unwrap_or_default()))
            .map(|m| m.message_id().unwrap().to_string())
            .collect()
    };
    let poison = ids_where(&|body| poison_bodies.iter().any(|p| p == body));
    let duplicates = ids_where(&|body| earlier.iter().any(|e| body.contains(&e.event_id)));
    assert_eq!((poison.len(), duplicates.len()), (2, 3));
    let mut reported: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    reported.sort();
    let mut expected = poison.clone();
    expected.sort();
    assert_eq!(
        reported, expected,
        "exactly the two poison messages are reported"
    );

    // First pass over the batch: 3 replays, 5 new runs, 2 failures naming their records.
    let replayed: Vec<_> = outcome
        .records
        .iter()
        .filter(|r| r.result.as_ref().is_ok_and(|h| h.replayed))
        .collect();
    assert_eq!(replayed.len(), 3);
    assert!(replayed.iter().all(|r| duplicates.contains(&r.id)));
    assert_eq!(outcome.succeeded(), 8);
    for (id, failure) in outcome.failures() {
        assert!(poison.contains(&id.to_string()));
        assert!(
            failure.reason.contains(id),
            "reason names the record: {}",
            failure.reason
        );
    }
    let replayed_output = &replayed[0].result.as_ref().unwrap().output;
    assert!(
        replayed_output.starts_with("reserved o-"),
        "{replayed_output}"
    );

    // Effects: every order counted exactly once, despite the duplicates and the second pass.
    for n in 1..=8 {
        let item = cloud
            .dynamodb
            .get_item()
            .table_name(&counters)
            .key("orderId", AttributeValue::S(format!("o-{n}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("order o-{n} was never handled"));
        assert_eq!(
            item["handled"],
            AttributeValue::N("1".into()),
            "order o-{n}"
        );
    }
}
