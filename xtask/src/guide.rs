//! `cargo xtask guide`: the user guide (`guide/`, mdBook) built into `target/guide/`, with
//! mdBook installed (pinned) into `.local-cloud/tools/` on first use. Its code samples are
//! compiled and its links checked by the test suite (the tests crate's doctests and
//! `tests/tests/docs_links.rs`), so this command only renders it.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cloud::workspace_root;

/// The mdBook release the guide is built with.
const MDBOOK_VERSION: &str = "0.5.4";

/// Builds the guide and says where it is.
pub fn run() -> Result<()> {
    let root = workspace_root();
    let tools = root.join(".local-cloud/tools");
    let mdbook = tools.join("bin/mdbook");
    let installed = Command::new(&mdbook)
        .arg("--version")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(MDBOOK_VERSION));
    if !installed {
        println!(
            "==> installing mdBook {MDBOOK_VERSION} into {} (first use)",
            tools.display()
        );
        let status = Command::new(crate::test::cargo())
            .args([
                "install",
                "mdbook",
                "--locked",
                "--version",
                MDBOOK_VERSION,
                "--root",
            ])
            .arg(&tools)
            .status()
            .context("cargo install mdbook did not start")?;
        if !status.success() {
            bail!("cargo install mdbook {MDBOOK_VERSION} failed");
        }
    }
    let status = Command::new(&mdbook)
        .args(["build", "guide"])
        .current_dir(&root)
        .status()
        .context("mdbook did not start")?;
    if !status.success() {
        bail!("mdbook build guide failed");
    }
    println!(
        "the guide: {}",
        root.join("target/guide/index.html").display()
    );
    Ok(())
}
