//! `cargo xtask tools`: the tools of the infra checks (SAM CLI, cfn-lint, cargo-lambda with
//! zig, checkov), all from PyPI, installed on first use into `.local-cloud/tools/` from the
//! pinned lists in `xtask/tools/`, and the arm64 Rust target the functions are built for.
//!
//! checkov pins a boto3 that the SAM CLI cannot run with, so each has its own venv; their
//! commands are linked into one folder, `.local-cloud/tools/bin`, which the tests find
//! through `EVENTKIT_TOOLS_BIN`. Each venv has an `installed` marker holding the list it was
//! installed from: a changed pin reinstalls that venv, an unchanged one costs nothing.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cloud::{run_logged, workspace_root};
use crate::progress::Step;

/// The Rust target of the functions' architecture, arm64.
pub const ARM64_TARGET: &str = "aarch64-unknown-linux-gnu";

/// The variable through which the tests find the tools' folder.
pub const TOOLS_BIN_VAR: &str = "EVENTKIT_TOOLS_BIN";

/// One venv: its folder name, what it holds, its pinned list and the commands it provides.
struct Venv {
    name: &'static str,
    label: &'static str,
    requirements: &'static str,
    commands: &'static [&'static str],
}

const VENVS: [Venv; 2] = [
    Venv {
        name: "sam",
        label: "SAM CLI 1.170.0, cfn-lint 1.58.0, cargo-lambda 1.9.2, zig 0.17.0",
        requirements: "xtask/tools/sam-requirements.txt",
        commands: &["sam", "cfn-lint", "cargo-lambda"],
    },
    Venv {
        name: "checkov",
        label: "checkov 3.3.30",
        requirements: "xtask/tools/checkov-requirements.txt",
        commands: &["checkov"],
    },
];

/// Installs what is missing and returns the folder holding every tool's command.
pub fn install() -> Result<PathBuf> {
    let root = workspace_root().join(".local-cloud/tools");
    let bin = root.join("bin");
    fs::create_dir_all(&bin)?;
    for venv in &VENVS {
        let dir = root.join(venv.name);
        install_venv(venv, &dir)?;
        for command in venv.commands {
            link(&dir.join("venv/bin").join(command), &bin.join(command))?;
        }
    }
    // cargo-lambda links with zig; the ziglang wheel ships the binary inside the package.
    link(&ziglang_binary(&root.join("sam/venv"))?, &bin.join("zig"))?;
    add_arm64_target()?;
    Ok(bin)
}

/// The std of the functions' architecture, arm64 (Graviton), for `sam build` and the bench's
/// bootstrap sizes. `rustup target add` is quick and changes nothing when it is installed.
fn add_arm64_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workspace_root())
        .output()
        .context("rustup is needed to add the arm64 target (https://rustup.rs)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|target| target.trim() == ARM64_TARGET)
    {
        return Ok(());
    }
    let step = Step::start(format!("adding the Rust target {ARM64_TARGET} (first use)"));
    let log = workspace_root().join(".local-cloud/tools/rustup.log");
    // From the workspace root, so the target goes to the pinned toolchain.
    let result = run_logged(
        Command::new("rustup")
            .args(["target", "add", ARM64_TARGET])
            .current_dir(workspace_root()),
        &log,
        &step,
    );
    match result {
        Ok(()) => {
            step.done("added");
            Ok(())
        }
        Err(error) => {
            step.fail();
            Err(error).with_context(|| {
                format!(
                    "`rustup target add {ARM64_TARGET}` failed (see {})",
                    log.display()
                )
            })
        }
    }
}

/// `cargo xtask tools`: installs, then says where the tools are.
pub fn run() -> Result<()> {
    let bin = install()?;
    println!("tools: ready in {}", bin.display());
    println!(
        "  `cargo xtask test` passes it to the tests; for a bare `cargo test`: export {TOOLS_BIN_VAR}={}",
        bin.display()
    );
    Ok(())
}

/// Creates the venv and installs its pinned list, unless the same list is installed.
fn install_venv(venv: &Venv, dir: &Path) -> Result<()> {
    let requirements_file = workspace_root().join(venv.requirements);
    let requirements = fs::read_to_string(&requirements_file)
        .with_context(|| format!("reading {}", venv.requirements))?;
    let marker = dir.join("installed");
    if fs::read_to_string(&marker).is_ok_and(|installed| installed == requirements) {
        return Ok(());
    }
    let step = Step::start(format!("installing {} (first use)", venv.label));
    let result = create_venv(dir, &requirements_file, &step);
    if result.is_err() {
        step.fail();
        return result.with_context(|| {
            format!(
                "installing the tools pinned in {} (pip's output: {})",
                venv.requirements,
                dir.join("install.log").display()
            )
        });
    }
    fs::write(&marker, requirements)?;
    step.done("installed");
    Ok(())
}

fn create_venv(dir: &Path, requirements_file: &Path, step: &Step) -> Result<()> {
    let venv = dir.join("venv");
    // A half-installed venv from an interrupted run is not worth repairing.
    let _ = fs::remove_dir_all(&venv);
    fs::create_dir_all(dir)?;
    let log = dir.join("install.log");
    step.detail("creating the Python venv");
    run_logged(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        &log,
        step,
    )
    .context("python3 with the venv module is needed (Debian: apt-get install python3-venv)")?;
    // --no-deps: the list is closed (every transitive dependency pinned), so pip installs
    // exactly it instead of re-resolving to whatever is newest today.
    run_logged(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--no-deps",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(requirements_file),
        &log,
        step,
    )
}

/// Points `link` at `target`, replacing a link to anything else.
fn link(target: &Path, link: &Path) -> Result<()> {
    if fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    if !target.exists() {
        anyhow::bail!("{} is missing from the tools' venv", target.display());
    }
    let _ = fs::remove_file(link);
    symlink(target, link).with_context(|| format!("linking {}", link.display()))
}

/// `<venv>/lib/python3.X/site-packages/ziglang/zig`, whatever the Python version.
fn ziglang_binary(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .map(|python| python.join("site-packages/ziglang/zig"))
        .find(|zig| zig.is_file())
        .with_context(|| format!("no ziglang/zig under {}", lib.display()))
}
