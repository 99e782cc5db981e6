//! A closed stdout (`eventkit-local status | head`) ends a command quietly, as it ends a
//! Unix tool: no panic message, no failure of its own. The pipe's reader is gone before the
//! command starts, so every write meets it closed.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// Runs `eventkit-local args` in a fresh folder with its stdout a pipe nobody reads.
fn with_stdout_closed(args: &[&str]) -> (std::process::ExitStatus, String) {
    let folder = std::env::temp_dir().join(format!("closed-pipe-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&folder).expect("a temporary folder");
    let (reader, writer) = nix::unistd::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .args(args)
        .current_dir(&folder)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("eventkit-local runs");
    let _ = std::fs::remove_dir_all(&folder);
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn commands_end_quietly_when_their_reader_is_gone() {
    for args in [
        &["cloud", "env"][..],
        &["generate-event", "sqs"],
        &["generate-event", "eventbridge"],
    ] {
        let (status, stderr) = with_stdout_closed(args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "{args:?} wrote to stderr: {stderr}"
        );
        let quiet = status.success() || status.signal() == Some(nix::libc::SIGPIPE);
        assert!(quiet, "{args:?} ended with {status}");
    }
}
