//! The criterion benchmarks of the in-process hot paths (`shared/benches/hot_paths.rs`):
//! run through cargo, their estimates read back from criterion's JSON files.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;
use xtask::cloud::{run_logged, workspace_root};
use xtask::progress::Step;

use super::release_dir;

/// One benchmark's result.
pub struct Estimate {
    /// Its id, `group/function`.
    pub id: String,
    /// The mean time per iteration, in nanoseconds.
    pub mean_ns: f64,
}

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
}

#[derive(Deserialize)]
struct Estimates {
    mean: PointEstimate,
}

#[derive(Deserialize)]
struct PointEstimate {
    point_estimate: f64,
}

/// The benchmark groups of `hot_paths.rs`, so that stale results of others are left out.
const GROUPS: [&str; 3] = ["decode", "idempotency_key", "batch"];

/// Runs the hot-path benchmarks and returns their estimates.
pub fn run(dir: &Path) -> Result<Vec<Estimate>> {
    let step = Step::start("criterion: in-process hot paths");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let result = run_logged(
        Command::new(cargo)
            .args(["bench", "-p", "eventkit-lambda", "--bench", "hot_paths"])
            .current_dir(workspace_root()),
        &dir.join("criterion.log"),
        &step,
    )
    .and_then(|()| read_estimates());
    match result {
        Ok(estimates) => {
            step.done(&format!("{} benchmarks", estimates.len()));
            Ok(estimates)
        }
        Err(error) => {
            step.fail();
            Err(error)
        }
    }
}

/// Every `new` estimate of the hot-path groups under `target/criterion`.
fn read_estimates() -> Result<Vec<Estimate>> {
    let root = release_dir()
        .parent()
        .map(|target| target.join("criterion"))
        .context("no target folder")?;
    let mut estimates = Vec::new();
    for group in GROUPS {
        let group_dir = root.join(group);
        let Ok(entries) = fs::read_dir(&group_dir) else {
            continue;
        };
        for entry in entries.filter_map(|entry| entry.ok()) {
            let new = entry.path().join("new");
            let (Ok(benchmark), Ok(estimate)) = (
                fs::read_to_string(new.join("benchmark.json")),
                fs::read_to_string(new.join("estimates.json")),
            ) else {
                continue;
            };
            let benchmark: Benchmark = serde_json::from_str(&benchmark)?;
            let estimate: Estimates = serde_json::from_str(&estimate)?;
            estimates.push(Estimate {
                id: benchmark.full_id,
                mean_ns: estimate.mean.point_estimate,
            });
        }
    }
    estimates.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(estimates)
}
