//! A function's own dead-letter queue through the CLI, on a plain lambda_runtime function an
//! SNS topic invokes asynchronously (tests/apps' probe, no retries): the payload it fails
//! lands in its DLQ, `dlq list` says whose failures they are, and `dlq redrive` invokes the
//! function again with the same payload (it fails again, so it lands in the DLQ again).

mod support;

use std::time::Duration;

use eventkit_local::clients::{Clients, Endpoints};
use support::*;

fn probe_log(app: App) -> String {
    let log = root()
        .join("tests/apps/templates/.local-cloud/logs")
        .join(app.stack)
        .join("Probe.log");
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

/// Redrives `queue`'s one message, which must invoke the probe again, and waits until the
/// probe has rejected `runs` payloads in all.
fn redrive_reinvokes(app: App, queue: &str, runs: usize) {
    let redriven = ok(app, &["dlq", "redrive", queue]);
    assert!(
        redriven.contains(&format!(
            "{queue}: 1 message(s) invoked Probe again, asynchronously"
        )),
        "{redriven}"
    );
    wait_until(
        &format!("the probe to run {runs} times"),
        Duration::from_secs(60),
        || rejected(app).len() == runs,
    );
}

/// Publishes an alert the probe rejects and waits for its failure to reach `queue`.
fn fail_an_alert(app: App, queue: &str) {
    ok(
        app,
        &["send", "Alerts", "--message", r#"{"alert": "reject me"}"#],
    );
    wait_until(
        &format!("the failure in {queue}"),
        Duration::from_secs(60),
        || dead_letters(app, queue) == 1,
    );
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
    fail_an_alert(app, "ProbeDLQ");
    assert_eq!(rejected(app).len(), 1, "no retries");
    let listed = ok(app, &["dlq", "list"]);
    assert!(
        listed.contains("what Probe's asynchronous invocations failed"),
        "{listed}"
    );

    redrive_reinvokes(app, "ProbeDLQ", 2);
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

/// The running application's description (`.local-cloud/apps/<stack>.json`).
fn described(app: App) -> serde_json::Value {
    let path = root()
        .join("tests/apps/templates/.local-cloud/apps")
        .join(format!("{}.json", app.stack));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The messages of a queue of the application (received once, handed back at once).
fn queue_bodies(app: App, queue: &str) -> Vec<serde_json::Value> {
    let shown = ok(app, &["dlq", "show", queue]);
    shown
        .lines()
        .filter_map(|line| line.trim().strip_prefix("body: "))
        .map(|body| serde_json::from_str(body).unwrap_or(serde_json::json!(body)))
        .collect()
}

#[test]
fn an_on_failure_record_and_a_rules_dead_letter_invoke_the_function_again() {
    cloud_env();
    let stack = format!("onfail-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: "tests/apps/templates/on-failure.yaml",
        stack: &stack,
    };
    let running = Running::start(app, &["--no-watch"]);

    // An OnFailure destination holds invocation records, not payloads: the redrive invokes
    // the function the record names with the payload the record holds.
    fail_an_alert(app, "ProbeFailures");
    let records = queue_bodies(app, "ProbeFailures");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0]["requestContext"]["condition"], "RetriesExhausted",
        "{records:?}"
    );
    redrive_reinvokes(app, "ProbeFailures", 2);
    let payloads = rejected(app);
    assert_eq!(
        payloads[0], payloads[1],
        "the payload of the first invocation"
    );
    wait_until(
        "its second failure's record",
        Duration::from_secs(30),
        || dead_letters(app, "ProbeFailures") == 1,
    );
    let again = queue_bodies(app, "ProbeFailures");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["requestPayload"], records[0]["requestPayload"]);

    // What a rule could not deliver comes with the target it was for (EventBridge's
    // RULE_ARN / TARGET_ARN / ERROR_* attributes): the redrive delivers it there again.
    // The rule's target here is the function's delivery queue; the dead letter is the one
    // EventBridge would write when that delivery failed.
    let delivery = described(app)["deliveries"]
        .as_object()
        .and_then(|functions| functions.values().find(|f| f[0] == "Probe"))
        .map(|function| function[1]["arn"].as_str().unwrap_or_default().to_string())
        .expect("Probe's delivery queue is described");
    let event = serde_json::json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Audit",
        "source": "tests.audit", "account": "000000000000", "time": "2026-11-30T12:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"note": "reject this audit"},
    });
    let rule_dlq = described(app)["queues"]["AuditDLQ"]["url"]
        .as_str()
        .map(str::to_string)
        .expect("AuditDLQ is described");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let clients = Clients::new(&Endpoints::from_env()).await;
        let error = ("ThrottlingException", "the target is throttled");
        write_rule_dead_letter(
            &clients.sqs,
            &rule_dlq,
            &event.to_string(),
            &delivery,
            error,
        )
        .await;
    });
    let shown = ok(app, &["dlq", "show", "AuditDLQ"]);
    assert!(
        shown.contains("reason: the target is throttled (code ThrottlingException)"),
        "{shown}"
    );
    redrive_reinvokes(app, "AuditDLQ", 3);
    let invoked: serde_json::Value =
        serde_json::from_str(&rejected(app)[2]).expect("the payload is JSON");
    assert_eq!(
        invoked, event,
        "invoked with the event as the rule delivered it"
    );
    assert_eq!(dead_letters(app, "AuditDLQ"), 0);
    running.stop();
}
