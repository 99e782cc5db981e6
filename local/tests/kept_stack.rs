//! A stack left by `run --keep` is taken over by the next `run` of the same name: creating a
//! table or a bus that exists already gives the existing one (with its stream) instead of
//! failing, and what is sent while no run is up waits for the next one, none of it hidden
//! by the run that stopped. Against DynamoDB Local and LocalStack.

mod support;

use std::time::{Duration, Instant};

use eventkit_local::clients::{Clients, Endpoints};
use eventkit_local::resources::{create_bus, create_table};
use serde_json::json;
use support::{cloud_env, queue_url, root, topic_arn, App, Running};

#[tokio::test]
async fn an_existing_table_and_bus_are_taken_over() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "run with the local cloud's env (cargo xtask cloud env)"
    );
    let clients = Clients::new(&Endpoints::from_env()).await;
    let name = format!("kept-{}", uuid::Uuid::new_v4().simple());
    let table = json!({
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
        "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": true},
    });
    let first = create_table(&clients, &name, &table)
        .await
        .expect("created (is the local cloud up?)");
    let again = create_table(&clients, &name, &table)
        .await
        .expect("taken over");
    assert!(first.is_some());
    assert_eq!(first, again, "the same stream");

    let bus = create_bus(&clients, &name).await.expect("created");
    assert_eq!(create_bus(&clients, &name).await.expect("taken over"), bus);

    let _ = clients
        .dynamodb
        .delete_table()
        .table_name(&name)
        .send()
        .await;
    let _ = clients
        .eventbridge
        .delete_event_bus()
        .name(&name)
        .send()
        .await;
}

/// Messages in `stack`'s queue `name` (visible and in flight).
async fn depth(clients: &Clients, stack: &str, name: &str) -> u64 {
    let url = queue_url(clients, stack, name).await;
    let queue = eventkit_local::resources::QueueInfo {
        name: name.into(),
        url,
        arn: String::new(),
    };
    eventkit_local::queue_depth(clients, &queue)
        .await
        .expect("the depth is read")
}

/// What the probe was invoked with in `stack`'s current run: the alerts it saw, in order.
fn alerts_seen(stack: &str) -> Vec<String> {
    let log = root()
        .join("tests/apps/templates/.local-cloud/logs")
        .join(stack)
        .join("Probe.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("invoked with "))
        .filter_map(|line| {
            let start = line.find("after stop ")?;
            let end = line[start..].find('\\')?;
            Some(line[start..start + end].to_string())
        })
        .collect()
}

/// A run's receive still under way at LocalStack when the run stops would take what is
/// published in the next seconds and hide it for the delivery queue's visibility timeout
/// (70 s here): the next run would sit idle that long. Alerts published over the 2.5 s
/// after a kept run ended must all reach the next run's function at once.
#[tokio::test]
async fn what_is_published_right_after_a_kept_run_stops_reaches_the_next_run() {
    cloud_env();
    let stack = format!(
        "handover-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let app = App {
        template: "tests/apps/templates/topic-to-function.yaml",
        stack: &stack,
    };
    let first = Running::start(app, &["--no-watch", "--keep"]);
    let clients = Clients::new(&Endpoints::from_env()).await;
    let topic = topic_arn(&clients, &stack, "Alerts").await;
    let output = first.stop();
    assert!(output.contains("left in place"), "{output}");

    let published = Instant::now();
    let mut sent = Vec::new();
    for n in 0..10 {
        let alert = format!("after stop {n}");
        clients
            .sns
            .publish()
            .topic_arn(&topic)
            .message(serde_json::json!({ "alert": alert }).to_string())
            .send()
            .await
            .expect("published");
        sent.push(alert);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let second = Running::start(app, &["--no-watch"]);
    let waiting = Instant::now();
    while alerts_seen(&stack).len() < sent.len() && waiting.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut seen = alerts_seen(&stack);
    let output = second.stop();
    seen.sort();
    assert_eq!(
        seen,
        sent,
        "each alert published within {:?} after the first run stopped must reach the second \
         run once, within 30 s:\n{output}",
        published.elapsed()
    );
}

/// A stop that cuts an asynchronous invocation off is not the function failing: the event
/// (of a function without retries) is not dead-lettered but stays in its delivery queue,
/// for the next run of the kept stack.
#[tokio::test]
async fn an_invocation_cut_off_by_a_stop_is_not_dead_lettered() {
    cloud_env();
    let stack = format!("cutoff-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: "tests/apps/templates/topic-to-function.yaml",
        stack: &stack,
    };
    let first = Running::start(app, &["--no-watch", "--keep"]);
    let clients = Clients::new(&Endpoints::from_env()).await;
    let topic = topic_arn(&clients, &stack, "Alerts").await;
    clients
        .sns
        .publish()
        .topic_arn(&topic)
        .message(r#"{"alert": "hold on"}"#)
        .send()
        .await
        .expect("published");
    first.wait_for(|text| text.contains("holding "), "the probe to be busy");
    let output = first.stop();
    assert_eq!(
        depth(&clients, &stack, "ProbeDLQ").await,
        0,
        "nothing dead-lettered by the stop:\n{output}"
    );
    assert_eq!(
        depth(&clients, &stack, "Probe-async").await,
        1,
        "the event waits in the delivery queue:\n{output}"
    );
    // Taken over and deleted.
    Running::start(app, &["--no-watch"]).stop();
}

/// A kept stack outlives its run, not its local cloud: once its queues are gone (as
/// `cloud down` or a restart loses them), a command says so and drops the description,
/// instead of failing on the first missing queue, and the next command finds no stack.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_stack_whose_resources_are_gone_is_said_so_and_forgotten() {
    cloud_env();
    let stack = format!(
        "vanished-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let app = App {
        template: support::SQS_CONSUMER,
        stack: &stack,
    };
    let output = Running::start(app, &["--no-watch", "--keep"]).stop();
    assert!(output.contains("left in place"), "{output}");
    let description = root()
        .join("tests/apps/templates/.local-cloud/apps")
        .join(format!("{stack}.json"));
    assert!(description.is_file(), "kept, still described");

    let clients = Clients::new(&Endpoints::from_env()).await;
    for logical in ["OrdersQueue", "OrdersDLQ"] {
        let url = queue_url(&clients, &stack, logical).await;
        clients
            .sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .expect("the queue is deleted");
    }

    let status = support::cli(app, &["status"]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!status.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "stack {stack} was kept by a run that stopped, but its queue "
        )) && stderr.contains("no longer exists")
            && stderr.contains("its description is dropped"),
        "{stderr}"
    );
    assert!(!description.exists(), "the stale description is dropped");
    let listed = support::cli(app, &["dlq", "list"]);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        !listed.status.success()
            && stderr.contains(&format!("no application with stack {stack} is running")),
        "{stderr}"
    );
}
