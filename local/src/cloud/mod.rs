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
    /// Print the exports for `eval "$(cargo xtask cloud env)"`.
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

/// The two services and where they live.
pub struct LocalCloud {
    localstack: Service,
    dynamodb: Service,
}

impl LocalCloud {
    /// Describes the local cloud of this checkout (the xtask's); touches nothing.
    pub fn new(ports: Ports) -> Result<Self> {
        Self::in_dir(&workspace_root(), ports)
    }

    /// Describes the local cloud of the project in `project` (installed into its
    /// `.local-cloud/`); touches nothing.
    pub fn in_dir(project: &Path, ports: Ports) -> Result<Self> {
        let root = project.join(".local-cloud");
        Ok(Self {
            localstack: Service::new(ServiceKind::LocalStack, &root, ports.localstack_port)?,
            dynamodb: Service::new(ServiceKind::DynamoDbLocal, &root, ports.dynamodb_port)?,
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
            bail!("the local cloud is not fully up: run `cargo xtask cloud up`");
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

/// Runs one `cargo xtask cloud` action.
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
