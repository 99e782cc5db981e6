//! A SAM application as public Rust examples write one runs unmodified: the template is
//! `template.yml`, found without `--template`; the function says `Handler: bootstrap` and
//! no `BuildProperties`, so it runs its package's only binary; the topic subscribes the
//! queue inline (`Subscription`), so what is published reaches the function. What cannot
//! run fails before anything is created.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use eventkit_local::clients::{Clients, Endpoints};
use support::*;

const APP: &str = "tests/apps/fanout";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// `eventkit-local ARGS` in `dir`, as a user runs it in their project.
fn cli_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("eventkit-local runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A fresh folder for a template of a test's own.
fn scratch() -> PathBuf {
    let folder = std::env::temp_dir().join(unique("sam-app"));
    std::fs::create_dir_all(&folder).expect("a scratch folder");
    folder
}

#[test]
fn a_notification_published_to_the_topic_reaches_the_function_through_its_inline_subscription() {
    cloud_env();
    let stack = unique("fanout");
    let app = root().join(APP);
    let running = Running::start_in(&app, &stack, &["--stack-name", &stack, "--no-watch"]);
    let started = running.text();
    assert!(
        started.contains(&format!("template.yml: stack {stack}")),
        "{started}"
    );
    assert!(
        !started.contains("NotificationsTopic.Subscription"),
        "the inline subscription is created, not named as ignored:\n{started}"
    );

    let sent = cli_in(
        &app,
        &[
            "send",
            "NotificationsTopic",
            "--message",
            "order o-1 placed",
            "--stack-name",
            &stack,
        ],
    );
    let (stdout, stderr) = text(&sent);
    assert!(sent.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("sent to topic NotificationsTopic: "),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    running.wait_for(
        |text| text.contains("NotificationsFunction | notification received: order o-1 placed"),
        "the notification to reach the function",
    );

    // A sample file of a dozen entries: published with PublishBatch, ten per request.
    let entries: Vec<serde_json::Value> = (1..=12)
        .map(|n| serde_json::json!({"Id": format!("n{n}"), "Message": format!("batch order {n}")}))
        .collect();
    let batch = std::env::temp_dir().join(format!("{stack}-batch.json"));
    std::fs::write(&batch, serde_json::Value::from(entries).to_string())
        .expect("the batch file is written");
    let published = cli_in(
        &app,
        &[
            "send",
            "NotificationsTopic",
            "--batch",
            &batch.to_string_lossy(),
            "--stack-name",
            &stack,
        ],
    );
    let (stdout, stderr) = text(&published);
    assert!(published.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("sent 12 of 12 message(s) to topic NotificationsTopic\n  n1: "),
        "{stdout}"
    );
    for n in 1..=12 {
        running.wait_for(
            |text| {
                text.contains(&format!(
                    "NotificationsFunction | notification received: batch order {n}\n"
                ))
            },
            "each published entry to reach the function",
        );
    }
    let _ = std::fs::remove_file(&batch);

    // Accepted by SNS, received by no one: said.
    let unheard = cli_in(
        &app,
        &[
            "send",
            "UnsubscribedTopic",
            "--message",
            "lost",
            "--stack-name",
            &stack,
        ],
    );
    let (stdout, stderr) = text(&unheard);
    assert!(unheard.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("warning: topic UnsubscribedTopic has no subscriptions"),
        "{stderr}"
    );
    running.stop();
}

/// A function whose `Role` names an `AWS::IAM::Role` of the template (`!GetAtt
/// NotificationsRole.Arn`, as examples that write their own execution role do) runs: the
/// role is not created, the function's permissions are said not to be enforced, and what is
/// published reaches the function.
#[test]
fn a_function_with_a_role_of_the_template_runs_and_its_permissions_are_named_as_not_enforced() {
    cloud_env();
    let stack = unique("role");
    let app = root().join(APP).join("with-role");
    let running = Running::start_in(&app, &stack, &["--stack-name", &stack, "--no-watch"]);
    let started = running.text();
    assert!(
        started.contains("  NotificationsRole: AWS::IAM::Role (not enforced locally)")
            && started.contains("  NotificationsFunction.Role: not enforced locally (no IAM)"),
        "{started}"
    );
    let sent = cli_in(
        &app,
        &[
            "send",
            "NotificationsTopic",
            "--message",
            "order o-9 placed",
            "--stack-name",
            &stack,
        ],
    );
    let (stdout, stderr) = text(&sent);
    assert!(sent.status.success(), "{stdout}\n{stderr}");
    running.wait_for(
        |text| text.contains("NotificationsFunction | notification received: order o-9 placed"),
        "the notification to reach the function that has a role",
    );
    running.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_with_several_binaries_and_no_build_properties_fails_before_anything_is_created()
{
    cloud_env();
    let stack = unique("several");
    let folder = scratch();
    // The package of tests/apps holds three binaries; the template does not choose one.
    let template = format!(
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SQS::Queue
  Consumer:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
    Properties:
      CodeUri: {}
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
"#,
        root().join("tests/apps").display()
    );
    std::fs::write(folder.join("template.yml"), template).expect("the template is written");
    let failed = cli_in(&folder, &["run", "--stack-name", &stack, "--no-watch"]);
    let (stdout, stderr) = text(&failed);
    assert!(!failed.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Consumer: the cargo package at its CodeUri")
            && stderr.contains("several binaries (schedule-probe, sqs-consumer, stream-probe)")
            && stderr.contains("Metadata.BuildProperties.Binary"),
        "{stderr}"
    );
    let clients = Clients::new(&Endpoints::from_env()).await;
    let queue = clients
        .sqs
        .get_queue_url()
        .queue_name(format!("{stack}-Orders"))
        .send()
        .await;
    assert!(queue.is_err(), "the queue was created: {queue:?}");
    let _ = std::fs::remove_dir_all(&folder);
}

#[test]
fn without_a_template_the_error_names_what_was_looked_for() {
    let folder = scratch();
    let failed = cli_in(&folder, &["run", "--no-watch"]);
    let (stdout, stderr) = text(&failed);
    assert!(!failed.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("looked for template.yaml, template.yml, template.json"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&folder);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_that_hides_a_message_for_less_than_its_consumers_timeout_is_refused() {
    cloud_env();
    let stack = unique("visibility");
    let folder = scratch();
    let template = format!(
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 5
  Consumer:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: sqs-consumer
    Properties:
      CodeUri: {}
      Handler: bootstrap
      Runtime: provided.al2023
      Timeout: 10
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
"#,
        root().join("tests/apps").display()
    );
    std::fs::write(folder.join("template.yml"), template).expect("the template is written");
    // The refusal comes while the resources are created, before any function runs: a
    // stand-in file is binary enough, and nothing is built.
    std::fs::create_dir_all(folder.join("bin")).expect("a binaries folder");
    std::fs::write(folder.join("bin/sqs-consumer"), "").expect("a stand-in binary");
    let failed = cli_in(
        &folder,
        &[
            "run",
            "--stack-name",
            &stack,
            "--no-watch",
            "--prebuilt",
            "bin",
        ],
    );
    let (stdout, stderr) = text(&failed);
    assert!(!failed.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "Consumer.Events.Orders: Orders's VisibilityTimeout (5 s) is less than Consumer's \
             Timeout (10 s), and AWS refuses"
        ),
        "{stderr}"
    );
    let clients = Clients::new(&Endpoints::from_env()).await;
    let queue = clients
        .sqs
        .get_queue_url()
        .queue_name(format!("{stack}-Orders"))
        .send()
        .await;
    assert!(queue.is_err(), "the queue was left: {queue:?}");
    let _ = std::fs::remove_dir_all(&folder);
}

const PARTIAL_BATCH: &str = "tests/apps/partial-batch";

/// `eventkit-local ARGS` in `dir` that must succeed: its stdout.
fn ok_in(dir: &std::path::Path, args: &[&str]) -> String {
    let output = cli_in(dir, args);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "eventkit-local {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// The partial-batch application's README, run as written: its sample files (SendMessageBatch
/// entries, an SNS notification) and a publish reach the function, the order it rejects
/// reaches the DLQ with the invocation that rejected it named, `logs` and `status` show the
/// function's log and the stack's outputs, the redrive brings the order back to the function,
/// and SIGTERM ends it all.
#[test]
fn a_partial_batch_consumer_takes_its_own_samples_and_its_failures_are_redriven() {
    cloud_env();
    let stack = unique("partial");
    let app = root().join(PARTIAL_BATCH);
    let named = ["--stack-name", stack.as_str()];
    let running = Running::start_in(
        &app,
        &stack,
        &[
            "--stack-name",
            &stack,
            "--no-watch",
            "--visibility-timeout",
            "10",
        ],
    );
    let started = running.text();
    assert!(
        started.contains("  Key          OrdersQueueUrl\n  Description  Where producers send orders\n  Value        http"),
        "the outputs, as sam deploy prints them:\n{started}"
    );
    assert!(
        started.contains(&format!("{stack}-OrdersTopic")),
        "{started}"
    );
    assert!(
        !started.contains("warning:"),
        "10 s is the function's timeout:\n{started}"
    );

    let sent = ok_in(
        &app,
        &[
            &["send", "OrdersQueue", "--batch", "events/batch.json"][..],
            &named[..],
        ]
        .concat(),
    );
    assert!(
        sent.starts_with("sent 3 of 3 message(s) to queue OrdersQueue\n  order-1: "),
        "{sent}"
    );
    ok_in(
        &app,
        &[
            &["send", "OrdersQueue", "--file", "events/sns-message.json"][..],
            &named[..],
        ]
        .concat(),
    );
    ok_in(
        &app,
        &[
            &[
                "send",
                "OrdersTopic",
                "--message",
                r#"{"orderId": "o-5", "quantity": 1}"#,
            ][..],
            &named[..],
        ]
        .concat(),
    );
    for order in [
        "o-1 processed (2",
        "o-2 processed (1",
        "o-4 processed (3",
        "o-5 processed (1",
    ] {
        running.wait_for(
            |text| text.contains(&format!("OrdersFunction | order {order} items)")),
            order,
        );
    }

    // The order of no quantity: rejected on both receives, then in the DLQ.
    let dlq_depth = || {
        let listed = ok_in(&app, &[&["dlq", "list"][..], &named[..]].concat());
        listed
            .lines()
            .find(|line| line.starts_with("OrdersDLQ "))
            .and_then(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("OrdersDLQ is not listed:\n{listed}"))
    };
    wait_until(
        "o-3 in OrdersDLQ",
        std::time::Duration::from_secs(90),
        || dlq_depth() == 1,
    );
    let shown = ok_in(&app, &[&["dlq", "show"][..], &named[..]].concat());
    assert!(
        shown.contains(r#"body: {"orderId": "o-3", "quantity": 0}"#)
            && shown.contains("reason: OrdersFunction named it in batchItemFailures (invocation ")
            && shown.contains(&format!(
                ", receive 2 from {stack}-OrdersQueue); it logged: order o-3 rejected"
            )),
        "{shown}"
    );
    assert!(!shown.contains("idempotency"), "{shown}");

    let logged = ok_in(
        &app,
        &[&["logs", "OrdersFunction"][..], &named[..]].concat(),
    );
    assert_eq!(logged.matches("order o-3 rejected").count(), 2, "{logged}");
    assert!(logged.contains("order o-1 processed"), "{logged}");
    let status = ok_in(&app, &[&["status"][..], &named[..]].concat());
    assert!(status.contains("  Key          OrdersTopicArn"), "{status}");

    let redriven = ok_in(&app, &[&["dlq", "redrive"][..], &named[..]].concat());
    assert!(
        redriven.contains("1 message(s) back in OrdersQueue"),
        "{redriven}"
    );
    running.wait_for(
        |text| text.matches("OrdersFunction | order o-3 rejected").count() >= 3,
        "the redriven order to reach the function again",
    );

    let (output, exited) = running.terminate();
    assert!(
        exited && output.contains("terminated (SIGTERM)"),
        "{output}"
    );
}

/// `generate-event sqs` from the application's own samples: a record per SendMessageBatch
/// entry, each body wrapped in SNS's notification with `--from-sns`.
#[test]
fn sample_events_come_from_the_applications_own_sample_files() {
    let app = root().join(PARTIAL_BATCH);
    let event: serde_json::Value = serde_json::from_str(&ok_in(
        &app,
        &["generate-event", "sqs", "--batch", "events/batch.json"],
    ))
    .expect("JSON");
    let records = event["Records"].as_array().expect("records");
    assert_eq!(records.len(), 3);
    assert_eq!(records[2]["body"], r#"{"orderId": "o-3", "quantity": 0}"#);
    assert_eq!(
        records[0]["messageAttributes"]["source"]["stringValue"],
        "web"
    );

    let wrapped: serde_json::Value = serde_json::from_str(&ok_in(
        &app,
        &[
            "generate-event",
            "sqs",
            "--from-sns",
            "--body",
            "a",
            "--body",
            "b",
        ],
    ))
    .expect("JSON");
    let bodies: Vec<serde_json::Value> = wrapped["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|record| {
            serde_json::from_str(record["body"].as_str().expect("a body")).expect("an envelope")
        })
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["Type"], "Notification");
    assert_eq!(bodies[1]["Message"], "b");

    let refused = cli_in(&app, &["generate-event", "sns", "--from-sns"]);
    assert!(!refused.status.success());
}
