//! The running application, described for the CLI's other commands (`send`, `dlq`,
//! `status`) in another process: `run` writes `<project>/.local-cloud/apps/<stack>.json`
//! once its resources exist, refreshes the functions' counters every second and removes the
//! file on a clean stop. A file whose process is gone (a crash, `kill -9`) or runs another
//! program now (a reused pid) is never used, so a command can never reach resources that
//! belong to nothing or to someone else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::clients::Endpoints;
use crate::cloud::process::runs_program;
use crate::resources::{QueueInfo, Subscriber};
use crate::stack::outputs::StackOutput;
use crate::stats::HostCounts;
use crate::LocalPipeline;

/// What a running application created, and who runs it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningApp {
    /// The stack name every physical name derives from.
    pub stack: String,
    /// The template it runs.
    pub template: PathBuf,
    /// The process that runs it.
    pub pid: u32,
    /// The program file that process runs (`/proc/<pid>/exe` when it was recorded).
    pub program: PathBuf,
    /// The local cloud it runs on.
    pub endpoints: Endpoints,
    /// Where the functions' logs are.
    pub logs: PathBuf,
    /// Declared queues by logical id.
    pub queues: BTreeMap<String, QueueInfo>,
    /// Dead-letter queues by logical id, each with the queues (logical ids) whose redrive
    /// policy sends it what they fail (none for a function's or a rule's DLQ).
    pub dead_letter_queues: BTreeMap<String, Vec<String>>,
    /// The function dead-letter queues (logical ids) whose messages go back as asynchronous
    /// invocations: each DLQ's function and that function's delivery queue.
    #[serde(default)]
    pub reinvoked_by: BTreeMap<String, (String, QueueInfo)>,
    /// The functions invoked asynchronously, by ARN: each one's logical id and delivery
    /// queue, where an OnFailure record or a rule's dead letter invokes it again.
    #[serde(default)]
    pub deliveries: BTreeMap<String, (String, QueueInfo)>,
    /// The subscriptions whose redrive policy names a dead-letter queue, by that queue's
    /// logical id: where its messages go back to.
    #[serde(default)]
    pub subscribers: BTreeMap<String, Vec<Subscriber>>,
    /// Topic ARNs by logical id.
    pub topics: BTreeMap<String, String>,
    /// Bus names by logical id.
    pub buses: BTreeMap<String, String>,
    /// Table names by logical id.
    pub tables: BTreeMap<String, String>,
    /// Functions by logical id.
    pub functions: BTreeMap<String, RunningFunction>,
    /// The template's outputs, as the stack resolved them.
    #[serde(default)]
    pub outputs: Vec<StackOutput>,
    /// Whether the run stopped with `--keep`: its resources (and the messages in them) are
    /// still there, and the `dlq`, `send` and `status` commands still reach them, though no
    /// process runs the functions.
    #[serde(default)]
    pub kept: bool,
}

/// A function of the running application.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningFunction {
    /// Its name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// Its log file.
    pub log: PathBuf,
    /// Execution environments whose process finished its init, at the last refresh.
    pub ready: usize,
    /// Execution environments it has.
    pub environments: usize,
    /// Its counters at the last refresh.
    pub counts: HostCounts,
}

impl RunningApp {
    /// Describes `pipeline`, run by this process from `template` on `endpoints`.
    pub fn describe(
        pipeline: &LocalPipeline,
        template: &Path,
        endpoints: &Endpoints,
        logs: &Path,
    ) -> Result<Self> {
        let stack = pipeline.stack();
        let program = std::env::current_exe().context("finding this program's file")?;
        let dead_letter_queues = stack
            .dead_letter_queues()
            .into_iter()
            .map(|(logical, queue)| (logical, stack.redrive_sources(&queue.arn)))
            .collect();
        let dead_letter_logicals: BTreeMap<String, String> = stack
            .dead_letter_queues()
            .into_iter()
            .map(|(logical, queue)| (queue.arn, logical))
            .collect();
        let reinvoked_by = stack
            .functions
            .iter()
            .filter_map(|(function, declared)| {
                let dlq = declared.async_invoke.dead_letter_queue.as_ref()?;
                let logical = dead_letter_logicals.get(&dlq.arn)?;
                let delivery = declared.async_queue.clone()?;
                Some((logical.clone(), (function.clone(), delivery)))
            })
            .collect();
        let deliveries = stack.deliveries();
        let subscribers = stack
            .dead_letter_queues()
            .into_iter()
            .map(|(logical, queue)| (logical, stack.subscribers(&queue.arn)))
            .filter(|(_, subscribers)| !subscribers.is_empty())
            .collect();
        let mut app = Self {
            subscribers,
            reinvoked_by,
            deliveries,
            stack: stack.name.clone(),
            template: template.to_path_buf(),
            pid: std::process::id(),
            program,
            endpoints: endpoints.clone(),
            logs: logs.to_path_buf(),
            queues: stack.queues.clone(),
            dead_letter_queues,
            topics: stack.topics.clone(),
            buses: stack.buses.clone(),
            tables: stack.tables.clone(),
            functions: BTreeMap::new(),
            outputs: stack.outputs.clone(),
            kept: false,
        };
        app.refresh(pipeline);
        Ok(app)
    }

    /// Takes the functions' current state.
    pub fn refresh(&mut self, pipeline: &LocalPipeline) {
        self.functions = pipeline
            .hosts()
            .iter()
            .map(|(logical, host)| {
                let function = RunningFunction {
                    name: host.spec().name.clone(),
                    log: host.log().path().to_path_buf(),
                    ready: host.ready_environments(),
                    environments: host.environments(),
                    counts: host.counts(),
                };
                (logical.clone(), function)
            })
            .collect();
    }

    /// Where the applications run from `project` are described.
    pub fn folder(project: &Path) -> PathBuf {
        project.join(".local-cloud").join("apps")
    }

    fn file(project: &Path, stack: &str) -> PathBuf {
        Self::folder(project).join(format!("{stack}.json"))
    }

    /// Writes the description (whole or not at all: a reader never sees half a file).
    pub fn save(&self, project: &Path) -> Result<PathBuf> {
        let folder = Self::folder(project);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let file = Self::file(project, &self.stack);
        let partial = file.with_extension(format!("json.{}", self.pid));
        std::fs::write(&partial, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, &file).with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }

    /// Removes the description of `stack` (on a clean stop).
    pub fn remove(project: &Path, stack: &str) {
        let _ = std::fs::remove_file(Self::file(project, stack));
    }

    /// Whether the process that wrote it still runs it.
    pub fn is_alive(&self) -> bool {
        runs_program(self.pid, &self.program)
    }

    /// Whether the commands may use it: its run is alive, or stopped and kept the stack.
    pub fn is_usable(&self) -> bool {
        self.kept || self.is_alive()
    }

    /// Described as a stack its run left in place (`run --keep`): the commands reach its
    /// resources after the run is gone, until a later run of the same stack takes it over.
    pub fn keep(&mut self, project: &Path) -> Result<PathBuf> {
        self.kept = true;
        self.save(project)
    }

    /// How it runs, for headings: `pid N`, or that its run stopped and kept it.
    pub fn state(&self) -> String {
        if self.kept {
            "kept by a run that stopped: no function runs; `eventkit-local run --stack-name \
             STACK` takes it over"
                .replace("STACK", &self.stack)
        } else {
            format!("pid {}", self.pid)
        }
    }

    /// Every description under `project`, alive or not.
    pub fn all(project: &Path) -> Vec<Self> {
        let Ok(entries) = std::fs::read_dir(Self::folder(project)) else {
            return Vec::new();
        };
        let mut apps: Vec<Self> = entries
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                if path.extension()? != "json" {
                    return None;
                }
                serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
            })
            .collect();
        apps.sort_by(|a, b| a.stack.cmp(&b.stack));
        apps
    }

    /// The application running from `project` (or kept by a run that stopped): the one
    /// named `stack`, or the only one. Fails, saying what to do, when none runs (or only
    /// stale descriptions are left), or when several run and `stack` does not choose.
    pub fn find(project: &Path, stack: Option<&str>) -> Result<Self> {
        let (usable, stale): (Vec<Self>, Vec<Self>) =
            Self::all(project).into_iter().partition(Self::is_usable);
        let stale: Vec<String> = stale
            .iter()
            .map(|app| format!("{} (pid {} gone)", app.stack, app.pid))
            .collect();
        let mut chosen: Vec<Self> = usable
            .iter()
            .filter(|app| stack.is_none_or(|name| app.stack == name))
            .cloned()
            .collect();
        // Unnamed, the one running application goes before stacks kept by runs that stopped.
        if stack.is_none() && chosen.iter().filter(|app| !app.kept).count() == 1 {
            chosen.retain(|app| !app.kept);
        }
        match (chosen.len(), stack) {
            (1, _) => Ok(chosen.into_iter().next().context("one application")?),
            (0, _) => {
                let mut message = match stack {
                    Some(name) => format!("no application with stack {name} is running"),
                    None => "no application is running".to_string(),
                };
                message.push_str(&format!(
                    " from {}: start one with `eventkit-local run` (in another terminal)",
                    project.display()
                ));
                if !stale.is_empty() {
                    message.push_str(&format!(
                        "; ignored what stopped without cleaning up: {}",
                        stale.join(", ")
                    ));
                }
                bail!(message)
            }
            _ => bail!(
                "several applications run from {}: choose one with --stack-name ({})",
                project.display(),
                chosen
                    .iter()
                    .map(|app| app.stack.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The declared queue `logical`.
    pub fn queue(&self, logical: &str) -> Result<&QueueInfo> {
        self.queues.get(logical).with_context(|| {
            format!(
                "the application has no queue {logical} (its queues: {})",
                names(&self.queues)
            )
        })
    }
}

/// The keys of `map`, comma separated, for error messages.
pub fn names<V>(map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn described(stack: &str, pid: u32, program: PathBuf) -> RunningApp {
        RunningApp {
            stack: stack.into(),
            template: "template.yaml".into(),
            pid,
            program,
            endpoints: Endpoints::from_env(),
            logs: "logs".into(),
            queues: BTreeMap::new(),
            dead_letter_queues: BTreeMap::new(),
            reinvoked_by: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            subscribers: BTreeMap::new(),
            topics: BTreeMap::new(),
            buses: BTreeMap::new(),
            tables: BTreeMap::new(),
            functions: BTreeMap::new(),
            outputs: Vec::new(),
            kept: false,
        }
    }

    #[test]
    fn only_a_description_whose_process_runs_its_program_is_found() {
        let project = std::env::temp_dir().join(format!("running-{}", uuid::Uuid::new_v4()));
        let this = std::env::current_exe().unwrap();
        // A crashed run (pid 1 is init, never this program) is stale.
        described("crashed", 1, this.clone())
            .save(&project)
            .unwrap();
        let error = RunningApp::find(&project, None).unwrap_err().to_string();
        assert!(error.contains("no application is running"), "{error}");
        assert!(error.contains("crashed (pid 1 gone)"), "{error}");

        described("live", std::process::id(), this.clone())
            .save(&project)
            .unwrap();
        assert_eq!(RunningApp::find(&project, None).unwrap().stack, "live");
        described("other", std::process::id(), this)
            .save(&project)
            .unwrap();
        let error = RunningApp::find(&project, None).unwrap_err().to_string();
        assert!(error.contains("live, other"), "{error}");
        assert_eq!(
            RunningApp::find(&project, Some("other")).unwrap().stack,
            "other"
        );
        RunningApp::remove(&project, "other");
        assert_eq!(RunningApp::find(&project, None).unwrap().stack, "live");
        std::fs::remove_dir_all(&project).unwrap();
    }

    #[test]
    fn a_stack_kept_by_a_run_that_stopped_is_found() {
        let project = std::env::temp_dir().join(format!("running-{}", uuid::Uuid::new_v4()));
        let this = std::env::current_exe().unwrap();
        // Its run is gone (pid 1 is init), but it said it kept the stack.
        described("kept", 1, this).keep(&project).unwrap();
        let found = RunningApp::find(&project, None).unwrap();
        assert_eq!(found.stack, "kept");
        assert!(found.state().contains("kept by a run that stopped"));
        // A running one goes first when no stack is named.
        described("live", std::process::id(), std::env::current_exe().unwrap())
            .save(&project)
            .unwrap();
        assert_eq!(RunningApp::find(&project, None).unwrap().stack, "live");
        assert_eq!(
            RunningApp::find(&project, Some("kept")).unwrap().stack,
            "kept"
        );
        std::fs::remove_dir_all(&project).unwrap();
    }
}
