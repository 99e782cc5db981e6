//! `dlq list | show | redrive --queue-url URL`: dead-letter queues of no local application,
//! reached as on AWS, through the normal AWS configuration (here the local cloud's
//! `AWS_ENDPOINT_URL`, region and credentials from the environment). The source queue is
//! the one SQS lists for the DLQ, and the redrive goes back to it.

mod support;

use std::path::Path;
use std::process::Command;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use eventkit::idempotency::key::idempotency_key;
use eventkit_local::clients::{Clients, Endpoints};
use support::write_rule_dead_letter;

fn cli(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .current_dir(root)
        .args(args)
        .output()
        .expect("eventkit-local runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "eventkit-local {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_queue_named_by_url_is_listed_shown_and_redriven_to_its_source() {
    for variable in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID"] {
        assert!(
            std::env::var(variable).is_ok(),
            "{variable} is not set: run with the local cloud's env (cargo xtask cloud env)"
        );
    }
    let sqs = Clients::new(&Endpoints::from_env()).await.sqs;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (dlq_url, source_url, source_name) = dead_lettered(&sqs, &suffix, &["poison"]).await;

    let listed = cli(&["dlq", "list", "--queue-url", &dlq_url]);
    let line = listed
        .lines()
        .find(|line| line.contains(&format!("byurl-dlq-{suffix}")))
        .unwrap_or_else(|| panic!("the DLQ is not listed:\n{listed}"));
    assert_eq!(line.split_whitespace().nth(1), Some("1"), "{listed}");
    assert!(
        line.contains(&format!("redrive target of {source_name}")),
        "{listed}"
    );

    let shown = cli(&["dlq", "show", "--queue-url", &dlq_url]);
    assert!(shown.contains("body: poison"), "{shown}");

    // No idempotency table to ask (none named, none of an application): said once, and
    // every message goes back.
    let redriven = cli(&["dlq", "redrive", "--queue-url", &dlq_url]);
    assert_eq!(
        redriven.matches("no idempotency table").count(),
        1,
        "{redriven}"
    );
    assert!(
        redriven.contains(&format!("1 message(s) back in {source_name}")),
        "{redriven}"
    );
    assert_eq!(
        first_body(&sqs, &source_url).await.as_deref(),
        Some("poison"),
        "the message is back in its source queue"
    );
    for url in [&source_url, &dlq_url] {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
}

/// The bodies of the messages `url` gives in one receive (waiting up to 2 s), taken out of
/// the queue so that a later look sees only what arrived since.
async fn bodies_in(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let received = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("received");
    let mut bodies = Vec::new();
    for message in received.messages() {
        bodies.extend(message.body().map(str::to_string));
        sqs.delete_message()
            .queue_url(url)
            .set_receipt_handle(message.receipt_handle().map(str::to_string))
            .send()
            .await
            .expect("deleted");
    }
    bodies
}

/// `dlq list`'s (visible, in flight) for the DLQ at `url`.
fn dlq_counts(url: &str) -> Vec<String> {
    let listed = cli(&["dlq", "list", "--queue-url", url]);
    listed
        .lines()
        .find(|line| line.contains("byurl-dlq-"))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .take(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| panic!("the DLQ is not listed:\n{listed}"))
}

/// The body of the first message `url` gives within 2 s.
async fn first_body(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<String> {
    let received = sqs
        .receive_message()
        .queue_url(url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("received");
    received
        .messages()
        .first()
        .and_then(|m| m.body())
        .map(str::to_string)
}

/// A new queue: its URL and ARN.
async fn new_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("a queue (is the local cloud up?)")
        .queue_url()
        .expect("a URL")
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("its ARN")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("an ARN");
    (url, arn)
}

/// A source queue whose redrive policy sends to a fresh DLQ, and `bodies` dead-lettered
/// there by SQS itself (received once each, never deleted): (DLQ URL, source URL, source
/// name).
async fn dead_lettered(
    sqs: &aws_sdk_sqs::Client,
    suffix: &str,
    bodies: &[&str],
) -> (String, String, String) {
    let (dlq_url, dlq_arn) = new_queue(sqs, &format!("byurl-dlq-{suffix}")).await;
    let source_name = format!("byurl-src-{suffix}");
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1});
    let source_url = sqs
        .create_queue()
        .queue_name(&source_name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("the source queue")
        .queue_url()
        .expect("a URL")
        .to_string();
    for body in bodies {
        sqs.send_message()
            .queue_url(&source_url)
            .message_body(*body)
            .send()
            .await
            .expect("sent");
    }
    // Received once and not deleted: the next receive moves them to the DLQ.
    for _ in 0..3 {
        let _ = sqs
            .receive_message()
            .queue_url(&source_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await;
    }
    (dlq_url, source_url, source_name)
}

/// A redrive leaves a dead letter whose idempotency record (eventkit's layout, in DynamoDB
/// Local) is COMPLETED, by default and with the old `--skip-completed`; `--include-completed`
/// sends it back too. `dlq show` says which is which.
#[tokio::test(flavor = "multi_thread")]
async fn a_redrive_skips_what_already_happened() {
    let clients = Clients::new(&Endpoints::from_env()).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let done = r#"{"eventId": "e-done", "eventType": "OrderPlaced"}"#;
    let fresh = r#"{"eventId": "e-fresh", "eventType": "OrderPlaced"}"#;
    let (dlq_url, source_url, source_name) =
        dead_lettered(&clients.sqs, &suffix, &[done, fresh]).await;
    let table = format!("byurl-idempotency-{suffix}");
    clients
        .dynamodb
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("a definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("a key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("the table");
    clients
        .dynamodb
        .put_item()
        .table_name(&table)
        .item(
            "id",
            AttributeValue::S(idempotency_key("inventory", &serde_json::json!("e-done"))),
        )
        .item("status", AttributeValue::S("COMPLETED".into()))
        .send()
        .await
        .expect("the record");
    let keys = ["--idempotency-table", &table, "--key-prefix", "inventory"];

    let shown = cli(&[&["dlq", "show", "--queue-url", &dlq_url][..], &keys[..]].concat());
    let state_of = |event: &str| {
        let at = shown
            .find(&format!(r#""eventId": "{event}""#))
            .unwrap_or_else(|| panic!("{event} is not shown:\n{shown}"));
        shown[at..]
            .lines()
            .find_map(|line| line.trim().strip_prefix("idempotency: "))
            .map(str::to_string)
    };
    assert!(
        state_of("e-done").is_some_and(|s| s.starts_with("COMPLETED")),
        "{shown}"
    );
    assert!(
        state_of("e-fresh").is_some_and(|s| s.starts_with("no record")),
        "{shown}"
    );

    let redrive = |extra: &[&str]| {
        let base = ["dlq", "redrive", "--queue-url", &dlq_url];
        cli(&[&base[..], &keys[..], extra].concat())
    };
    let completed_stays = "its idempotency record is COMPLETED, its effect happened \
                           (--include-completed sends it back)";
    let redriven = redrive(&[]);
    assert!(
        redriven.contains(&format!(
            "1 message(s) back in {source_name} (receive, send, delete)"
        )),
        "{redriven}"
    );
    assert!(redriven.contains(completed_stays), "{redriven}");
    assert!(!redriven.contains("no idempotency table"), "{redriven}");
    assert_eq!(
        bodies_in(&clients.sqs, &source_url).await,
        [fresh],
        "only the one whose effect never happened"
    );
    let counts = dlq_counts(&dlq_url);
    assert_eq!(counts, ["1", "0"], "the completed one stays, visible");

    // The old flag, accepted, does what the default does.
    let again = redrive(&["--skip-completed"]);
    assert!(again.contains("nothing sent back"), "{again}");
    assert!(again.contains(completed_stays), "{again}");
    assert_eq!(dlq_counts(&dlq_url), ["1", "0"]);

    let forced = redrive(&["--include-completed"]);
    assert!(
        forced.contains(&format!("1 message(s) back in {source_name}")),
        "{forced}"
    );
    assert_eq!(bodies_in(&clients.sqs, &source_url).await, [done]);
    assert_eq!(dlq_counts(&dlq_url), ["0", "0"], "nothing left");

    let _ = clients
        .dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await;
    for url in [&source_url, &dlq_url] {
        let _ = clients.sqs.delete_queue().queue_url(url).send().await;
    }
}

/// On AWS a queue's redrive says nothing of why: the function's log in CloudWatch Logs
/// does. `dlq show --log-group` finds the last line of the group that names the message,
/// skipping the platform's own.
#[tokio::test(flavor = "multi_thread")]
async fn why_a_message_failed_is_found_in_the_log_group() {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let sqs = Clients::new(&Endpoints::from_env()).await.sqs;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (dlq_url, source_url, _) = dead_lettered(&sqs, &suffix, &["poison"]).await;
    let peeked = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .visibility_timeout(0)
        .send()
        .await
        .expect("received");
    let id = peeked
        .messages()
        .first()
        .and_then(|m| m.message_id())
        .expect("the dead letter")
        .to_string();

    let group = format!("/aws/lambda/byurl-{suffix}");
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("the log group");
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("2026/11/30/[$LATEST]abc")
        .send()
        .await
        .expect("the log stream");
    let now = chrono::Utc::now().timestamp_millis();
    let lines = [
        format!(r#"{{"level":"WARN","message":"record {id} failed once, retrying"}}"#),
        "START RequestId: 5b1e Version: $LATEST".to_string(),
        format!(
            r#"{{"level":"ERROR","message":"record {id} failed","error":"quantity must be positive"}}"#
        ),
        format!(r#"{{"type":"platform.report","record":{{"requestId":"{id}"}}}}"#),
        r#"{"level":"INFO","message":"record other-id done"}"#.to_string(),
    ];
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(at, line)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + at as i64)
                .message(line)
                .build()
                .expect("an event")
        })
        .collect();
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("2026/11/30/[$LATEST]abc")
        .set_log_events(Some(events))
        .send()
        .await
        .expect("the events");

    let shown = cli(&[
        "dlq",
        "show",
        "--queue-url",
        &dlq_url,
        "--log-group",
        &group,
    ]);
    assert!(
        shown.contains(&format!(
            "reason: {group} logged: record {id} failed: quantity must be positive"
        )),
        "{shown}"
    );
    let elsewhere = format!("/aws/lambda/byurl-empty-{suffix}");
    logs.create_log_group()
        .log_group_name(&elsewhere)
        .send()
        .await
        .expect("the other log group");
    let shown = cli(&[
        "dlq",
        "show",
        "--queue-url",
        &dlq_url,
        "--log-group",
        &elsewhere,
    ]);
    assert!(
        shown.contains(&format!("reason: not in its attributes nor in {elsewhere}")),
        "{shown}"
    );
    for url in [&source_url, &dlq_url] {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
    for name in [&group, &elsewhere] {
        let _ = logs.delete_log_group().log_group_name(name).send().await;
    }
}

/// What an EventBridge rule could not deliver carries its target (`TARGET_ARN`): the
/// redrive delivers it to that queue again, found by its ARN.
#[tokio::test(flavor = "multi_thread")]
async fn a_rules_dead_letter_is_delivered_to_its_target_again() {
    let sqs = Clients::new(&Endpoints::from_env()).await.sqs;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (dlq_url, _) = new_queue(&sqs, &format!("byurl-rule-dlq-{suffix}")).await;
    let target_name = format!("byurl-target-{suffix}");
    let (target_url, target_arn) = new_queue(&sqs, &target_name).await;
    let event = r#"{"source":"orders","detail-type":"OrderPlaced","detail":{"orderId":"o-1"}}"#;
    let error = ("SQS.AccessDenied", "the queue policy denies events");
    write_rule_dead_letter(&sqs, &dlq_url, event, &target_arn, error).await;

    let shown = cli(&["dlq", "show", "--queue-url", &dlq_url]);
    assert!(
        shown.contains("reason: the queue policy denies events (code SQS.AccessDenied)"),
        "{shown}"
    );
    let redriven = cli(&["dlq", "redrive", "--queue-url", &dlq_url]);
    assert!(
        redriven.contains(&format!(
            "1 message(s) delivered to their rule's target {target_name} again"
        )),
        "{redriven}"
    );
    assert_eq!(
        first_body(&sqs, &target_url).await.as_deref(),
        Some(event),
        "the event is in its target queue"
    );
    let left = cli(&["dlq", "list", "--queue-url", &dlq_url]);
    let line = left
        .lines()
        .find(|line| line.contains("byurl-rule-dlq-"))
        .unwrap_or_else(|| panic!("{left}"));
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{left}");
    for url in [&dlq_url, &target_url] {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
}

/// What SNS could not deliver to a subscription's queue names no subscription: the
/// subscriptions SNS lists with a redrive policy naming the DLQ say where it goes back, and
/// with one of them for its topic, the notification goes to that subscription's queue, not
/// to the topic (where every subscriber would get it again).
#[tokio::test(flavor = "multi_thread")]
async fn a_subscriptions_dead_letter_is_delivered_to_its_subscriber_again() {
    let clients = Clients::new(&Endpoints::from_env()).await;
    let (sqs, sns) = (&clients.sqs, &clients.sns);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topic_name = format!("byurl-topic-{suffix}");
    let topic = sns
        .create_topic()
        .name(&topic_name)
        .send()
        .await
        .expect("the topic")
        .topic_arn()
        .expect("an ARN")
        .to_string();
    let (dlq_url, dlq_arn) = new_queue(sqs, &format!("byurl-sub-dlq-{suffix}")).await;
    let inbox_name = format!("byurl-inbox-{suffix}");
    let (inbox_url, inbox_arn) = new_queue(sqs, &inbox_name).await;
    let (other_url, other_arn) = new_queue(sqs, &format!("byurl-other-{suffix}")).await;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn }).to_string();
    let subscription = sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&inbox_arn)
        .attributes("RedrivePolicy", &redrive)
        .return_subscription_arn(true)
        .send()
        .await
        .expect("the subscription")
        .subscription_arn()
        .expect("its ARN")
        .to_string();
    // Another subscriber of the topic, failing elsewhere: it must not get the message.
    let other = sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&other_arn)
        .return_subscription_arn(true)
        .send()
        .await
        .expect("the other subscription")
        .subscription_arn()
        .expect("its ARN")
        .to_string();
    let notification = serde_json::json!({
        "Type": "Notification",
        "MessageId": format!("n-{suffix}"),
        "TopicArn": topic,
        "Message": "{\"orderId\":\"o-1\"}",
        "Timestamp": "2026-11-30T10:00:00.000Z",
    })
    .to_string();
    sqs.send_message()
        .queue_url(&dlq_url)
        .message_body(&notification)
        .send()
        .await
        .expect("the dead letter is written");

    let listed = cli(&["dlq", "list", "--queue-url", &dlq_url]);
    assert!(
        listed.contains(&format!(
            "what subscriptions of {topic_name} could not deliver"
        )),
        "{listed}"
    );
    let redriven = cli(&["dlq", "redrive", "--queue-url", &dlq_url]);
    assert!(
        redriven.contains(&format!(
            "1 message(s) delivered to their subscription's queue {inbox_name} again"
        )),
        "{redriven}"
    );
    assert_eq!(
        first_body(sqs, &inbox_url).await.as_deref(),
        Some(notification.as_str()),
        "the notification is in the subscription's queue, as SNS would have delivered it"
    );
    assert_eq!(
        first_body(sqs, &other_url).await,
        None,
        "nobody else got it"
    );
    for arn in [&subscription, &other] {
        let _ = sns.unsubscribe().subscription_arn(arn).send().await;
    }
    let _ = sns.delete_topic().topic_arn(&topic).send().await;
    for url in [&dlq_url, &inbox_url, &other_url] {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
}
