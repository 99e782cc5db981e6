//! `cargo xtask dev`: the demo, then the pipeline keeps running. Every invocation is shown
//! as one line; when a source file under `functions/` or `shared/` changes, the functions
//! are rebuilt and those whose binary changed are restarted (an invocation in flight fails
//! and comes back, as when Lambda replaces an environment). `cargo xtask send FILE` puts
//! events in; Ctrl-C stops it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::cloud::{workspace_root, LocalCloud};
use crate::demo::{demo_dir, runtime, DemoArgs, Session};
use crate::local_lambda::build::build_binaries;
use crate::local_lambda::logs::{LogLine, Stream};
use crate::local_lambda::LocalPipeline;

/// How long edits must pause before a rebuild starts (editors write several files).
const DEBOUNCE: Duration = Duration::from_millis(700);

/// Runs the pipeline until Ctrl-C.
pub fn run(args: &DemoArgs) -> Result<()> {
    let cloud = LocalCloud::new(args.ports)?;
    cloud.up()?;
    runtime()?.block_on(async {
        let session = Session::start(args, &cloud, "dev").await?;
        if let Err(error) = session.demonstrate(args).await {
            println!("(dev keeps running despite: {error:#})");
        }
        let pipeline = &session.pipeline;
        for host in pipeline.hosts().values() {
            let label = host
                .spec()
                .binary
                .file_name()
                .map_or_else(|| host.spec().name.clone(), |n| n.to_string_lossy().into_owned());
            tokio::spawn(show_invocations(label, host.log().subscribe()));
        }
        println!(
            "\nwatching functions/ and shared/; send events with `cargo xtask send FILE`; Ctrl-C stops"
        );
        let outcome = tokio::select! {
            outcome = rebuild_on_change(args, pipeline) => outcome,
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        pipeline.stop();
        // The state file stays: `send` sees its process is gone, the next run deletes the stack.
        println!("\nstopped; the stack stays for inspection until the next run");
        outcome
    })
}

/// Rebuilds after each burst of source changes and restarts the functions whose binary
/// changed.
async fn rebuild_on_change(args: &DemoArgs, pipeline: &LocalPipeline) -> Result<()> {
    let (sender, mut changes) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let relevant = event.paths.iter().any(|path| is_source(path));
            if relevant && !event.kind.is_access() {
                let _ = sender.send(());
            }
        }
    })
    .context("watching the sources")?;
    let root = workspace_root();
    for dir in ["functions", "shared"] {
        watcher
            .watch(&root.join(dir), RecursiveMode::Recursive)
            .with_context(|| format!("watching {dir}/"))?;
    }
    let binaries: BTreeMap<String, PathBuf> = pipeline
        .hosts()
        .iter()
        .map(|(logical, host)| (logical.clone(), host.spec().binary.clone()))
        .collect();
    let names: Vec<String> = binaries
        .values()
        .filter_map(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    while changes.recv().await.is_some() {
        // Let the burst of writes end.
        while tokio::time::timeout(DEBOUNCE, changes.recv()).await.is_ok() {}
        let before = modified(&binaries);
        println!("change detected: rebuilding {}", names.join(", "));
        let log = demo_dir().join("logs").join("build.log");
        if let Err(error) = build_binaries(&names, args.release, &log).await {
            println!("build failed; the running functions stay as they are:\n{error:#}");
            continue;
        }
        let after = modified(&binaries);
        for (logical, host) in pipeline.hosts() {
            if before.get(logical) != after.get(logical) {
                host.restart();
                println!("restarted {}", host.spec().name);
            }
        }
    }
    Ok(())
}

fn is_source(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".rs") || name == "Cargo.toml"
}

fn modified(binaries: &BTreeMap<String, PathBuf>) -> BTreeMap<String, Option<SystemTime>> {
    binaries
        .iter()
        .map(|(logical, path)| {
            let time = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            (logical.clone(), time)
        })
        .collect()
}

/// One console line per invocation (from its EMF line), per crash, and per warning.
async fn show_invocations(
    label: String,
    mut lines: tokio::sync::broadcast::Receiver<Arc<LogLine>>,
) {
    loop {
        match lines.recv().await {
            Ok(line) => {
                if let Some(shown) = console_line(&label, &line) {
                    println!("{shown}");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn console_line(function: &str, line: &LogLine) -> Option<String> {
    if let Some(emf) = line.emf() {
        let read = |name: &str| emf[name].as_u64().unwrap_or(0);
        return Some(format!(
            "[{function}] {} processed, {} failed, {} duplicates ({} ms)",
            read("RecordsProcessed"),
            read("RecordsFailed"),
            read("RecordsReplayed"),
            read("BatchDuration")
        ));
    }
    let json = line.json.as_ref()?;
    match line.stream {
        Stream::Platform if json["type"] == "platform.processEnded" => Some(format!(
            "[{function}] process ended: {}",
            json["record"]["reason"].as_str().unwrap_or("?")
        )),
        Stream::Stdout if matches!(json["level"].as_str(), Some("WARN" | "ERROR")) => {
            let mut shown = format!(
                "[{function}] {}: {}",
                json["level"].as_str().unwrap_or_default(),
                line.message()
            );
            if let Some(reason) = line.field("reason") {
                shown.push_str(&format!(
                    " ({}: {reason})",
                    line.field("class").unwrap_or("?")
                ));
            }
            Some(shown)
        }
        _ => None,
    }
}
