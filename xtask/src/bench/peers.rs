//! The peers' installs, into `.local-cloud/bench/`: Powertools for AWS Lambda (Python) in a
//! venv from `xtask/bench/python/requirements.txt`, and Powertools for AWS Lambda
//! (TypeScript) with `npm ci` from `xtask/bench/node/package-lock.json`. A marker holding
//! the pins makes a changed pin reinstall and an unchanged one cost nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use xtask::cloud::{run_logged, workspace_root};
use xtask::progress::Step;

/// Where the peers' harnesses run from.
pub struct Peers {
    /// The venv's Python.
    pub python: PathBuf,
    /// `harness.py`, run in place.
    pub python_harness: PathBuf,
    /// `harness.mjs`, copied beside its `node_modules`.
    pub node_harness: PathBuf,
}

/// Installs what is missing.
pub fn install(dir: &Path) -> Result<Peers> {
    let sources = workspace_root().join("xtask/bench");
    let python_dir = dir.join("python");
    let requirements = sources.join("python/requirements.txt");
    install_once(
        &python_dir,
        &[&requirements],
        "Powertools for AWS Lambda (Python)",
        |log, step| {
            let venv = python_dir.join("venv");
            let _ = fs::remove_dir_all(&venv);
            run_logged(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                log,
                step,
            )
            .context("python3 with the venv module is needed")?;
            run_logged(
                Command::new(venv.join("bin/pip"))
                    .args([
                        "install",
                        "--no-deps",
                        "--disable-pip-version-check",
                        "--no-input",
                        "-r",
                    ])
                    .arg(&requirements),
                log,
                step,
            )
        },
    )?;

    let node_dir = dir.join("node");
    let manifest = sources.join("node/package.json");
    let lock = sources.join("node/package-lock.json");
    install_once(
        &node_dir,
        &[&manifest, &lock],
        "Powertools for AWS Lambda (TypeScript)",
        |log, step| {
            fs::copy(&manifest, node_dir.join("package.json"))?;
            fs::copy(&lock, node_dir.join("package-lock.json"))?;
            run_logged(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&node_dir),
                log,
                step,
            )
        },
    )?;
    // Copied on every run (it is small): Node resolves packages from the script's folder.
    let node_harness = node_dir.join("harness.mjs");
    fs::copy(sources.join("node/harness.mjs"), &node_harness)?;

    Ok(Peers {
        python: python_dir.join("venv/bin/python"),
        python_harness: sources.join("python/harness.py"),
        node_harness,
    })
}

/// Runs `install` in `dir` unless the files `pins` were installed there unchanged.
fn install_once(
    dir: &Path,
    pins: &[&Path],
    label: &str,
    install: impl FnOnce(&Path, &Step) -> Result<()>,
) -> Result<()> {
    let mut wanted = String::new();
    for pin in pins {
        wanted += &fs::read_to_string(pin).with_context(|| format!("reading {}", pin.display()))?;
    }
    let marker = dir.join("installed");
    if fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let log = dir.join("install.log");
    let step = Step::start(format!("installing {label} (first use)"));
    match install(&log, &step) {
        Ok(()) => {
            fs::write(&marker, wanted)?;
            step.done("installed");
            Ok(())
        }
        Err(error) => {
            step.fail();
            Err(error.context(format!("installing {label}; see {}", log.display())))
        }
    }
}
