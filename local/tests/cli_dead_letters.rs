//! The dead-letter round trip as a user runs it through the CLI, on a SAM application that is
//! not eventkit's (tests/apps: a plain lambda_runtime SQS consumer with partial batch
//! responses, which rejects orders below `MinimumQuantity`), against the running local cloud
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`):
//! `run` → `send` → the failures reach the DLQ (`dlq list`, `status`) → `dlq show` names
//! why → `run` stopped with `--keep` (the kept stack's dead letters still listed) and
//! started again with the fix (`MinimumQuantity=0`) → `dlq redrive` one chosen message
//! (receive, send, delete), then the rest (SQS's message-move task) → the fixed function
//! processes them → Ctrl-C deletes everything.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use eventkit_local::clients::{Clients, Endpoints};
use support::*;

#[test]
fn failures_reach_the_dlq_are_explained_and_come_back_to_the_fixed_function() {
    cloud_env();
    let stack = format!("dlq-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: SQS_CONSUMER,
        stack: &stack,
    };

    // Nothing runs yet: the commands refuse rather than guess.
    let refused = cli(app, &["send", "OrdersQueue", "--message", "{}"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no application with stack"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let first = Running::start(app, &["--keep"]);
    // What the template asks for and does not run here is named, once.
    let started = first.text();
    assert_eq!(
        started.matches("not emulated locally (").count(),
        1,
        "{started}"
    );
    assert_eq!(
        started
            .matches("SqsConsumer.Architectures: ignored: the binary is built for and runs on this machine")
            .count(),
        1,
        "{started}"
    );
    let good = sent_id(&ok(
        app,
        &[
            "send",
            "OrdersQueue",
            "--message",
            r#"{"orderId": "o-1", "quantity": 2}"#,
        ],
    ));
    let zero = [
        r#"{"orderId": "o-2", "quantity": 0}"#,
        r#"{"orderId": "o-3", "quantity": 0}"#,
    ]
    .map(|order| sent_id(&ok(app, &["send", "OrdersQueue", "--message", order])));

    // maxReceiveCount 2: each order of zero is rejected twice, then dead-lettered.
    wait_until(
        "both orders of zero in OrdersDLQ",
        Duration::from_secs(60),
        || dead_letters(app, "OrdersDLQ") == 2,
    );
    let log = function_log(app);
    assert!(
        log.contains(&format!("message {good}: order of 2 processed")),
        "{log}"
    );
    assert_eq!(
        log.matches(&format!("message {}: rejected", zero[0]))
            .count(),
        2,
        "{log}"
    );

    let status = ok(app, &["status"]);
    assert!(status.contains("SqsConsumer"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.contains("OrdersDLQ") && l.contains("(dead-letter queue)")),
        "{status}"
    );

    let shown = ok(app, &["dlq", "show", "OrdersDLQ"]);
    for id in &zero {
        let reason = reason_of(&shown, id);
        // Which invocation named it in batchItemFailures, on its last (second) receive, and
        // what the function said of it.
        assert!(
            reason.starts_with("SqsConsumer named it in batchItemFailures (invocation ")
                && reason.ends_with(&format!(
                    ", receive 2 from {stack}-OrdersQueue); it logged: message {id}: rejected, \
                     quantity 0 is below the minimum of 1"
                )),
            "{shown}"
        );
    }
    // No idempotency table: nothing said about idempotency.
    assert!(!shown.contains("idempotency"), "{shown}");
    assert!(!shown.contains(&good), "{shown}");

    // Stopped with --keep: the queues and what they hold stay, and so does the description,
    // marked kept, for the commands that reach the stack without a run.
    assert!(described(app).exists());
    let output = first.stop();
    assert!(
        output.contains(&format!("stack {stack} left in place")),
        "{output}"
    );
    let kept = std::fs::read_to_string(described(app)).unwrap_or_default();
    assert!(
        kept.contains(r#""kept": true"#),
        "the description stays, marked kept:\n{kept}"
    );
    assert!(
        queue_exists(&format!("{stack}-OrdersDLQ")),
        "--keep keeps the queues"
    );
    // No run, yet the kept stack's dead letters are listed.
    assert_eq!(dead_letters(app, "OrdersDLQ"), 2);

    // The fix: the same stack again, with the minimum at zero.
    let fixed = Running::start(app, &["--parameter", "MinimumQuantity=0"]);
    assert_eq!(
        dead_letters(app, "OrdersDLQ"),
        2,
        "the dead letters were kept"
    );

    let chosen = ok(
        app,
        &["dlq", "redrive", "OrdersDLQ", "--message-id", &zero[0]],
    );
    assert!(
        chosen.contains("1 message(s) back in OrdersQueue (receive, send, delete)"),
        "{chosen}"
    );
    // Sent anew, the copy has an id of its own.
    let copy = chosen
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(&format!("moved {} (now ", zero[0]))
        })
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("the copy's id is not shown:\n{chosen}"))
        .to_string();
    wait_until(
        "the chosen order processed",
        Duration::from_secs(30),
        || function_log(app).contains(&format!("message {copy}: order of 0 processed")),
    );
    assert_eq!(dead_letters(app, "OrdersDLQ"), 1, "the other one stays");

    let rest = ok(app, &["dlq", "redrive"]);
    assert!(
        rest.contains("1 message(s) back in OrdersQueue (SQS message-move task)"),
        "{rest}"
    );
    wait_until("the other order processed", Duration::from_secs(30), || {
        function_log(app).contains(&format!("message {}: order of 0 processed", zero[1]))
    });
    assert_eq!(dead_letters(app, "OrdersDLQ"), 0);

    let output = fixed.stop();
    assert!(!output.contains("left in place"), "{output}");
    assert!(
        !described(app).exists(),
        "the description is removed on a clean stop"
    );
    let after = cli(app, &["status"]);
    assert!(!after.status.success(), "a stopped application is not used");
    assert!(
        !queue_exists(&format!("{stack}-OrdersDLQ")),
        "without --keep, Ctrl-C deletes the resources"
    );
}

/// The second shape of the serverless-patterns examples: a topic fans out to a queue (raw
/// delivery) that the function consumes. Orders go in through the topic by its logical id; a
/// rejected one reaches the DLQ, named by the queue's message id in `dlq show`; a redrive
/// (SQS's message-move task) hands it to the still unfixed function, which rejects it twice
/// more, back into the DLQ.
#[test]
fn orders_published_to_the_topic_reach_the_function_and_failures_its_dlq() {
    cloud_env();
    let stack = format!("fan-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: SNS_TO_SQS,
        stack: &stack,
    };
    let running = Running::start(app, &[]);
    let started = running.text();
    assert!(
        started.contains("OrdersQueuePolicy: AWS::SQS::QueuePolicy (not enforced locally)"),
        "{started}"
    );
    for order in [
        r#"{"orderId": "o-1", "quantity": 5}"#,
        r#"{"orderId": "o-2", "quantity": 0}"#,
    ] {
        let sent = ok(app, &["send", "OrdersTopic", "--message", order]);
        assert!(sent.starts_with("sent to topic OrdersTopic: "), "{sent}");
    }
    wait_until(
        "the order of zero in OrdersDLQ",
        Duration::from_secs(60),
        || dead_letters(app, "OrdersDLQ") == 1,
    );
    assert!(
        function_log(app).contains("order of 5 processed"),
        "{}",
        function_log(app)
    );
    // The subscription's redrive target is a dead-letter queue too, empty here.
    assert_eq!(dead_letters(app, "TopicDeliveryDLQ"), 0);

    let shown = ok(app, &["dlq", "show"]);
    let id = shown
        .lines()
        .find_map(|line| line.trim().strip_prefix("message "))
        .unwrap_or_else(|| panic!("no message shown:\n{shown}"))
        .to_string();
    assert!(
        shown.contains(r#"body: {"orderId": "o-2", "quantity": 0}"#),
        "{shown}"
    );
    let reason = reason_of(&shown, &id);
    assert!(
        reason.starts_with("OrderConsumer named it in batchItemFailures (invocation ")
            && reason.ends_with(&format!(
                ", receive 2 from {stack}-OrdersQueue); it logged: message {id}: rejected, \
                 quantity 0 is below the minimum of 1"
            )),
        "{shown}"
    );

    let redriven = ok(app, &["dlq", "redrive", "OrdersDLQ"]);
    assert!(
        redriven.contains("OrdersDLQ: 1 message(s) back in OrdersQueue"),
        "{redriven}"
    );
    let rejected = format!("message {id}: rejected");
    wait_until(
        "the redriven order rejected twice more",
        Duration::from_secs(60),
        || function_log(app).matches(&rejected).count() == 4,
    );
    wait_until(
        "the order back in OrdersDLQ",
        Duration::from_secs(30),
        || dead_letters(app, "OrdersDLQ") == 1,
    );
    running.stop();
    assert!(!described(app).exists());
}

/// A function that cannot start (its binary is missing): `run` fails naming it, and what it
/// created for the application is deleted again.
#[test]
fn a_run_whose_function_cannot_start_leaves_nothing_behind() {
    cloud_env();
    let stack = format!("nobin-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: SQS_CONSUMER,
        stack: &stack,
    };
    let empty = std::env::temp_dir().join(&stack);
    std::fs::create_dir_all(&empty).expect("an empty folder");
    let empty = empty.to_string_lossy().into_owned();
    let output = cli(app, &["run", "--prebuilt", &empty]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("SqsConsumer: binary") && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(
        !queue_exists(&format!("{stack}-OrdersQueue")),
        "the queue was deleted"
    );
    assert!(!described(app).exists());
}

fn described(app: App) -> PathBuf {
    root()
        .join("tests/apps/templates/.local-cloud/apps")
        .join(format!("{}.json", app.stack))
}

fn queue_exists(name: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let clients = Clients::new(&Endpoints::from_env()).await;
        clients
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .is_ok()
    })
}

/// The reason `dlq show` gives for message `id`.
fn reason_of(shown: &str, id: &str) -> String {
    shown
        .split(&format!("message {id}\n"))
        .nth(1)
        .and_then(|after| {
            after
                .lines()
                .find_map(|line| line.trim().strip_prefix("reason: "))
        })
        .unwrap_or_else(|| panic!("no reason shown for {id}:\n{shown}"))
        .to_string()
}
