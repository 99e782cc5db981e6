//! `eventkit-local invoke` as a user runs it, on a SAM application that is not eventkit's
//! (tests/apps: a plain lambda_runtime SQS consumer with partial batch responses), against
//! the running local cloud (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`): the function is
//! built, invoked once with the event file, and its response and log are printed.

use std::path::Path;
use std::process::Command;

#[test]
fn invoke_prints_the_functions_response_and_its_log() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let output = Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .current_dir(root)
        .args([
            "invoke",
            "SqsConsumer",
            "--template",
            "tests/apps/templates/sqs-consumer.yaml",
            "--event",
            "tests/apps/events/sqs-two-orders.json",
        ])
        .output()
        .expect("eventkit-local runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "invoke failed:\n{stdout}\n{stderr}"
    );
    let (log, response) = stdout
        .split_once("--- response")
        .unwrap_or_else(|| panic!("no response printed:\n{stdout}"));
    let response: serde_json::Value =
        serde_json::from_str(response.trim()).expect("the response is JSON");
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": "22222222-2222-2222-2222-222222222222"}]),
        "{stdout}"
    );
    assert!(
        log.contains("message 11111111-1111-1111-1111-111111111111: order of 3 processed"),
        "the function's own log is printed:\n{stdout}"
    );
}
