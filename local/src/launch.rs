//! From a template to a running application: the functions built (or found prebuilt), the
//! resources created under a stack name, the functions started with their event sources.
//! The one entry point a user of the library needs ([`LocalPipeline::from_template`]).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;

use crate::binary::resolve;
use crate::build::{build_binaries_in, build_binaries_until};
use crate::clients::{Clients, Endpoints};
use crate::stack::{Stack, StackOptions};
use crate::template::{folder_of, Template};
use crate::{LocalPipeline, RunOptions};

/// Where the functions' binaries come from.
#[derive(Clone, Debug)]
pub enum Binaries {
    /// Built with `cargo build --bin <binary>` in the project, each function's binary
    /// decided as `sam build` decides it for `BuildMethod: rust-cargolambda`
    /// ([`crate::binary`]).
    Cargo {
        /// The release profile rather than the dev one.
        release: bool,
        /// Cargo features of the functions' packages (`--features`); none builds them with
        /// their defaults.
        features: Vec<String>,
    },
    /// Already built, in this directory (a binary per function, named as cargo names it:
    /// decided as for [`Binaries::Cargo`]).
    Prebuilt(PathBuf),
}

/// How to run an application from its template.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// The SAM template.
    pub template: PathBuf,
    /// The stack name: every physical name derives from it, so two runs never meet.
    pub stack_name: String,
    /// Parameter values over the template's defaults.
    pub parameters: HashMap<String, String>,
    /// The cargo project the functions are built in (the template's folder by default;
    /// cargo finds the workspace above it).
    pub project: PathBuf,
    /// Where the binaries come from.
    pub binaries: Binaries,
    /// The local cloud (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, else the defaults).
    pub endpoints: Endpoints,
    /// A visibility timeout for every declared queue instead of the template's.
    pub visibility_timeout: Option<u32>,
    /// How the functions run (their logs go under `<project>/.local-cloud/logs/<stack>`, their
    /// spans to `<project>/.local-cloud/traces/<stack>.jsonl`).
    pub run: RunOptions,
    /// Cancelled (by the caller's Ctrl-C or SIGTERM handling) to stop before the application
    /// runs: the build is abandoned, what was created is deleted, and
    /// [`LocalPipeline::from_template`] fails with [`StoppedBeforeRunning`]. `None`: the
    /// caller does not handle signals, and the build stays in its process group.
    pub stop: Option<CancellationToken>,
}

/// [`LocalPipeline::from_template`] was stopped (see [`PipelineOptions::stop`]) before the
/// application ran; nothing it created is left.
#[derive(Debug, thiserror::Error)]
#[error("stopped {0}; nothing was left behind")]
pub struct StoppedBeforeRunning(&'static str);

impl PipelineOptions {
    /// Defaults for `template` under `stack_name`: built with cargo's dev profile, the
    /// endpoints from the environment, one environment per function.
    pub fn new(template: impl Into<PathBuf>, stack_name: &str) -> Self {
        let template = template.into();
        let project = template
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let logs = project.join(".local-cloud/logs").join(stack_name);
        let mut run = RunOptions::new(logs);
        run.spans = Some(crate::traces::store::span_file(&project, stack_name));
        Self {
            template,
            stack_name: stack_name.to_string(),
            parameters: HashMap::new(),
            project,
            binaries: Binaries::Cargo {
                release: false,
                features: Vec::new(),
            },
            endpoints: Endpoints::from_env(),
            visibility_timeout: None,
            run,
            stop: None,
        }
    }
}

impl LocalPipeline {
    /// Builds the template's functions, creates its resources and runs the functions with
    /// their event sources; `progress` hears each step. On failure, what was created is
    /// deleted again.
    pub async fn from_template(options: PipelineOptions, progress: impl Fn(&str)) -> Result<Self> {
        let stopped = |phase: &'static str| match &options.stop {
            Some(stop) if stop.is_cancelled() => Err(StoppedBeforeRunning(phase)),
            _ => Ok(()),
        };
        let template = Template::load(&options.template)?;
        let functions = resolve(&template, folder_of(&options.template)).await?;
        let binaries = match &options.binaries {
            Binaries::Prebuilt(dir) => dir.clone(),
            Binaries::Cargo { release, features } => {
                let names: BTreeSet<String> = functions.values().cloned().collect();
                let names: Vec<String> = names.into_iter().collect();
                progress(&format!("building {}", names.join(", ")));
                let log = options.run.logs.join("build.log");
                let project = &options.project;
                let built = match &options.stop {
                    Some(stop) => {
                        build_binaries_until(project, &names, *release, features, &log, stop).await
                    }
                    None => build_binaries_in(project, &names, *release, features, &log).await,
                };
                // A build that failed because it was stopped is a stop, not a failure.
                stopped("while building")?;
                built?
            }
        };
        // Checked before anything is created, so that a missing one leaves nothing to delete.
        for (logical, binary) in &functions {
            let path = binaries.join(binary);
            if !path.is_file() {
                bail!(
                    "{logical}: binary {} not found (build it with `cargo build --bin {binary}`)",
                    path.display()
                );
            }
        }
        stopped("before creating the resources")?;
        let clients = Clients::new(&options.endpoints).await;
        let stack_options = StackOptions {
            name: options.stack_name.clone(),
            template: options.template.clone(),
            parameters: options.parameters.clone(),
            visibility_timeout: options.visibility_timeout,
            binaries,
            endpoints: options.endpoints.clone(),
        };
        let mut stack = Stack::create(&clients, &stack_options, |logical| {
            progress(&format!("creating {logical}"));
        })
        .await
        .with_context(|| {
            format!(
                "creating the resources of {} (is the local cloud up?)",
                options.template.display()
            )
        })?;
        // Creating is not interrupted midway (a resource half made is not known to delete):
        // a stop meanwhile deletes what was made.
        if let Err(stop) = stopped("while creating the resources") {
            stack.delete(&clients).await;
            return Err(stop.into());
        }
        progress("starting the functions");
        let pipeline = Self::run(clients, stack, &options.run).await?;
        if let Err(stop) = stopped("while starting the functions") {
            pipeline.shut_down().await;
            return Err(stop.into());
        }
        Ok(pipeline)
    }
}
