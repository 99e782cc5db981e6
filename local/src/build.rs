//! Building the functions' binaries with cargo, as `sam build` with cargo-lambda would, but
//! for this machine (the debug profile by default: it shares the test suite's artifacts).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use super::template::Template;
use crate::cloud::workspace_root;

/// The binaries the template names in `Metadata.BuildProperties.Binary` (every function of
/// this repository's templates names one); [`crate::binary::resolve`] also finds those SAM
/// takes from the function's package.
pub fn function_binaries(template: &Template) -> Vec<String> {
    template
        .resources
        .iter()
        .filter(|r| r.kind == "AWS::Serverless::Function")
        .filter_map(|r| r.metadata["BuildProperties"]["Binary"].as_str())
        .map(str::to_string)
        .collect()
}

/// Where cargo puts the binaries of `profile` (`debug` or `release`) for this checkout.
pub fn binaries_dir(release: bool) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join(if release { "release" } else { "debug" })
}

/// Builds `binaries` of this checkout with the cargo `features` of their packages, cargo's
/// output going to `log`; on failure the error carries the log's tail.
pub async fn build_binaries(
    binaries: &[String],
    release: bool,
    features: &[String],
    log: &Path,
) -> Result<PathBuf> {
    build_binaries_in(&workspace_root(), binaries, release, features, log).await
}

/// Builds `binaries` of the cargo project in (or above) `project`, with the cargo
/// `features` of their packages (none: their defaults, as `sam build` builds them); returns
/// where they are.
pub async fn build_binaries_in(
    project: &Path,
    binaries: &[String],
    release: bool,
    features: &[String],
    log: &Path,
) -> Result<PathBuf> {
    let build = Build {
        project,
        binaries,
        release,
        features,
    };
    build.run(log, None).await
}

/// As [`build_binaries_in`], abandoned when `stop` is cancelled: cargo then stops with its
/// compiler jobs and the result is a [`BuildStopped`] error. Cargo runs in a process group
/// of its own, so a Ctrl-C in the terminal reaches only the caller, whose signal handling
/// cancels `stop` (a caller that does not handle signals uses [`build_binaries_in`], whose
/// cargo the terminal's Ctrl-C stops directly).
pub async fn build_binaries_until(
    project: &Path,
    binaries: &[String],
    release: bool,
    features: &[String],
    log: &Path,
    stop: &CancellationToken,
) -> Result<PathBuf> {
    let build = Build {
        project,
        binaries,
        release,
        features,
    };
    build.run(log, Some(stop)).await
}

/// The build was stopped (see [`build_binaries_until`]).
#[derive(Debug, thiserror::Error)]
#[error("the build was stopped")]
pub struct BuildStopped;

/// What one `cargo build` builds.
struct Build<'a> {
    project: &'a Path,
    binaries: &'a [String],
    release: bool,
    features: &'a [String],
}

impl Build<'_> {
    async fn run(&self, log: &Path, stop: Option<&CancellationToken>) -> Result<PathBuf> {
        let Build {
            project,
            binaries,
            release,
            features,
        } = *self;
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let output =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = tokio::process::Command::new(cargo());
        command.arg("build").current_dir(project);
        for (variable, _) in std::env::vars_os() {
            if variable.to_str().is_some_and(set_by_cargo_for_its_child) {
                command.env_remove(variable);
            }
        }
        if release {
            command.arg("--release");
        }
        for binary in binaries {
            command.args(["--bin", binary]);
        }
        if !features.is_empty() {
            command.args(["--features", &features.join(",")]);
        }
        command
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        let status = match stop {
            None => command.status().await.context("running cargo build")?,
            Some(stop) => {
                let mut cargo = command
                    .process_group(0)
                    .spawn()
                    .context("running cargo build")?;
                tokio::select! {
                    status = cargo.wait() => status.context("running cargo build")?,
                    () = stop.cancelled() => {
                        // The whole group: cargo's rustc and build-script jobs stop with it.
                        if let Some(group) = cargo.id().and_then(|pid| i32::try_from(pid).ok()) {
                            let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
                        }
                        let _ = cargo.wait().await;
                        return Err(BuildStopped.into());
                    }
                }
            }
        };
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
        Ok(target_directory(project)
            .await?
            .join(if release { "release" } else { "debug" }))
    }
}

/// The target directory cargo uses for the project in `project` (`cargo metadata` knows
/// the workspace and any `CARGO_TARGET_DIR` or config setting).
async fn target_directory(project: &Path) -> Result<PathBuf> {
    metadata(project).await?["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata names no target_directory")
}

/// The cargo workspace of the project in `project`: its root, its target directory and
/// the folders of its member packages.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The workspace root (where `Cargo.lock` is).
    pub root: PathBuf,
    /// The target directory.
    pub target: PathBuf,
    /// Each member package's folder.
    pub packages: Vec<PathBuf>,
}

impl Workspace {
    /// Asks `cargo metadata` in `project`.
    pub async fn of(project: &Path) -> Result<Self> {
        let metadata = metadata(project).await?;
        let path = |value: &serde_json::Value| value.as_str().map(PathBuf::from);
        let members: Vec<&str> = metadata["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str())
            .collect();
        let packages = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|package| {
                package["id"]
                    .as_str()
                    .is_some_and(|id| members.contains(&id))
            })
            .filter_map(|package| {
                path(&package["manifest_path"])?
                    .parent()
                    .map(Path::to_path_buf)
            })
            .collect();
        Ok(Self {
            root: path(&metadata["workspace_root"])
                .context("cargo metadata names no workspace_root")?,
            target: path(&metadata["target_directory"])
                .context("cargo metadata names no target_directory")?,
            packages,
        })
    }
}

/// `cargo metadata --no-deps` of the project in `project`.
pub(crate) async fn metadata(project: &Path) -> Result<serde_json::Value> {
    let output = tokio::process::Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(project)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata in {} failed: {}",
            project.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("reading cargo metadata's output")
}

/// Whether `variable` is one cargo sets for a program it runs (`cargo run`, `cargo test`)
/// rather than one a user sets. Build scripts such as ring's and cc's declare
/// `rerun-if-env-changed` for some of these (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...);
/// inherited, they would differ from a plain `cargo build` in a shell and rebuild every
/// crate that depends on them, each time the two alternate (measured: 90 s for one
/// function, 170 s for the pipeline's five).
fn set_by_cargo_for_its_child(variable: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&variable)
        || variable.starts_with("CARGO_PKG_")
        || variable.starts_with("CARGO_BIN_EXE_")
}

/// The cargo that runs this program (so the pinned toolchain builds the functions too).
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_cargo_sets_for_a_run_is_left_out_of_the_build() {
        for set in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_BIN_EXE_xtask",
            "OUT_DIR",
        ] {
            assert!(set_by_cargo_for_its_child(set), "{set}");
        }
        for user in [
            "CARGO_TARGET_DIR",
            "CARGO_HOME",
            "CARGO_PROFILE_DEV_DEBUG",
            "PATH",
        ] {
            assert!(!set_by_cargo_for_its_child(user), "{user}");
        }
    }
}
