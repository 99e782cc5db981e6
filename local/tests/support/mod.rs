//! What the CLI tests share: the test applications, the CLI run as a user runs it, and
//! `eventkit-local run` in the background.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use eventkit_local::clients::Clients;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const SQS_CONSUMER: &str = "tests/apps/templates/sqs-consumer.yaml";
pub const SNS_TO_SQS: &str = "tests/apps/templates/sns-to-sqs.yaml";

/// An application of the tests: its template and stack name.
#[derive(Clone, Copy)]
pub struct App<'a> {
    pub template: &'a str,
    pub stack: &'a str,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

pub fn cloud_env() {
    for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
        assert!(
            std::env::var(variable).is_ok_and(|value| !value.is_empty()),
            "{variable} is not set: run with the local cloud's env (eval \"$(cargo xtask cloud env)\")"
        );
    }
}

/// One CLI command on `app`.
pub fn cli(app: App, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .current_dir(root())
        .args(args)
        .args(["--template", app.template, "--stack-name", app.stack])
        .output()
        .expect("eventkit-local runs")
}

/// One CLI command on `app` that must succeed; its stdout, or a panic with both outputs.
pub fn ok(app: App, args: &[&str]) -> String {
    let output = cli(app, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "eventkit-local {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `eventkit-local run` in the background, stopped with Ctrl-C (SIGINT) when dropped.
pub struct Running {
    child: Child,
    output: PathBuf,
}

impl Running {
    pub fn start(app: App, extra: &[&str]) -> Self {
        let mut args = vec!["--template", app.template, "--stack-name", app.stack];
        args.extend(["--visibility-timeout", "1"]);
        args.extend(extra);
        Self::start_in(&root(), app.stack, &args)
    }

    /// `eventkit-local run ARGS` started in `dir`, as a user runs it in their project.
    pub fn start_in(dir: &Path, stack: &str, args: &[&str]) -> Self {
        let running = Self::spawn_in(dir, stack, args);
        running.wait_for(
            |text| text.contains("running; logs in"),
            "the application to run",
        );
        running
    }

    /// `start_in` with more environment variables.
    pub fn start_in_with(
        dir: &Path,
        stack: &str,
        args: &[&str],
        envs: &[(&str, &std::ffi::OsStr)],
    ) -> Self {
        let running = Self::spawn_with(dir, stack, args, envs);
        running.wait_for(
            |text| text.contains("running; logs in"),
            "the application to run",
        );
        running
    }

    /// `eventkit-local run ARGS` started in `dir`, not waited for.
    pub fn spawn_in(dir: &Path, stack: &str, args: &[&str]) -> Self {
        Self::spawn_with(dir, stack, args, &[])
    }

    fn spawn_with(
        dir: &Path,
        stack: &str,
        args: &[&str],
        envs: &[(&str, &std::ffi::OsStr)],
    ) -> Self {
        let output = std::env::temp_dir().join(format!("{stack}-{}.out", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&output).expect("an output file");
        let child = Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
            .current_dir(dir)
            .arg("run")
            .args(args)
            .envs(envs.iter().copied())
            .stdout(file.try_clone().expect("the output file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("eventkit-local run starts");
        Self { child, output }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    pub fn wait_for(&self, done: impl Fn(&str) -> bool, what: &str) {
        let started = Instant::now();
        // The first run builds the function (about a minute on a cold target).
        while !done(&self.text()) {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "waited 300 s for {what}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Ctrl-C, and the exit awaited; its output.
    pub fn stop(mut self) -> String {
        self.interrupt();
        self.text()
    }

    pub fn interrupt(&mut self) {
        self.signal(Signal::SIGINT);
    }

    /// SIGTERM (what `kill` and service managers send), and the exit awaited: its output
    /// and whether it exited by itself, successfully, within 20 s.
    pub fn terminate(mut self) -> (String, bool) {
        let exited = self.signal(Signal::SIGTERM);
        (self.text(), exited.is_some_and(|status| status.success()))
    }

    /// Sends `signal` and waits up to 20 s for the exit (then kills): the exit status when
    /// the process exited by itself.
    fn signal(&mut self, signal: Signal) -> Option<std::process::ExitStatus> {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt();
        }
    }
}

/// The id `send` printed (`sent to queue OrdersQueue: <id>`).
pub fn sent_id(stdout: &str) -> String {
    stdout
        .trim()
        .rsplit(": ")
        .next()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| panic!("no message id in {stdout:?}"))
        .to_string()
}

/// The messages `dlq list` shows for `queue`: visible plus in flight.
pub fn dead_letters(app: App, queue: &str) -> u64 {
    let listed = ok(app, &["dlq", "list"]);
    let count = |line: &str, column: usize| -> Option<u64> {
        line.split_whitespace().nth(column)?.parse().ok()
    };
    listed
        .lines()
        .find(|line| line.split_whitespace().next() == Some(queue))
        .and_then(|line| Some(count(line, 1)? + count(line, 2)?))
        .unwrap_or_else(|| panic!("{queue} is not listed:\n{listed}"))
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The log of the consumer of `app` (SQS_CONSUMER or SNS_TO_SQS), named after its logical
/// id as `run` names it.
pub fn function_log(app: App) -> String {
    let consumer = match app.template {
        SNS_TO_SQS => "OrderConsumer",
        _ => "SqsConsumer",
    };
    let log = root()
        .join("tests/apps/templates/.local-cloud/logs")
        .join(app.stack)
        .join(format!("{consumer}.log"));
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Writes into `queue_url` what EventBridge writes to a target's dead-letter queue when it
/// cannot deliver `event` to `target`: the event, with `RULE_ARN`, `TARGET_ARN`,
/// `ERROR_CODE` and `ERROR_MESSAGE` attributes.
pub async fn write_rule_dead_letter(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: &str,
    target: &str,
    (code, message): (&str, &str),
) {
    let text = |value: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .expect("an attribute")
    };
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(event)
        .message_attributes(
            "RULE_ARN",
            text("arn:aws:events:us-east-1:000000000000:rule/audit"),
        )
        .message_attributes("TARGET_ARN", text(target))
        .message_attributes("ERROR_CODE", text(code))
        .message_attributes("ERROR_MESSAGE", text(message))
        .send()
        .await
        .expect("the dead letter is written");
}

/// The URL of `stack`'s queue `logical`.
pub async fn queue_url(clients: &Clients, stack: &str, logical: &str) -> String {
    clients
        .sqs
        .get_queue_url()
        .queue_name(format!("{stack}-{logical}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{stack}-{logical}: {e}"))
        .queue_url()
        .unwrap_or_default()
        .to_string()
}

/// The ARN of `stack`'s topic `logical`.
pub async fn topic_arn(clients: &Clients, stack: &str, logical: &str) -> String {
    let topics = clients
        .sns
        .list_topics()
        .send()
        .await
        .expect("the topics are listed");
    topics
        .topics()
        .iter()
        .filter_map(|topic| topic.topic_arn())
        .find(|arn| arn.ends_with(&format!(":{stack}-{logical}")))
        .unwrap_or_else(|| panic!("no topic {logical} of {stack}"))
        .to_string()
}
