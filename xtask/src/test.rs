//! `cargo xtask test`: the one test command, for developers and CI alike. It brings the
//! local cloud up and installs the infra checks' tools, then runs the formatting check, the
//! toolkit's feature combinations, clippy with warnings denied, the toolkit's docs with
//! warnings denied, the whole workspace test suite pointed at the local cloud and the
//! tools, the crash points' tests with eventkit's `faults` feature on, and the toolkit's own
//! tests again with `serde_json/preserve_order` on, and the published packages
//! (`release-check`).

use std::process::Command;

use anyhow::{bail, Result};

use crate::cloud::{workspace_root, LocalCloud};
use crate::tools;

/// Runs every check in order, stopping at the first that fails.
pub fn run(cloud: &LocalCloud, cargo_test_args: &[String]) -> Result<()> {
    cloud.up()?;
    let tools_bin = tools::install()?;
    let mut test = vec!["test", "--workspace"];
    if !cargo_test_args.is_empty() {
        test.push("--");
        test.extend(cargo_test_args.iter().map(String::as_str));
    }
    let checks: [(&str, Vec<&str>); 8] = [
        ("formatting", vec!["fmt", "--all", "--", "--check"]),
        // The toolkit with no AWS service, and with one: each feature stands on its own.
        (
            "features",
            vec!["check", "-p", "eventkit-lambda", "--no-default-features"],
        ),
        (
            "features",
            vec![
                "check",
                "-p",
                "eventkit-lambda",
                "--no-default-features",
                "--features",
                "sqs,dynamodb",
            ],
        ),
        (
            "clippy",
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        // The toolkit's docs: every public item documented, every link resolving
        // (RUSTDOCFLAGS below turns rustdoc's warnings into errors for this check only).
        ("docs", vec!["doc", "-p", "eventkit-lambda", "--no-deps"]),
        ("tests", test),
        // Crash points are compiled in only with eventkit's `faults` feature, which the
        // workspace's tests leave off (its test without the feature ran above): its test with
        // the feature, that EVENTKIT_CRASH_POINTS arms the points then.
        (
            "fault points",
            vec![
                "test",
                "-p",
                "eventkit-lambda",
                "--lib",
                "--features",
                "faults",
                "faults::",
            ],
        ),
        // Any crate in a user's graph can turn on serde_json's `preserve_order` (Cargo unifies
        // features), which makes maps keep insertion order: the toolkit's own tests again
        // under it, so the key-order tests see unsorted maps (see idempotency/key.rs).
        (
            "key order",
            vec![
                "test",
                "-p",
                "eventkit-lambda",
                "--lib",
                "--features",
                "serde_json/preserve_order",
            ],
        ),
    ];
    for (name, args) in checks {
        println!("\n==> {name}: cargo {}", args.join(" "));
        let mut command = Command::new(cargo());
        command
            .args(&args)
            .current_dir(workspace_root())
            .envs(cloud.env_vars())
            .env(tools::TOOLS_BIN_VAR, &tools_bin);
        if name == "docs" {
            command.env("RUSTDOCFLAGS", "-D warnings");
        }
        if name == "key order" {
            command.env("EVENTKIT_EXPECT_PRESERVE_ORDER", "1");
        }
        let started = std::time::Instant::now();
        let status = command.status()?;
        // Each check's time, so that a slow CI run shows where its minutes went.
        println!("<== {name}: {:.0} s", started.elapsed().as_secs_f64());
        if !status.success() {
            bail!("{name} failed (cargo {})", args.join(" "));
        }
    }
    // The published packages, built from what `cargo publish` would upload (after the
    // tests, so their dependencies are built already).
    println!("\n==> packages: cargo xtask release-check");
    let started = std::time::Instant::now();
    crate::release::run()?;
    println!("<== packages: {:.0} s", started.elapsed().as_secs_f64());
    println!("\nall checks passed");
    Ok(())
}

/// The cargo that runs this xtask, so the pinned toolchain is used throughout.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
