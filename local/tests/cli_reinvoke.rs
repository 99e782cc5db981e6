//! A function's own dead-letter queue through the CLI, on a plain lambda_runtime function an
//! SNS topic invokes asynchronously (tests/apps' probe, no retries): the payload it fails
//! lands in its DLQ, `dlq list` says whose failures they are, and `dlq redrive` invokes the
//! function again with the same payload (it fails again, so it lands in the DLQ again).

mod support;

use std::time::Duration;

use support::*;

fn probe_log(app: App) -> String {
    let log = root()
        .join("tests/apps/templates/.local-cloud/logs")
        .join(app.stack)
        .join("schedule-probe.log");
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The payloads the probe rejected, in order.
fn rejected(app: App) -> Vec<String> {
    probe_log(app)
        .lines()
        .filter_map(|line| line.strip_prefix("rejected "))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_functions_own_dead_letters_are_invoked_again_by_redrive() {
    cloud_env();
    let stack = format!("again-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: "tests/apps/templates/topic-to-function.yaml",
        stack: &stack,
    };
    let running = Running::start(app, &["--no-watch"]);
    ok(
        app,
        &["send", "Alerts", "--message", r#"{"alert": "reject me"}"#],
    );
    wait_until(
        "the failed invocation in ProbeDLQ",
        Duration::from_secs(60),
        || dead_letters(app, "ProbeDLQ") == 1,
    );
    assert_eq!(rejected(app).len(), 1, "no retries");
    let listed = ok(app, &["dlq", "list"]);
    assert!(
        listed.contains("what Probe's asynchronous invocations failed"),
        "{listed}"
    );

    let redriven = ok(app, &["dlq", "redrive", "ProbeDLQ"]);
    assert!(
        redriven.contains("ProbeDLQ: 1 message(s) invoked Probe again, asynchronously"),
        "{redriven}"
    );
    wait_until(
        "the function to run it again",
        Duration::from_secs(60),
        || rejected(app).len() == 2,
    );
    // The payload Lambda invoked it with the first time (the SNS event), unchanged.
    let payloads = rejected(app);
    assert_eq!(payloads[0], payloads[1]);
    assert!(
        payloads[1].contains(r#""EventSource":"aws:sns""#),
        "{}",
        payloads[1]
    );
    wait_until(
        "it to fail into ProbeDLQ again",
        Duration::from_secs(30),
        || dead_letters(app, "ProbeDLQ") == 1,
    );
    running.stop();
}
