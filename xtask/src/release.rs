//! `cargo xtask release-check`: what `cargo publish` would upload, checked before anything is
//! uploaded. Both published packages are packaged and built from their packaged sources alone
//! (`cargo publish --dry-run`, which verifies the runner against the toolkit's package, not
//! its folder), their file lists are held to what a user's build reads, their sizes are
//! shown, and once a version is on crates.io the toolkit's API is compared with it
//! (`cargo semver-checks`). `cargo xtask test` runs it; RELEASING.md says when else to.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::cloud::workspace_root;

/// The packages published to crates.io, the toolkit first (the runner depends on it).
pub const PACKAGES: [Package; 2] = [
    Package {
        name: "eventkit-lambda",
        folder: "shared",
        dirs: &["src/", "examples/", "benches/"],
    },
    Package {
        name: "eventkit-local",
        folder: "local",
        dirs: &["src/", "cloud/"],
    },
];

/// Files every package may carry at its root: what cargo writes and what crates.io shows.
const ROOT_FILES: [&str; 8] = [
    "Cargo.toml",
    "Cargo.toml.orig",
    "Cargo.lock",
    ".cargo_vcs_info.json",
    "README.md",
    "CHANGELOG.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
];

/// A compressed package above this is carrying something a build does not need (both are
/// well under it today; crates.io's own limit is 10 MB).
const MAX_CRATE_BYTES: u64 = 1024 * 1024;

/// A published package and what it may contain.
pub struct Package {
    /// Its name on crates.io.
    pub name: &'static str,
    /// Its folder in this workspace.
    pub folder: &'static str,
    /// The folders (besides [`ROOT_FILES`]) whose files it may carry.
    pub dirs: &'static [&'static str],
}

/// Runs the whole check, printing a table of the packages.
pub fn run() -> Result<()> {
    let root = workspace_root();
    println!("==> cargo publish --dry-run: both packages built from their packaged sources");
    let mut publish = cargo(&root);
    publish.args(["publish", "--dry-run", "--allow-dirty"]);
    for package in &PACKAGES {
        publish.args(["-p", package.name]);
    }
    run_status(&mut publish, "cargo publish --dry-run")?;
    // The .crate files where `cargo package` writes them (the dry run keeps its own in a
    // temporary registry), without building them again.
    let mut package = cargo(&root);
    package.args(["package", "--no-verify", "--allow-dirty"]);
    for package_name in PACKAGES.iter().map(|package| package.name) {
        package.args(["-p", package_name]);
    }
    run_status(&mut package, "cargo package --no-verify")?;

    let version = release_version(&root)?;
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["package", "files", "unpacked", "compressed (.crate)"]);
    for package in &PACKAGES {
        let files = listed_files(&root, package)?;
        let strays: Vec<&String> = files
            .iter()
            .filter(|file| !package.may_carry(file))
            .collect();
        if !strays.is_empty() {
            bail!(
                "{} would carry files no build of it reads: {strays:?} (narrow `include` in {}/Cargo.toml)",
                package.name,
                package.folder
            );
        }
        let unpacked: u64 = files
            .iter()
            .filter_map(|file| fs::metadata(root.join(package.folder).join(file)).ok())
            .map(|metadata| metadata.len())
            .sum();
        let crate_file = crate::bench::target_dir()
            .join("package")
            .join(format!("{}-{version}.crate", package.name));
        let compressed = fs::metadata(&crate_file)
            .with_context(|| format!("{} was not written", crate_file.display()))?
            .len();
        if compressed > MAX_CRATE_BYTES {
            bail!(
                "{} is {} KiB compressed, over the {} KiB budget: see `cargo package --list -p {}`",
                package.name,
                compressed / 1024,
                MAX_CRATE_BYTES / 1024,
                package.name
            );
        }
        table.add_row([
            package.name.to_string(),
            files.len().to_string(),
            format!("{} KiB", unpacked / 1024),
            format!("{} KiB", compressed / 1024),
        ]);
    }
    println!("\n{table}\n");
    semver_check(&root)
}

impl Package {
    /// Whether a packaged path (relative to the package) is one a user's build may read.
    fn may_carry(&self, file: &str) -> bool {
        ROOT_FILES.contains(&file) || self.dirs.iter().any(|dir| file.starts_with(dir))
    }
}

/// The files `cargo package` would put in the package, relative to it.
fn listed_files(root: &Path, package: &Package) -> Result<Vec<String>> {
    let output = cargo(root)
        .args(["package", "--list", "--allow-dirty", "-p", package.name])
        .output()
        .context("cargo package --list")?;
    if !output.status.success() {
        bail!(
            "cargo package --list -p {}: {}",
            package.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The toolkit's API against its last release on crates.io, once there is one.
fn semver_check(root: &Path) -> Result<()> {
    let toolkit = PACKAGES[0].name;
    // Asked from outside the workspace: inside it, `cargo info` describes the member.
    let info = cargo(root)
        .args(["info", toolkit])
        .current_dir(std::env::temp_dir())
        .output()
        .context("cargo info")?;
    let stderr = String::from_utf8_lossy(&info.stderr);
    if !info.status.success() {
        if stderr.contains("could not find") {
            println!(
                "==> semver: {toolkit} has no release on crates.io yet: nothing to compare with"
            );
            return Ok(());
        }
        bail!("cargo info {toolkit} could not ask crates.io: {stderr}");
    }
    println!("==> semver: {toolkit} against its last release (cargo semver-checks)");
    let tools = root.join(".local-cloud/tools");
    let semver_checks = tools.join("bin/cargo-semver-checks");
    if !semver_checks.exists() {
        let mut install = cargo(root);
        install.args(["install", "cargo-semver-checks", "--locked", "--root"]);
        install.arg(&tools);
        run_status(&mut install, "cargo install cargo-semver-checks")?;
    }
    let mut check = Command::new(&semver_checks);
    check
        .args(["semver-checks", "check-release", "-p", toolkit])
        .current_dir(root);
    run_status(&mut check, "cargo semver-checks")
}

/// The one version both packages are released under (RELEASING.md), refused when their
/// manifests disagree.
fn release_version(root: &Path) -> Result<String> {
    let mut versions = Vec::new();
    for package in &PACKAGES {
        let manifest = fs::read_to_string(root.join(package.folder).join("Cargo.toml"))?;
        let version = manifest
            .lines()
            .find_map(|line| line.strip_prefix("version = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .map(str::to_string)
            .with_context(|| format!("{}/Cargo.toml names no version", package.folder))?;
        versions.push(version);
    }
    if versions.windows(2).any(|pair| pair[0] != pair[1]) {
        bail!("the published packages must share one version: {versions:?}");
    }
    versions.pop().context("no package to release")
}

/// The cargo that runs this xtask, in `root`.
fn cargo(root: &Path) -> Command {
    let mut command = Command::new(crate::test::cargo());
    command.current_dir(root);
    command
}

fn run_status(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("{what} did not start"))?;
    if !status.success() {
        bail!("{what} failed");
    }
    Ok(())
}
