//! The CLI's commands, one file each; the work itself is in the library.

/// `println!` that never panics: for `run`, which must reach its shutdown (stop the
/// functions, delete the resources) even when its stdout is gone.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod app;
pub mod dlq;
pub mod generate;
pub mod logs;
pub mod new;
pub mod send;
pub mod status;
pub mod trace;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use eventkit_local::clients::Clients;
use eventkit_local::kept::{self, KeptResources};
use eventkit_local::running::RunningApp;

/// Which running application a command is about.
#[derive(Args, Clone)]
pub struct Located {
    /// The SAM template the application runs (its folder holds `.local-cloud/apps/`)
    /// [default: this folder's template.yaml, template.yml or template.json].
    #[arg(long, short = 't')]
    pub template: Option<PathBuf>,
    /// The application's stack name, when several run from that folder.
    #[arg(long)]
    pub stack_name: Option<String>,
}

impl Located {
    /// The running application, refused unless its process is alive and runs the program
    /// that described it.
    pub fn find(&self) -> Result<RunningApp> {
        RunningApp::find(&self.project(), self.stack_name.as_deref())
    }

    /// The application's folder: only the template's folder matters (the application runs
    /// from it); without --template it is this one, whichever of SAM's names its template
    /// has.
    pub fn project(&self) -> PathBuf {
        self.template
            .as_deref()
            .map_or_else(|| PathBuf::from("."), project_of)
    }

    /// The running application and clients for its local cloud. A stack kept by a run that
    /// stopped is checked first: when its resources are gone with the local cloud that held
    /// them, its description is dropped and the error says so.
    pub async fn reach(&self) -> Result<(RunningApp, Clients)> {
        let app = self.find()?;
        let clients = clients_of(&app).await;
        if app.kept {
            if let KeptResources::Gone(what) = kept::check(&clients, &app).await? {
                let project = self
                    .template
                    .as_deref()
                    .map_or_else(|| PathBuf::from("."), project_of);
                RunningApp::remove(&project, &app.stack);
                bail!(
                    "stack {} was kept by a run that stopped, but its {what} no longer exists \
                     (the local cloud was stopped or restarted since, and its resources went \
                     with it): its description is dropped; `eventkit-local run --stack-name {}` \
                     creates it again",
                    app.stack,
                    app.stack
                );
            }
        }
        Ok((app, clients))
    }
}

/// The folder a template's application lives in (cargo project, `.local-cloud/`).
pub fn project_of(template: &Path) -> PathBuf {
    template
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// SDK clients for the local cloud the application runs on.
pub async fn clients_of(app: &RunningApp) -> Clients {
    Clients::new(&app.endpoints).await
}
