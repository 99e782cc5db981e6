//! How `run` ends: SIGTERM (what `kill`, a service manager or a container's stop sends) stops
//! it as Ctrl-C does, deleting what it created and its description; with `--keep` the stack
//! stays described after the run is gone, so `dlq`, `status` and `send` still reach it until
//! a later run takes it over. A stop during the build ends the build with its compiler jobs
//! and creates nothing. Against the running local cloud.

mod support;

use std::time::Duration;

use eventkit_local::clients::{Clients, Endpoints};
use support::*;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// The description `run` keeps of `stack` for the other commands.
fn description(stack: &str) -> std::path::PathBuf {
    root()
        .join("tests/apps/templates/.local-cloud/apps")
        .join(format!("{stack}.json"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_run_and_deletes_what_it_created() {
    cloud_env();
    let stack = unique("sigterm");
    let app = App {
        template: SQS_CONSUMER,
        stack: &stack,
    };
    let running = Running::start(app, &["--no-watch"]);
    assert!(description(&stack).is_file());
    // The tests' --visibility-timeout 1 is below the consumer's 10 s: allowed, and said.
    let started = running.text();
    assert!(
        started
            .contains("warning: --visibility-timeout 1 is less than SqsConsumer's Timeout (10 s)"),
        "{started}"
    );
    let (output, exited) = running.terminate();
    assert!(exited, "the run exits by itself, successfully:\n{output}");
    assert!(
        output.contains("terminated (SIGTERM)") && output.contains("stopping"),
        "{output}"
    );
    assert!(
        !description(&stack).exists(),
        "the description is removed:\n{output}"
    );
    let clients = Clients::new(&Endpoints::from_env()).await;
    let queue = clients
        .sqs
        .get_queue_url()
        .queue_name(format!("{stack}-OrdersQueue"))
        .send()
        .await;
    assert!(queue.is_err(), "OrdersQueue was not deleted: {queue:?}");
}

#[test]
fn the_dead_letters_of_a_kept_stack_are_shown_and_redriven_after_its_run_stopped() {
    cloud_env();
    let stack = unique("kept-dlq");
    let app = App {
        template: SQS_CONSUMER,
        stack: &stack,
    };
    let running = Running::start(app, &["--no-watch", "--keep"]);
    let zero = sent_id(&ok(
        app,
        &[
            "send",
            "OrdersQueue",
            "--message",
            r#"{"orderId": "o-0", "quantity": 0}"#,
        ],
    ));
    wait_until(
        "the order of zero in OrdersDLQ",
        Duration::from_secs(60),
        || dead_letters(app, "OrdersDLQ") == 1,
    );
    let output = running.stop();
    assert!(output.contains("left in place"), "{output}");

    // No run: the commands still reach the kept stack.
    let status = ok(app, &["status"]);
    assert!(status.contains("kept by a run that stopped"), "{status}");
    assert_eq!(dead_letters(app, "OrdersDLQ"), 1);
    let shown = ok(app, &["dlq", "show", "OrdersDLQ"]);
    assert!(shown.contains(&format!("message {zero}")), "{shown}");
    let redriven = ok(app, &["dlq", "redrive", "OrdersDLQ"]);
    assert!(
        redriven.contains("1 message(s) back in OrdersQueue"),
        "{redriven}"
    );
    assert_eq!(dead_letters(app, "OrdersDLQ"), 0);
    let status = ok(app, &["status"]);
    assert!(
        status
            .lines()
            .any(|line| line.contains("OrdersQueue") && line.contains("visible 1")),
        "the redriven order waits in OrdersQueue for the next run:\n{status}"
    );

    // The next run takes it over; stopped without --keep, it deletes it and its description.
    Running::start(app, &["--no-watch"]).stop();
    assert!(!description(&stack).exists());
    let gone = cli(app, &["dlq", "list"]);
    assert!(!gone.status.success());
}

/// A cargo package whose build script sleeps: its build lasts until it is stopped.
fn slow_to_build(folder: &std::path::Path, package: &str) {
    let write = |path: &str, text: String| {
        let path = folder.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("a folder");
        }
        std::fs::write(path, text).expect("a file is written");
    };
    write(
        "Cargo.toml",
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [workspace]\n"
        ),
    );
    write("src/main.rs", "fn main() {}\n".into());
    write(
        "build.rs",
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(300)); }\n".into(),
    );
    write(
        "template.yml",
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SQS::Queue
  Consumer:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
"#
        .into(),
    );
}

/// The processes whose command line names `word` (cargo, rustc, the build script).
fn processes_naming(word: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.ok()?.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(word).then_some(cmdline)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_the_build_stops_the_build_and_creates_nothing() {
    cloud_env();
    let stack = unique("building");
    let package = unique("slow-build");
    let folder = std::env::temp_dir().join(&package);
    slow_to_build(&folder, &package);
    let running = Running::spawn_in(&folder, &stack, &["--stack-name", &stack, "--no-watch"]);
    // The build script runs: the build is under way, nothing is created yet.
    wait_until("the build script to run", Duration::from_secs(120), || {
        processes_naming(&format!("{package}-"))
            .iter()
            .any(|p| p.contains("build-script-build"))
    });
    assert!(running.text().contains(&format!("building {package}")));
    let (output, exited) = running.terminate();
    assert!(exited, "the run exits by itself, successfully:\n{output}");
    assert!(
        output.contains("terminated (SIGTERM)")
            && output.contains("stopped while building; nothing was left behind"),
        "{output}"
    );
    wait_until(
        "cargo and its jobs to stop",
        Duration::from_secs(10),
        || processes_naming(&package).is_empty(),
    );
    let description = folder.join(format!(".local-cloud/apps/{stack}.json"));
    assert!(!description.exists(), "no description is left");
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
