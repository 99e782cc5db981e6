//! Building the functions' binaries with cargo, as `sam build` with cargo-lambda would, but
//! for this machine (the debug profile by default: it shares the test suite's artifacts).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use super::template::Template;
use crate::cloud::workspace_root;

/// The binaries the template's functions run (`Metadata.BuildProperties.Binary`).
pub fn function_binaries(template: &Template) -> Vec<String> {
    template
        .resources
        .iter()
        .filter(|r| r.kind == "AWS::Serverless::Function")
        .filter_map(|r| r.metadata["BuildProperties"]["Binary"].as_str())
        .map(str::to_string)
        .collect()
}

/// Where cargo puts the binaries of `profile` (`debug` or `release`).
pub fn binaries_dir(release: bool) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join(if release { "release" } else { "debug" })
}

/// Builds `binaries`, cargo's output going to `log`; on failure the error carries the
/// log's tail.
pub async fn build_binaries(binaries: &[String], release: bool, log: &Path) -> Result<PathBuf> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let output =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = tokio::process::Command::new(cargo());
    command.arg("build").current_dir(workspace_root());
    if release {
        command.arg("--release");
    }
    for binary in binaries {
        command.args(["--bin", binary]);
    }
    let status = command
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .status()
        .await
        .context("running cargo build")?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "cargo build of {} failed ({status}); {} ends with:\n{}",
            binaries.join(", "),
            log.display(),
            tail.join("\n")
        );
    }
    Ok(binaries_dir(release))
}

/// The cargo that runs this program (so the pinned toolchain builds the functions too).
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
