//! `eventkit-local new` makes an application that works as generated, nothing edited: each
//! variant (one trigger each, and all three together) passes its own `cargo test` (unit
//! tests over the in-memory store, a test against DynamoDB Local) and `sam validate --lint`;
//! the application with every trigger builds with `sam build` (cargo-lambda, arm64) and runs
//! with `eventkit-local run`, where an order sent twice to each trigger is recorded once by
//! each function. The outbox variant (`--outbox`, on an SQS consumer) passes the same, and its
//! run publishes one `OrderRecorded` per order, under the id derived from the order's event,
//! to the queue its bus's rule feeds.
//!
//! The generated applications depend on this checkout's toolkit (`--eventkit-path`), as a
//! published runner's would on the same version from crates.io. Their builds share the
//! workspace's folders (`target/` for the debug builds, the infra checks' `target/sam-cargo`
//! for `sam build`), so what is built alike is built once.

mod support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventkit_local::clients::{Clients, Endpoints};
use support::*;

/// The tools `cargo xtask tools` installs (SAM CLI, cargo-lambda, zig), as the infra checks
/// find them.
fn tools_bin() -> PathBuf {
    let bin = std::env::var_os("EVENTKIT_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".local-cloud/tools/bin"));
    assert!(
        bin.join("sam").exists() && bin.join("cargo-lambda").exists(),
        "SAM CLI and cargo-lambda are not in {}: run `cargo xtask tools` (or set EVENTKIT_TOOLS_BIN)",
        bin.display()
    );
    bin
}

/// `eventkit-local new NAME --trigger ...` in a fresh folder; the application's folder.
fn generate(name: &str, triggers: &[&str]) -> PathBuf {
    generate_with(name, triggers, &[])
}

/// [`generate`] with more options (`--outbox`).
fn generate_with(name: &str, triggers: &[&str], options: &[&str]) -> PathBuf {
    let parent = std::env::temp_dir().join(format!(
        "new-app-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&parent).expect("a scratch folder");
    let shared = root().join("shared");
    let mut args = vec![
        "new",
        name,
        "--eventkit-path",
        shared.to_str().expect("a UTF-8 path"),
    ];
    for trigger in triggers {
        args.extend(["--trigger", trigger]);
    }
    args.extend(options);
    let output = Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .current_dir(&parent)
        .args(&args)
        .output()
        .expect("eventkit-local runs");
    assert!(output.status.success(), "new: {}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("template.yaml"), "{stdout}");
    parent.join(name)
}

/// A command in `app`, with the tools first on PATH, the local cloud's endpoints, and this
/// build's `eventkit-local` for the application's test to start the cloud with.
fn run_in(app: &Path, program: &Path, args: &[&str], envs: &[(&str, &OsStr)]) -> Output {
    let bin = tools_bin();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))
        .expect("PATH entries join");
    Command::new(program)
        .current_dir(app)
        .args(args)
        .env("PATH", path)
        .env("SAM_CLI_TELEMETRY", "0")
        .env("EVENTKIT_LOCAL", env!("CARGO_BIN_EXE_eventkit-local"))
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("{}: {error}", program.display()))
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

/// The debug builds of every generated application (cargo test, eventkit-local run): the
/// workspace's own target folder, where a dependency built with the same version, features
/// and profile as ours is reused (the generated profile is the workspace's).
fn debug_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The application's own tests and SAM's linter, as its README says to run them, and its
/// code as rustfmt would have it.
fn passes_its_tests_and_lint(app: &Path) {
    let formatted = run_in(app, &cargo(), &["fmt", "--check"], &[]);
    assert!(
        formatted.status.success(),
        "cargo fmt --check: {}",
        describe(&formatted)
    );
    let target = debug_target();
    let tested = run_in(
        app,
        &cargo(),
        &["test"],
        &[("CARGO_TARGET_DIR", target.as_os_str())],
    );
    assert!(tested.status.success(), "cargo test: {}", describe(&tested));
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        stdout.contains("an_order_delivered_twice_is_recorded_once ... ok")
            && stdout.contains("an_order_delivered_twice_is_one_item_in_dynamodb ... ok"),
        "the application's unit and local-cloud tests ran:\n{stdout}"
    );
    let linted = run_in(app, &tools_bin().join("sam"), &["validate", "--lint"], &[]);
    assert!(
        linted.status.success(),
        "sam validate --lint: {}",
        describe(&linted)
    );
}

#[test]
fn each_single_trigger_application_passes_its_own_tests_and_lint() {
    cloud_env();
    for trigger in ["sqs", "sns", "eventbridge"] {
        let app = generate(&format!("shop-{trigger}"), &[trigger]);
        passes_its_tests_and_lint(&app);
        let _ = std::fs::remove_dir_all(app.parent().unwrap_or(&app));
    }
}

#[test]
fn the_application_with_every_trigger_builds_for_lambda_and_records_each_order_once_locally() {
    cloud_env();
    let app = generate("shop", &["sqs", "sns", "eventbridge"]);
    passes_its_tests_and_lint(&app);

    builds_for_lambda(
        &app,
        &[
            "SqsConsumerFunction",
            "SnsConsumerFunction",
            "EventbridgeConsumerFunction",
        ],
    );

    let (running, stack) = run(&app);
    for (target, message) in [
        ("OrdersQueue", "events/sqs-message.json"),
        ("OrdersTopic", "events/sns-message.json"),
        ("OrdersBus", "events/eventbridge-message.json"),
    ] {
        send_twice(&app, &stack, target, message);
    }

    let log = |function: &str| log_of(&app, &stack, function);
    let functions = [
        "SqsConsumerFunction",
        "SnsConsumerFunction",
        "EventbridgeConsumerFunction",
    ];
    wait_until(
        "each function to record the order and replay its duplicate",
        Duration::from_secs(120),
        || {
            functions.iter().all(|function| {
                let text = log(function);
                text.contains("order recorded") && text.contains("duplicate delivery; replayed")
            })
        },
    );
    for function in functions {
        let text = log(function);
        assert_eq!(
            text.matches("order recorded").count(),
            1,
            "{function} recorded the order once:\n{text}"
        );
    }

    // The effect itself: one item per function in the orders table the stack created.
    let (recorded_by, items) = orders_recorded(&running);
    assert_eq!(
        recorded_by,
        ["eventbridge-consumer", "sns-consumer", "sqs-consumer"],
        "{items:?}"
    );
    running.stop();
    let _ = std::fs::remove_dir_all(app.parent().unwrap_or(&app));
}

#[test]
fn the_outbox_application_builds_for_lambda_and_publishes_one_event_per_order_locally() {
    cloud_env();
    let app = generate_with("shop-outbox", &["sqs"], &["--outbox"]);
    passes_its_tests_and_lint(&app);
    builds_for_lambda(&app, &["SqsConsumerFunction", "RelayFunction"]);

    let (running, stack) = run(&app);
    send_twice(&app, &stack, "OrdersQueue", "events/sqs-message.json");

    // The event the consumer stages for the order: its id derived from the order's.
    let message =
        std::fs::read_to_string(app.join("events/sqs-message.json")).expect("the sample message");
    let message: serde_json::Value = serde_json::from_str(&message).expect("JSON");
    let order_event = message["eventId"].as_str().expect("the sample's eventId");
    let expected =
        eventkit::events::derived_event_id(order_event, "OrderRecorded", "sqs-consumer", None);

    let consumer = || log_of(&app, &stack, "SqsConsumerFunction");
    let relay = || log_of(&app, &stack, "RelayFunction");
    wait_until(
        "the consumer to record the order and replay its duplicate, and the relay to publish",
        Duration::from_secs(120),
        || {
            let text = consumer();
            text.contains("order recorded")
                && text.contains("duplicate delivery; replayed")
                && relay().contains("outbox event published")
        },
    );

    // What the bus's rule delivered: the one event, read until a quiet spell long past the
    // stream's polling and the relay's batching window, so a second copy would be seen.
    let queue = output(&running, "OrderEventsQueueUrl");
    let received = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(receive_until_quiet(&queue, Duration::from_secs(10)));
    let events: Vec<&serde_json::Value> = received
        .iter()
        .filter(|event| event["detail-type"] == "OrderRecorded")
        .collect();
    assert_eq!(
        events.len(),
        1,
        "one OrderRecorded for two deliveries: {received:#?}"
    );
    let event = &events[0];
    assert_eq!(event["detail"]["eventId"], expected.as_str(), "{event:#}");
    assert_eq!(event["detail"]["causationId"], order_event, "{event:#}");
    assert_eq!(event["detail"]["data"]["orderId"], "o-1001", "{event:#}");
    assert_eq!(event["source"], "sqs-consumer", "{event:#}");

    let text = consumer();
    assert_eq!(
        text.matches("order recorded").count(),
        1,
        "the consumer recorded the order once:\n{text}"
    );
    let text = relay();
    assert_eq!(
        text.matches("outbox event published").count(),
        1,
        "the relay published once:\n{text}"
    );
    let (recorded_by, items) = orders_recorded(&running);
    assert_eq!(recorded_by, ["sqs-consumer"], "{items:?}");
    running.stop();
    let _ = std::fs::remove_dir_all(app.parent().unwrap_or(&app));
}

/// `sam build` as a deployment runs it (cargo-lambda, arm64), unoptimised: what it checks
/// holds for any profile, and CI has two cores. Each of `functions` is an AArch64
/// executable.
fn builds_for_lambda(app: &Path, functions: &[&str]) {
    // The infra checks' `sam build` folder, so dependencies built alike are built once.
    let sam_target = root().join("target/sam-cargo");
    let built = run_in(
        app,
        &tools_bin().join("sam"),
        &["build"],
        &[
            ("CARGO_TARGET_DIR", sam_target.as_os_str()),
            ("CARGO_PROFILE_RELEASE_LTO", OsStr::new("off")),
            ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", OsStr::new("256")),
            ("CARGO_PROFILE_RELEASE_OPT_LEVEL", OsStr::new("0")),
        ],
    );
    assert!(built.status.success(), "sam build: {}", describe(&built));
    for function in functions {
        let bootstrap = app.join(".aws-sam/build").join(function).join("bootstrap");
        let bytes = std::fs::read(&bootstrap)
            .unwrap_or_else(|error| panic!("{}: {error}", bootstrap.display()));
        assert!(
            bytes.len() > 64 && bytes.starts_with(b"\x7fELF") && bytes[18] == 0xb7,
            "{} is not an AArch64 executable",
            bootstrap.display()
        );
    }
}

/// `eventkit-local run` of `app` under a stack of its own, with the binaries cargo test
/// built; the run and the stack's name.
fn run(app: &Path) -> (Running, String) {
    let stack = format!("shop-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let running = Running::start_in_with(
        app,
        &stack,
        &["--stack-name", &stack, "--no-watch"],
        &[("CARGO_TARGET_DIR", debug_target().as_os_str())],
    );
    (running, stack)
}

/// Sends `message` to `target` twice: the second copy is a duplicate (the same eventId).
fn send_twice(app: &Path, stack: &str, target: &str, message: &str) {
    for _ in 0..2 {
        let sent = run_in(
            app,
            Path::new(env!("CARGO_BIN_EXE_eventkit-local")),
            &["send", target, "--file", message, "--stack-name", stack],
            &[],
        );
        assert!(sent.status.success(), "send {target}: {}", describe(&sent));
    }
}

/// The log of the running `function`, empty before it has one.
fn log_of(app: &Path, stack: &str, function: &str) -> String {
    let log = app
        .join(".local-cloud/logs")
        .join(stack)
        .join(format!("{function}.log"));
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The value of the stack's output `key`, as the run printed it.
fn output(running: &Running, key: &str) -> String {
    let started = running.text();
    started
        .lines()
        .skip_while(|line| !line.contains(key))
        .find_map(|line| line.trim().strip_prefix("Value"))
        .map(|value| value.trim().to_string())
        .unwrap_or_else(|| panic!("the run names no {key} output:\n{started}"))
}

/// Who recorded the sample order (`recordedBy`, sorted), and every item of the orders table.
fn orders_recorded(running: &Running) -> (Vec<String>, Vec<HashMap<String, AttributeValue>>) {
    let table = output(running, "OrdersTableName");
    let items = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            let clients = Clients::new(&Endpoints::from_env()).await;
            clients
                .dynamodb
                .scan()
                .table_name(&table)
                .send()
                .await
                .expect("the orders table scans")
                .items
                .unwrap_or_default()
        });
    let mut recorded_by: Vec<String> = items
        .iter()
        .filter(|item| item.get("orderId") == Some(&AttributeValue::S("o-1001".into())))
        .filter_map(|item| item.get("recordedBy")?.as_s().ok().cloned())
        .collect();
    recorded_by.sort();
    (recorded_by, items)
}

/// Every message of `queue` (each deleted once read), as JSON, read until none arrived for
/// `quiet` after the first (which is waited for a minute).
async fn receive_until_quiet(queue: &str, quiet: Duration) -> Vec<serde_json::Value> {
    let clients = Clients::new(&Endpoints::from_env()).await;
    let mut received = Vec::new();
    let begun = std::time::Instant::now();
    let mut last = begun;
    while (received.is_empty() && begun.elapsed() < Duration::from_secs(60))
        || last.elapsed() < quiet
    {
        let batch = clients
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("the queue answers");
        for message in batch.messages() {
            last = std::time::Instant::now();
            let body = message.body().unwrap_or_default();
            received.push(
                serde_json::from_str(body)
                    .unwrap_or_else(|error| panic!("{error}: a message not JSON: {body}")),
            );
            if let Some(handle) = message.receipt_handle() {
                clients
                    .sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("the message deletes");
            }
        }
    }
    received
}
