//! What the machine must have before the local cloud can be installed, checked up front so
//! that a missing tool is named instead of failing half-way through an install.

use std::process::Command;

use anyhow::{bail, Result};

/// Checks for python3 with venv, Java 17 or newer, npm and tar.
pub fn check() -> Result<()> {
    let mut missing = Vec::new();
    if !succeeds(Command::new("python3").args(["-c", "import venv, ensurepip"])) {
        missing.push("python3 with the venv module (Debian: apt-get install python3 python3-venv)");
    }
    match java_major_version() {
        Some(major) if major >= 17 => {}
        Some(_) => missing.push("Java 17 or newer (found an older `java`; Debian: apt-get install openjdk-17-jre-headless)"),
        None => missing.push("Java 17 or newer (`java` not found; Debian: apt-get install openjdk-17-jre-headless)"),
    }
    if !succeeds(Command::new("npm").arg("--version")) {
        missing.push("npm (Node.js; Debian: apt-get install npm)");
    }
    if !succeeds(Command::new("tar").arg("--version")) {
        missing.push("tar");
    }
    if !missing.is_empty() {
        bail!(
            "the local cloud needs what is missing here:\n  - {}",
            missing.join("\n  - ")
        );
    }
    Ok(())
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Parses `java -version` (printed on stderr): `openjdk version "17.0.15"` or `"1.8.0_392"`.
fn java_major_version() -> Option<u32> {
    let output = Command::new("java").arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stderr);
    let version = text.split('"').nth(1)?;
    let mut parts = version.split('.');
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}
