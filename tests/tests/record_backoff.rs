//! Per-record backoff on real SQS queues in LocalStack: the test plays Lambda's event source
//! mapping (poll, invoke, delete the successes), the function sends its transiently failed
//! records back with `ChangeMessageVisibilityBatch`, and SQS decides when each is received
//! again.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::Message;
use eventkit::batch::{Deadline, RecordError};
use eventkit::handler::{Handler, Json};
use eventkit::redelivery::{RecordBackoff, Redelivery};
use eventkit::runtime::EventFunction;
use eventkit_tests::{sqs_event, LocalCloud, Queue};
use serde_json::Value;

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

/// A function whose dependency is down: every record fails transiently.
fn failing(
    redelivery: Redelivery,
) -> EventFunction<impl eventkit::handler::RecordHandler<Output = ()>> {
    EventFunction::new(Handler::new(|Json(_): Json<Value>| async {
        Err::<(), _>(RecordError::transient("the stock table is unavailable"))
    }))
    .with_redelivery(redelivery)
}

async fn send(cloud: &LocalCloud, queue: &Queue) {
    cloud
        .sqs
        .send_message()
        .queue_url(&queue.url)
        .message_body(r#"{"n": 1}"#)
        .send()
        .await
        .expect("SendMessage");
}

/// The next receive of the queue's message and how long after `since` it came; `None` if it
/// did not come within `within`.
async fn next_receive(
    cloud: &LocalCloud,
    queue: &Queue,
    since: Instant,
    within: Duration,
) -> Option<(Message, Duration)> {
    while since.elapsed() < within {
        let batch = cloud.poll_batch(queue, 10, Duration::from_secs(1)).await;
        if let Some(message) = batch.into_iter().next() {
            return Some((message, since.elapsed()));
        }
    }
    None
}

/// Receives the message, runs the function on it, applies the response (the failure
/// stays); returns when the response came back.
async fn fail_once<H>(
    cloud: &LocalCloud,
    queue: &Queue,
    function: &EventFunction<H>,
    message: Message,
) -> Instant
where
    H: eventkit::handler::RecordHandler,
    H::Output: eventkit::handler::RecordOutput,
{
    let response = function
        .handle_sqs(
            &sqs_event(queue, std::slice::from_ref(&message)),
            deadline(),
        )
        .await
        .expect("failures are reported, not raised");
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [message.message_id().unwrap_or_default()]);
    let answered = Instant::now();
    cloud
        .apply_batch_response(queue, &[message], &response)
        .await;
    answered
}

fn receive_count(message: &Message) -> Option<&str> {
    message
        .attributes()?
        .get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        .map(String::as_str)
}

#[tokio::test]
async fn a_transiently_failed_record_stays_away_for_its_backoff_growing_with_its_receives() {
    let cloud = LocalCloud::connect().await;
    // The queue alone would hand the message out again after 1 s (LocalStack: by 2 s).
    let (queue, _dlq) = cloud.create_queue_with_dlq("backoff", 5, 1).await;
    let backoff = RecordBackoff::new(Duration::from_secs(6), Duration::from_secs(60));
    let function = failing(Redelivery::new(cloud.sqs.clone()).with_backoff(backoff));
    send(&cloud, &queue).await;

    let (first, _) = next_receive(&cloud, &queue, Instant::now(), Duration::from_secs(10))
        .await
        .expect("the message arrives");
    assert_eq!(receive_count(&first), Some("1"));
    // First receive failed: away 3 to 6 s.
    let answered = fail_once(&cloud, &queue, &function, first).await;
    let (second, after) = next_receive(&cloud, &queue, answered, Duration::from_secs(8))
        .await
        .expect("the record comes back after its backoff");
    assert!(
        after >= Duration::from_millis(1_500),
        "back after {after:?}, before its backoff"
    );
    assert_eq!(receive_count(&second), Some("2"));

    // Second receive failed: away 6 to 12 s (equal jitter under 6 s × 2); the window leaves
    // LocalStack its second or two of lag past the longest draw.
    let answered = fail_once(&cloud, &queue, &function, second).await;
    let (third, after) = next_receive(&cloud, &queue, answered, Duration::from_secs(16))
        .await
        .expect("the record comes back after its backoff");
    assert!(
        after >= Duration::from_millis(5_500),
        "back after {after:?}, before its backoff"
    );
    assert_eq!(receive_count(&third), Some("3"));
    cloud.delete(&queue, &[&third]).await;
}

#[tokio::test]
async fn with_backoff_off_a_failed_record_comes_back_at_the_queues_visibility_timeout() {
    let cloud = LocalCloud::connect().await;
    let (queue, _dlq) = cloud.create_queue_with_dlq("backoff-off", 5, 4).await;
    let function = failing(Redelivery::new(cloud.sqs.clone()).with_backoff(RecordBackoff::off()));
    send(&cloud, &queue).await;

    let (first, _) = next_receive(&cloud, &queue, Instant::now(), Duration::from_secs(10))
        .await
        .expect("the message arrives");
    let answered = fail_once(&cloud, &queue, &function, first).await;
    let (again, after) = next_receive(&cloud, &queue, answered, Duration::from_secs(10))
        .await
        .expect("the record comes back after the visibility timeout");
    // Received at about 0 s, answered just after: back at the queue's 4 s.
    assert!(
        after >= Duration::from_millis(3_000),
        "back after {after:?}"
    );
    assert!(
        after <= Duration::from_millis(6_500),
        "back after {after:?}"
    );
    cloud.delete(&queue, &[&again]).await;
}

#[tokio::test]
async fn when_sqs_cannot_be_reached_the_batch_response_returns_anyway() {
    let cloud = LocalCloud::connect().await;
    let (queue, _dlq) = cloud.create_queue_with_dlq("backoff-down", 5, 30).await;
    send(&cloud, &queue).await;
    let (message, _) = next_receive(&cloud, &queue, Instant::now(), Duration::from_secs(10))
        .await
        .expect("the message arrives");
    // The function's SQS client points where nothing answers.
    let unreachable = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&cloud.config)
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let function = failing(Redelivery::new(unreachable));
    let started = Instant::now();
    let response = function
        .handle_sqs(
            &sqs_event(&queue, std::slice::from_ref(&message)),
            deadline(),
        )
        .await
        .expect("failures are reported, not raised");
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    cloud.delete(&queue, &[&message]).await;
}
