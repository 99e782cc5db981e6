//! The local cloud: LocalStack (SNS, SQS, EventBridge, IAM, STS, CloudWatch) and DynamoDB
//! Local, both run on the host because these machines have no Docker engine.
//!
//! Everything lives in `.local-cloud/` (git-ignored): each service has its own folder with
//! its installation, an `installed` marker, a pid file, the port it was started on and its
//! log. Only processes recorded in those pid files are ever stopped.

mod install;
mod loopback;
mod prerequisites;
pub mod process;
mod service;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

pub use install::run_logged;
use service::{Health, Service, ServiceKind};

/// The region and credentials every local client uses; LocalStack and DynamoDB Local accept
/// any credentials, but the SDK insists on having some.
pub const REGION: &str = "us-east-1";

/// What to do with the local cloud.
#[derive(Subcommand, Clone, Copy)]
pub enum Action {
    /// Install on first use, start both services in the background, wait until they answer.
    Up,
    /// Stop the processes that `up` started (by their pid files).
    Down,
    /// Report each service's health.
    Status,
    /// Print the exports the AWS SDKs and CLIs read to reach the local cloud (for `eval`).
    Env,
}

/// Ports for the two services; a running service keeps the port it was started on.
#[derive(Args, Clone, Copy, Default)]
pub struct Ports {
    /// LocalStack's port [default: 4566].
    #[arg(long, env = "EVENTKIT_LOCALSTACK_PORT", global = true)]
    pub localstack_port: Option<u16>,
    /// DynamoDB Local's port [default: 8000].
    #[arg(long, env = "EVENTKIT_DYNAMODB_PORT", global = true)]
    pub dynamodb_port: Option<u16>,
}

/// The command that manages the local cloud of this checkout (`cargo xtask`'s).
const XTASK_CLOUD: &str = "cargo xtask cloud";

/// The command that manages the local cloud of an `eventkit-local` project.
const CLI_CLOUD: &str = "eventkit-local cloud";

/// The two services and where they live.
pub struct LocalCloud {
    localstack: Service,
    dynamodb: Service,
    /// The command its messages tell the user to run (`<command> up`): each program that
    /// manages a local cloud names its own, so that an installed `eventkit-local` never
    /// sends its users to this repository's xtask.
    command: &'static str,
}

impl LocalCloud {
    /// Describes the local cloud of this checkout (the xtask's); touches nothing.
    pub fn new(ports: Ports) -> Result<Self> {
        Self::described(&workspace_root(), ports, XTASK_CLOUD)
    }

    /// Describes the local cloud of the project in `project` (installed into its
    /// `.local-cloud/`), as the `eventkit-local` CLI manages it; touches nothing.
    pub fn in_dir(project: &Path, ports: Ports) -> Result<Self> {
        Self::described(project, ports, CLI_CLOUD)
    }

    fn described(project: &Path, ports: Ports, command: &'static str) -> Result<Self> {
        let root = project.join(".local-cloud");
        Ok(Self {
            localstack: Service::new(
                ServiceKind::LocalStack,
                &root,
                ports.localstack_port,
                command,
            )?,
            dynamodb: Service::new(
                ServiceKind::DynamoDbLocal,
                &root,
                ports.dynamodb_port,
                command,
            )?,
            command,
        })
    }

    fn services(&self) -> [&Service; 2] {
        [&self.localstack, &self.dynamodb]
    }

    /// Installs what is missing and starts what is not running; returns at once when both are
    /// already healthy.
    pub fn up(&self) -> Result<()> {
        if self
            .services()
            .iter()
            .all(|s| s.health() == Health::Healthy)
        {
            println!("local cloud: already up");
            return Ok(());
        }
        println!("local cloud: bringing it up");
        prerequisites::check()?;
        for service in self.services() {
            service.install()?;
        }
        // Start both before waiting for either: LocalStack and the JVM warm up in parallel.
        for service in self.services() {
            service.start()?;
        }
        for service in self.services() {
            service.wait_until_healthy()?;
        }
        println!("local cloud: up ({})", self.endpoints_summary());
        Ok(())
    }

    /// Stops what `up` started.
    pub fn down(&self) -> Result<()> {
        for service in self.services() {
            service.stop()?;
        }
        Ok(())
    }

    /// Prints each service's health; fails when one is not healthy.
    pub fn status(&self) -> Result<()> {
        println!("service          port   pid      health");
        let mut all_healthy = true;
        for service in self.services() {
            let health = service.health();
            all_healthy &= health == Health::Healthy;
            let pid = service
                .running_pid()
                .map_or_else(|| "-".to_string(), |pid| pid.to_string());
            println!(
                "{:<16} {:<6} {:<8} {}",
                service.name(),
                service.port(),
                pid,
                health
            );
        }
        if !all_healthy {
            bail!("the local cloud is not fully up: run `{} up`", self.command);
        }
        Ok(())
    }

    /// The variables the AWS SDKs and CLIs read to talk to the local cloud.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.localstack.url()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb.url()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ]
    }

    fn endpoints_summary(&self) -> String {
        format!(
            "LocalStack {}, DynamoDB Local {}",
            self.localstack.url(),
            self.dynamodb.url()
        )
    }
}

/// Runs one `cloud` action (of `eventkit-local` or `cargo xtask`).
pub fn run(action: Action, cloud: &LocalCloud) -> Result<()> {
    match action {
        Action::Up => cloud.up(),
        Action::Down => cloud.down(),
        Action::Status => cloud.status(),
        Action::Env => {
            for (name, value) in cloud.env_vars() {
                println!("export {name}={value}");
            }
            Ok(())
        }
    }
}

/// The eventkit checkout this crate was built in (`local/` lives one level below it): the
/// project of `cargo xtask`, never of an installed `eventkit-local`, which works in the
/// directory it is started in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn each_program_names_its_own_cloud_command() {
        // A project with no local cloud: nothing runs there, so `status` fails with advice.
        let project = std::env::temp_dir().join(format!("cloud-{}", uuid::Uuid::new_v4()));
        let installed = LocalCloud::in_dir(&project, Ports::default()).unwrap();
        let advice = installed.status().unwrap_err().to_string();
        assert!(advice.contains("`eventkit-local cloud up`"), "{advice}");
        assert!(!advice.contains("xtask"), "{advice}");
        let checkout = LocalCloud::described(&project, Ports::default(), XTASK_CLOUD).unwrap();
        let advice = checkout.status().unwrap_err().to_string();
        assert!(advice.contains("`cargo xtask cloud up`"), "{advice}");
    }
}
