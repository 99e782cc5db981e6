//! `new NAME` and `init`: a new application built on eventkit, in a folder of its own or in
//! the current one (see the library's `scaffold`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use eventkit_local::scaffold::{AppTrigger, Scaffold, ToolkitSource};

/// What the application has and where its toolkit comes from.
#[derive(Args, Clone)]
pub struct ScaffoldOptions {
    /// A function per trigger; repeat it for several (`--trigger sqs --trigger sns`).
    #[arg(long, short = 't', value_enum, default_value = "sqs")]
    pub trigger: Vec<AppTrigger>,
    /// Each function also announces the order it recorded: an `OrderRecorded` event committed
    /// with its idempotency record (eventkit's outbox), published by a relay function from
    /// the idempotency table's stream to the application's bus, where a rule sends it to
    /// `OrderEventsQueue`.
    #[arg(long)]
    pub outbox: bool,
    /// Depend on the toolkit in this folder (a checkout's `shared/`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["eventkit_git", "eventkit_registry"])]
    pub eventkit_path: Option<PathBuf>,
    /// Depend on the toolkit from this git repository, at this runner's version.
    #[arg(long, value_name = "URL", conflicts_with = "eventkit_registry")]
    pub eventkit_git: Option<String>,
    /// Depend on the toolkit from crates.io at this runner's version, even when this runner
    /// was built from a checkout (whose own toolkit is the default then).
    #[arg(long)]
    pub eventkit_registry: bool,
}

/// Options of `new`.
#[derive(Args, Clone)]
pub struct NewArgs {
    /// The application's name: its folder (created here) and its stack.
    pub name: String,
    #[command(flatten)]
    pub options: ScaffoldOptions,
}

/// Options of `init`.
#[derive(Args, Clone)]
pub struct InitArgs {
    /// The application's name [default: the current folder's].
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub options: ScaffoldOptions,
}

/// `new NAME`: the application in `./NAME`.
pub fn new(args: &NewArgs) -> Result<ExitCode> {
    let folder = PathBuf::from(&args.name);
    let scaffold = scaffold(&args.name, &args.options)?;
    let written = scaffold.create(&folder)?;
    report(&folder, &written, true);
    Ok(ExitCode::SUCCESS)
}

/// `init`: the application in the current folder.
pub fn init(args: &InitArgs) -> Result<ExitCode> {
    let here = std::env::current_dir().context("the current folder")?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => here
            .file_name()
            // `My_App` names the application `my-app`: the folder's name as a stack's.
            .map(|name| {
                name.to_string_lossy()
                    .to_lowercase()
                    .replace(['_', ' '], "-")
            })
            .context("the current folder has no name: pass --name")?,
    };
    let scaffold = scaffold(&name, &args.options)?;
    let written = scaffold.init(&here)?;
    report(Path::new("."), &written, false);
    Ok(ExitCode::SUCCESS)
}

fn scaffold(name: &str, options: &ScaffoldOptions) -> Result<Scaffold> {
    let toolkit = match (&options.eventkit_path, &options.eventkit_git) {
        (Some(path), _) => ToolkitSource::Path(
            path.canonicalize()
                .with_context(|| format!("--eventkit-path {}", path.display()))?,
        ),
        (None, Some(url)) => ToolkitSource::Git(url.clone()),
        (None, None) if options.eventkit_registry => ToolkitSource::Registry,
        (None, None) => ToolkitSource::default_for_this_build(),
    };
    println!("toolkit: {}", toolkit.describe());
    Ok(Scaffold::new(name, &options.trigger, toolkit)?.with_outbox(options.outbox))
}

fn report(folder: &Path, written: &[PathBuf], new: bool) {
    println!("created {} files in {}:", written.len(), folder.display());
    for file in written {
        println!("  {}", file.display());
    }
    println!("\nnext:");
    if new {
        println!("  cd {}", folder.display());
    }
    println!("  eventkit-local run    # the application locally (Ctrl-C stops it)");
    println!("  cargo test            # its tests, one against the local cloud");
}
