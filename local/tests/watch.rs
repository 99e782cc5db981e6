//! Watch and rebuild through the CLI, on a SAM application that is not eventkit's
//! (tests/apps' SQS consumer): `eventkit-local run` rebuilds the functions when a source
//! changes and restarts those whose binary changed; with `--prebuilt`, a binary replaced in
//! its folder restarts its function. The restarted function processes what is sent next.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use support::*;

/// The number after `restarts` on `function`'s line of `status`.
fn restarts(app: App, function: &str) -> u64 {
    let status = ok(app, &["status"]);
    status
        .lines()
        .find(|line| line.split_whitespace().next() == Some(function))
        .and_then(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|word| *word == "restarts")?;
            words.get(at + 1)?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no restarts of {function} in:\n{status}"))
}

/// Sends a valid order and waits until the function's log says it was processed.
fn processed_after_sending(app: App, order: &str) {
    let message = format!(r#"{{"orderId": "{order}", "quantity": 2}}"#);
    let id = sent_id(&ok(app, &["send", "OrdersQueue", "--message", &message]));
    wait_until(
        &format!("order {order} processed"),
        Duration::from_secs(60),
        || function_log(app).contains(&format!("message {id}: order of 2 processed")),
    );
}

/// A new modification time for `path`, its content untouched (what an editor's save does
/// to cargo's fingerprint).
fn touch(path: &Path) {
    std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .unwrap_or_else(|error| panic!("touching {}: {error}", path.display()));
}

#[test]
fn a_changed_source_or_a_replaced_binary_restarts_the_function_which_then_processes_orders() {
    cloud_env();
    let stack = format!("watch-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: SQS_CONSUMER,
        stack: &stack,
    };

    // Built by cargo: a changed source rebuilds the binary and restarts its function.
    let running = Running::start(app, &[]);
    assert!(
        running.text().contains("watching for changes"),
        "{}",
        running.text()
    );
    processed_after_sending(app, "before");
    assert_eq!(restarts(app, "SqsConsumer"), 0);
    touch(&root().join("tests/apps/src/bin/sqs_consumer.rs"));
    running.wait_for(
        |text| text.contains("restarted SqsConsumer"),
        "the rebuilt function to restart",
    );
    let text = running.text();
    assert!(
        text.contains("changed: ") && text.contains("sqs_consumer.rs; rebuilding"),
        "{text}"
    );
    // `status` reads the description `run` refreshes every second.
    wait_until(
        "status to count the restart",
        Duration::from_secs(10),
        || restarts(app, "SqsConsumer") == 1,
    );
    processed_after_sending(app, "after-rebuild");
    assert_eq!(restarts(app, "SqsConsumer"), 1, "restarted once, not again");
    running.stop();

    // Prebuilt: the binary replaced in its folder (renamed over, as a build tool does)
    // restarts the function; nothing is built.
    let folder = std::env::temp_dir().join(format!("prebuilt-{stack}"));
    std::fs::create_dir_all(&folder).unwrap();
    let built = eventkit_local::build::binaries_dir(false).join("sqs-consumer");
    std::fs::copy(&built, folder.join("sqs-consumer")).unwrap();
    let prebuilt = folder.to_string_lossy().into_owned();
    let running = Running::start(app, &["--prebuilt", &prebuilt]);
    processed_after_sending(app, "prebuilt");
    std::fs::copy(&built, folder.join("sqs-consumer.new")).unwrap();
    std::fs::rename(folder.join("sqs-consumer.new"), folder.join("sqs-consumer")).unwrap();
    running.wait_for(
        |text| text.contains("restarted SqsConsumer"),
        "the replaced binary's function to restart",
    );
    assert!(!running.text().contains("building"), "{}", running.text());
    wait_until(
        "status to count the restart",
        Duration::from_secs(10),
        || restarts(app, "SqsConsumer") == 1,
    );
    processed_after_sending(app, "after-replacement");
    assert_eq!(restarts(app, "SqsConsumer"), 1, "restarted once, not again");
    running.stop();
    std::fs::remove_dir_all(&folder).unwrap();
}
