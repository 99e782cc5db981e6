//! The local cloud: LocalStack (SNS, SQS, EventBridge, IAM, STS, CloudWatch) and DynamoDB
//! Local, both run on the host because these machines have no Docker engine.
//!
//! Everything lives in one folder: this checkout's `.local-cloud/` (git-ignored) for
//! `cargo xtask`, a per-user cache folder for the installed `eventkit-local` (one local
//! cloud per machine user, whichever folder it is started from). Each service has its own
//! folder there with its installation, an `installed` marker, a pid file, the port it was
//! started on and its log. Only processes recorded in those pid files are ever stopped.

mod holder;
mod install;
mod loopback;
mod prerequisites;
pub mod process;
mod service;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

pub use install::run_logged;
use service::{Health, OnHeldPort, Service, ServiceKind};

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
    /// Describes the local cloud of this checkout (the xtask's, in its `.local-cloud/`); a
    /// port held by another cloud is refused, as ever; touches nothing.
    pub fn new(ports: Ports) -> Result<Self> {
        let root = workspace_root().join(".local-cloud");
        Self::described(&root, ports, XTASK_CLOUD, OnHeldPort::Refuse)
    }

    /// Describes the local cloud of this machine user, as the installed `eventkit-local`
    /// manages it: installed once into [`user_cache_dir`], and a service of another folder's
    /// cloud already running on a port reused rather than refused; touches nothing.
    pub fn for_user(ports: Ports) -> Result<Self> {
        Self::described(&user_cache_dir()?, ports, CLI_CLOUD, OnHeldPort::Reuse)
    }

    fn described(
        root: &Path,
        ports: Ports,
        command: &'static str,
        on_held_port: OnHeldPort,
    ) -> Result<Self> {
        let service = |kind, port| Service::new(kind, root, port, command, on_held_port);
        Ok(Self {
            localstack: service(ServiceKind::LocalStack, ports.localstack_port)?,
            dynamodb: service(ServiceKind::DynamoDbLocal, ports.dynamodb_port)?,
            command,
        })
    }

    fn services(&self) -> [&Service; 2] {
        [&self.localstack, &self.dynamodb]
    }

    /// Installs what is missing and starts what is not running; returns at once when both are
    /// already healthy.
    pub fn up(&self) -> Result<()> {
        for service in self.services() {
            if let Some(holder) = service.reused() {
                println!(
                    "local cloud: port {} is held by {holder}: using it",
                    service.port()
                );
            }
        }
        if self
            .services()
            .iter()
            .all(|s| s.health() == Health::Healthy)
        {
            println!("local cloud: already up");
            return Ok(());
        }
        println!("local cloud: bringing it up");
        for service in self.services() {
            service.check_port()?;
        }
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
        for service in self.services() {
            if let Some(holder) = service.reused() {
                println!("{}: {holder}, reused", service.name());
            }
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

/// Overrides where the installed CLI keeps its local cloud (see [`user_cache_dir`]).
pub const CACHE_DIR_VARIABLE: &str = "EVENTKIT_LOCAL_CACHE_DIR";

/// Where the installed CLI keeps the local cloud of this machine user, as cargo and pip keep
/// theirs: `$EVENTKIT_LOCAL_CACHE_DIR`, else `$XDG_CACHE_HOME/eventkit-local`, else
/// `~/.cache/eventkit-local`.
pub fn user_cache_dir() -> Result<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    cache_dir_from(set(CACHE_DIR_VARIABLE), set("XDG_CACHE_HOME"), set("HOME"))
}

fn cache_dir_from(
    own: Option<std::ffi::OsString>,
    xdg_cache: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf> {
    if let Some(own) = own {
        return Ok(PathBuf::from(own));
    }
    if let Some(cache) = xdg_cache {
        return Ok(PathBuf::from(cache).join("eventkit-local"));
    }
    match home {
        Some(home) => Ok(PathBuf::from(home).join(".cache/eventkit-local")),
        None => bail!(
            "neither HOME nor XDG_CACHE_HOME is set: set {CACHE_DIR_VARIABLE} to the folder \
             the local cloud is to be installed in"
        ),
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
        // A cloud folder with nothing installed or running: `status` fails with advice.
        let root = std::env::temp_dir().join(format!("cloud-{}", uuid::Uuid::new_v4()));
        let free = Ports {
            localstack_port: Some(9),
            dynamodb_port: Some(9),
        };
        let installed = LocalCloud::described(&root, free, CLI_CLOUD, OnHeldPort::Reuse).unwrap();
        let advice = installed.status().unwrap_err().to_string();
        assert!(advice.contains("`eventkit-local cloud up`"), "{advice}");
        assert!(!advice.contains("xtask"), "{advice}");
        let checkout = LocalCloud::described(&root, free, XTASK_CLOUD, OnHeldPort::Refuse).unwrap();
        let advice = checkout.status().unwrap_err().to_string();
        assert!(advice.contains("`cargo xtask cloud up`"), "{advice}");
    }

    #[test]
    fn the_users_cloud_lives_in_the_cache_folder_cargo_and_pip_would_choose() {
        let dir = |own: Option<&str>, xdg: Option<&str>, home: Option<&str>| {
            cache_dir_from(
                own.map(Into::into),
                xdg.map(Into::into),
                home.map(Into::into),
            )
        };
        assert_eq!(
            dir(None, None, Some("/home/me")).unwrap(),
            Path::new("/home/me/.cache/eventkit-local")
        );
        assert_eq!(
            dir(None, Some("/cache"), Some("/home/me")).unwrap(),
            Path::new("/cache/eventkit-local")
        );
        assert_eq!(
            dir(Some("/mine"), Some("/cache"), Some("/home/me")).unwrap(),
            Path::new("/mine")
        );
        let advice = dir(None, None, None).unwrap_err().to_string();
        assert!(advice.contains(CACHE_DIR_VARIABLE), "{advice}");
    }
}
