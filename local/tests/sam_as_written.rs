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
