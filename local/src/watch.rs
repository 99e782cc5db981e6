//! Watch and rebuild (`eventkit-local run`, `cargo xtask dev`): when a Rust source or a
//! manifest of the application's cargo workspace changes, the functions are rebuilt as at
//! start-up and those whose binary changed are restarted. An invocation in flight then fails
//! and its event comes back, as when Lambda replaces an environment. A failed build leaves
//! the running functions as they are. With prebuilt binaries nothing is built: a binary
//! replaced in its folder restarts its function.
//!
//! Only source folders are watched, never the target directory or hidden folders
//! (`.local-cloud`, `.git`): a build must not wake the watch that started it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::build::{build_binaries_in, Workspace};
use crate::{Binaries, LocalPipeline};

/// How long changes must pause before a rebuild starts (editors write several files, and
/// `cargo fmt` rewrites many).
const DEBOUNCE: Duration = Duration::from_millis(700);

/// What to watch, and what a change means.
#[derive(Clone, Debug)]
pub struct Watch {
    /// Where the binaries come from: built by cargo, or prebuilt.
    pub binaries: Binaries,
    /// The cargo project the functions are built in.
    pub project: PathBuf,
    /// Where each rebuild's cargo output goes.
    pub build_log: PathBuf,
}

/// What [`LocalPipeline::watch`] did after a burst of changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rebuilt {
    /// The build failed; nothing was restarted. The error carries the build log's tail.
    Failed(String),
    /// These functions (logical ids) were restarted; none if no binary changed.
    Restarted(Vec<String>),
}

impl LocalPipeline {
    /// Watches until the returned future is dropped (or the watch fails to start), calling
    /// `changed` with the paths of each burst of changes before it rebuilds, and `rebuilt`
    /// with the outcome.
    pub async fn watch(
        &self,
        watch: &Watch,
        changed: impl Fn(&[PathBuf]),
        rebuilt: impl Fn(&Rebuilt),
    ) -> Result<()> {
        let binaries: BTreeMap<String, PathBuf> = self
            .hosts()
            .iter()
            .map(|(logical, host)| (logical.clone(), host.spec().binary.clone()))
            .collect();
        let watched = match &watch.binaries {
            Binaries::Cargo { .. } => Watched::sources(&Workspace::of(&watch.project).await?),
            Binaries::Prebuilt(_) => Watched::binaries(binaries.values()),
        };
        let (sender, mut changes) = mpsc::unbounded_channel();
        let filter = watched.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let relevant: Vec<PathBuf> = event
                    .paths
                    .into_iter()
                    .filter(|path| filter.is_relevant(path))
                    .collect();
                if !relevant.is_empty() {
                    let _ = sender.send(relevant);
                }
            })
            .context("watching the sources")?;
        for (folder, mode) in &watched.folders {
            watcher
                .watch(folder, *mode)
                .with_context(|| format!("watching {}", folder.display()))?;
        }
        let names: Vec<String> = binaries
            .values()
            .filter_map(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // What the functions run now; a binary differing from it later restarts its function.
        let mut running = modified(&binaries);
        while let Some(mut paths) = changes.recv().await {
            // Let the burst of writes end.
            while let Ok(Some(more)) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                paths.extend(more);
            }
            paths.sort();
            paths.dedup();
            changed(&paths);
            if let Binaries::Cargo { release, features } = &watch.binaries {
                let built =
                    build_binaries_in(&watch.project, &names, *release, features, &watch.build_log)
                        .await;
                if let Err(error) = built {
                    rebuilt(&Rebuilt::Failed(format!("{error:#}")));
                    continue;
                }
            }
            let now = modified(&binaries);
            let mut restarted = Vec::new();
            for (logical, host) in self.hosts() {
                if running.get(logical) != now.get(logical) {
                    host.restart();
                    restarted.push(logical.clone());
                }
            }
            running = now;
            rebuilt(&Rebuilt::Restarted(restarted));
        }
        Ok(())
    }
}

/// The folders watched and which paths in them matter.
#[derive(Clone, Debug)]
struct Watched {
    folders: Vec<(PathBuf, RecursiveMode)>,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Rust sources and manifests outside `target`.
    Sources { target: PathBuf },
    /// These binaries.
    Binaries(Vec<PathBuf>),
}

impl Watched {
    /// The workspace's root (its manifest and lock file) and each member package: its
    /// folder itself (manifest, build script) and, recursively, each of its subfolders but
    /// the target directory and hidden ones.
    fn sources(workspace: &Workspace) -> Self {
        let mut folders = vec![(workspace.root.clone(), RecursiveMode::NonRecursive)];
        let mut recursive: Vec<PathBuf> = Vec::new();
        let mut packages = workspace.packages.clone();
        packages.sort();
        for package in packages {
            if recursive.iter().any(|folder| package.starts_with(folder)) {
                continue;
            }
            if package != workspace.root {
                folders.push((package.clone(), RecursiveMode::NonRecursive));
            }
            let Ok(entries) = std::fs::read_dir(&package) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                let source_folder =
                    path.is_dir() && !hidden && !workspace.target.starts_with(&path);
                if source_folder && !recursive.contains(&path) {
                    recursive.push(path.clone());
                    folders.push((path, RecursiveMode::Recursive));
                }
            }
        }
        Self {
            folders,
            kind: Kind::Sources {
                target: workspace.target.clone(),
            },
        }
    }

    /// The folders holding `binaries`.
    fn binaries<'a>(binaries: impl Iterator<Item = &'a PathBuf>) -> Self {
        let binaries: Vec<PathBuf> = binaries.cloned().collect();
        let mut folders: Vec<PathBuf> = binaries
            .iter()
            .filter_map(|binary| binary.parent().map(Path::to_path_buf))
            .collect();
        folders.sort();
        folders.dedup();
        Self {
            folders: folders
                .into_iter()
                .map(|folder| (folder, RecursiveMode::NonRecursive))
                .collect(),
            kind: Kind::Binaries(binaries),
        }
    }

    fn is_relevant(&self, path: &Path) -> bool {
        match &self.kind {
            Kind::Sources { target } => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                let source = name.ends_with(".rs") || name == "Cargo.toml" || name == "Cargo.lock";
                source && !path.starts_with(target)
            }
            Kind::Binaries(binaries) => binaries.iter().any(|binary| binary == path),
        }
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn workspace(root: &Path) -> Workspace {
        for folder in ["app/src/bin", "app/.hidden", "lib/src", "target/debug"] {
            std::fs::create_dir_all(root.join(folder)).unwrap();
        }
        Workspace {
            root: root.to_path_buf(),
            target: root.join("target"),
            packages: vec![root.to_path_buf(), root.join("app"), root.join("lib")],
        }
    }

    #[test]
    fn sources_are_watched_and_the_target_and_hidden_folders_are_not() {
        let root = std::env::temp_dir().join(format!("watch-{}", uuid::Uuid::new_v4()));
        let watched = Watched::sources(&workspace(&root));
        let mut recursive: Vec<&PathBuf> = watched
            .folders
            .iter()
            .filter(|(_, mode)| *mode == RecursiveMode::Recursive)
            .map(|(folder, _)| folder)
            .collect();
        recursive.sort();
        assert_eq!(recursive, [&root.join("app"), &root.join("lib")]);
        assert!(watched
            .folders
            .contains(&(root.clone(), RecursiveMode::NonRecursive)));
        assert!(watched.is_relevant(&root.join("app/src/bin/consumer.rs")));
        assert!(watched.is_relevant(&root.join("lib/Cargo.toml")));
        assert!(watched.is_relevant(&root.join("Cargo.lock")));
        assert!(!watched.is_relevant(&root.join("app/README.md")));
        assert!(!watched.is_relevant(&root.join("target/debug/build/x/out/gen.rs")));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn prebuilt_binaries_are_watched_in_their_folders() {
        let binaries = [PathBuf::from("/p/a/bootstrap"), PathBuf::from("/p/b")];
        let watched = Watched::binaries(binaries.iter());
        let folders: Vec<&PathBuf> = watched.folders.iter().map(|(f, _)| f).collect();
        assert_eq!(folders, [&PathBuf::from("/p"), &PathBuf::from("/p/a")]);
        assert!(watched.is_relevant(Path::new("/p/a/bootstrap")));
        assert!(!watched.is_relevant(Path::new("/p/a/other")));
    }
}
