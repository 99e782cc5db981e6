//! A function's log holds each invocation's lines before the invocation's report line, as
//! CloudWatch Logs does: the function below writes a burst of lines and posts its response
//! at once on a connection it opened beforehand (as `lambda_runtime` posts on a kept-alive
//! one), so its last lines are still in the pipe when the response arrives.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use eventkit_local::host::{FunctionHost, FunctionSpec};
use eventkit_local::logs::FunctionLog;
use tokio_util::sync::CancellationToken;

/// Lines the function writes per invocation.
const LINES: usize = 200;
const INVOCATIONS: usize = 30;

/// A function speaking the Runtime API in bash: `next` by curl, then the burst of lines,
/// then the response on a socket opened before the burst.
const FUNCTION: &str = r#"#!/bin/bash
api="$AWS_LAMBDA_RUNTIME_API"
base=/2018-06-01/runtime/invocation
while true; do
  id=$(curl -sS -D - -o /dev/null "http://$api$base/next" | tr -d '\r' \
    | sed -n 's/^lambda-runtime-aws-request-id: //Ip')
  [ -n "$id" ] || exit 1
  exec 3<>"/dev/tcp/${api%:*}/${api##*:}"
  for ((i = 1; i <= LINES; i++)); do echo "$id line $i"; done
  printf 'POST %s/%s/response HTTP/1.1\r\nHost: %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' \
    "$base" "$id" "$api" >&3
  cat <&3 >/dev/null
  exec 3<&-
done
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invocations_lines_come_before_its_report_line() {
    let dir = std::env::temp_dir().join(format!("log-order-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let binary = dir.join("bootstrap");
    std::fs::write(&binary, FUNCTION.replace("LINES", &LINES.to_string()))
        .expect("the function is written");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
        .expect("the function is executable");
    let spec = FunctionSpec {
        logical_id: "Burst".into(),
        name: "burst".into(),
        arn: "arn:aws:lambda:us-east-1:000000000000:function:burst".into(),
        binary,
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        environment: BTreeMap::new(),
    };
    let log = FunctionLog::create(&dir, "Burst", "Burst").expect("the log");
    let stopped = CancellationToken::new();
    let host = FunctionHost::start(spec, 1, log.clone(), &stopped);
    host.wait_ready(Duration::from_secs(20))
        .await
        .expect("the function starts");
    let mut request_ids = Vec::new();
    for _ in 0..INVOCATIONS {
        let (request_id, outcome) = host.invoke_identified(serde_json::json!({})).await;
        assert!(outcome.succeeded(), "{outcome}");
        request_ids.push(request_id);
    }
    stopped.cancel();

    let written = std::fs::read_to_string(log.path()).expect("the log file");
    let lines: Vec<&str> = written.lines().collect();
    for request_id in &request_ids {
        let report = lines
            .iter()
            .position(|line| line.contains("platform.report") && line.contains(request_id))
            .unwrap_or_else(|| panic!("no report line for {request_id}:\n{written}"));
        let own: Vec<usize> = (0..lines.len())
            .filter(|&at| lines[at].starts_with(&format!("{request_id} line ")))
            .collect();
        assert_eq!(own.len(), LINES, "{request_id}'s lines are all logged");
        let late = own.iter().filter(|&&at| at > report).count();
        assert_eq!(
            late, 0,
            "{late} of {request_id}'s lines come after its report line"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
