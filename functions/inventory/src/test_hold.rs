//! A hold point for tests, and only for tests: when `EVENTKIT_TEST_HOLD_FILE` names a file
//! that exists, every record waits here (after logging that it does) until the file is
//! removed. The end-to-end kill test sets the variable on its own stack's inventory
//! function, creates the file, sees the line, kills the process while it is certainly
//! inside a batch, then removes the file. Never set in a deployment (the template does not
//! declare it), where this is one environment lookup per record.

use std::path::PathBuf;
use std::time::Duration;

/// The environment variable that names the hold file.
pub const HOLD_FILE_VAR: &str = "EVENTKIT_TEST_HOLD_FILE";

/// What the log line at the hold point says, for the test to wait for.
pub const HELD_MESSAGE: &str = "held at the test hold point";

/// Waits while the hold file exists; returns at once when none is configured.
pub(crate) async fn wait_if_held() {
    let Some(path) = std::env::var_os(HOLD_FILE_VAR).map(PathBuf::from) else {
        return;
    };
    if !path.exists() {
        return;
    }
    tracing::info!(hold_file = %path.display(), "{HELD_MESSAGE}");
    while path.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
