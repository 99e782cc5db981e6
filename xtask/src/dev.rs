//! `cargo xtask dev`: the demo, then the pipeline keeps running. Every invocation is shown
//! as one line; when a source file of the workspace changes, the functions are rebuilt and
//! those whose binary changed are restarted (eventkit-local's watch: an invocation in flight
//! fails and comes back, as when Lambda replaces an environment). `cargo xtask send FILE`
//! puts events in; Ctrl-C stops it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use crate::cloud::{workspace_root, LocalCloud};
use crate::demo::{demo_dir, runtime, DemoArgs, Session};
use crate::functions;
use crate::local_lambda::logs::{LogLine, Stream};
use crate::local_lambda::watch::{Rebuilt, Watch};
use crate::local_lambda::Binaries;

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
            "\nwatching the workspace's sources; send events with `cargo xtask send FILE`; Ctrl-C stops"
        );
        let watch = Watch {
            binaries: Binaries::Cargo {
                release: args.release,
                features: functions::local_features(),
            },
            project: workspace_root(),
            build_log: demo_dir().join("logs").join("build.log"),
        };
        let changed = |paths: &[PathBuf]| {
            println!("change detected ({} files): rebuilding", paths.len());
        };
        let rebuilt = |rebuilt: &Rebuilt| match rebuilt {
            Rebuilt::Failed(error) => {
                println!("build failed; the running functions stay as they are:\n{error}");
            }
            Rebuilt::Restarted(functions) => {
                for logical in functions {
                    println!("restarted {logical}");
                }
            }
        };
        let outcome = tokio::select! {
            outcome = pipeline.watch(&watch, changed, rebuilt) => outcome,
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        pipeline.stop().await;
        // The state file stays: `send` sees its process is gone, the next run deletes the stack.
        println!("\nstopped; the stack stays for inspection until the next run");
        outcome
    })
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
