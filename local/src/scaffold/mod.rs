//! `eventkit-local new NAME` and `eventkit-local init`: a small SAM application built on
//! eventkit, as `cargo lambda new` and `sam init` make one, that passes its own tests, runs
//! with `eventkit-local run` and deploys with `sam build && sam deploy` as generated.
//!
//! The application is a cargo workspace with one function per chosen trigger (an SQS queue
//! with partial batch responses, an SNS topic, an EventBridge bus), each recording the
//! orders it receives once per event through eventkit's transactional idempotency layer;
//! the idempotency and orders tables; a dead-letter queue and a least-privilege policy per
//! function; samconfig.toml; a sample event per trigger; unit tests over the in-memory store
//! and a test against DynamoDB Local; and a README with its two commands. With `--outbox`
//! each function also announces the order it recorded, an event committed with its
//! completion and published by a relay function to the application's bus (see `outbox`).
//!
//! The files are templates compiled into the binary (`files/`), filled in by name: no
//! template engine, since the only logic (which triggers) is assembled here.

mod outbox;
mod render;
mod trigger;

use std::fs;
use std::path::{Path, PathBuf};

pub use trigger::AppTrigger;

use render::render;

/// The toolkit's version an application is generated against: the runner and the toolkit
/// are released together, under one version.
pub const TOOLKIT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the generated application gets the toolkit (`eventkit-lambda`) from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolkitSource {
    /// crates.io, at [`TOOLKIT_VERSION`]: what a user of the published runner gets.
    Registry,
    /// A checkout's `shared/` folder (this repository's tests, or a local change).
    Path(PathBuf),
    /// A git repository, at the same version.
    Git(String),
}

impl ToolkitSource {
    /// The dependency's value in the application's `Cargo.toml`: only the features the
    /// functions use (the DynamoDB store, SQS for redelivery), so that no SNS or
    /// EventBridge client is compiled into consumers that never publish.
    fn dependency(&self) -> String {
        let source = match self {
            Self::Registry => format!("version = \"{TOOLKIT_VERSION}\""),
            Self::Path(path) => format!("path = {}", toml_string(&path.display().to_string())),
            Self::Git(url) => format!(
                "git = {}, version = \"{TOOLKIT_VERSION}\"",
                toml_string(url)
            ),
        };
        format!("{{ {source}, default-features = false, features = [\"dynamodb\", \"sqs\"] }}")
    }

    /// Where this build of the runner points a new application by default: crates.io for
    /// a published runner; the checkout's own toolkit for one built from a checkout
    /// (`cargo install --path local`), since its version may not be on crates.io yet.
    pub fn default_for_this_build() -> Self {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
        let is_toolkit = fs::read_to_string(shared.join("Cargo.toml"))
            .is_ok_and(|manifest| manifest.contains("name = \"eventkit-lambda\""));
        match shared.canonicalize() {
            Ok(path) if is_toolkit => Self::Path(path),
            _ => Self::Registry,
        }
    }

    /// Where the application gets the toolkit, for people.
    pub fn describe(&self) -> String {
        match self {
            Self::Registry => format!("eventkit-lambda {TOOLKIT_VERSION} from crates.io"),
            Self::Path(path) => format!("eventkit-lambda from {}", path.display()),
            Self::Git(url) => format!("eventkit-lambda {TOOLKIT_VERSION} from {url}"),
        }
    }
}

/// Why an application could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot name a cargo package and a CloudFormation stack.
    #[error(
        "`{0}` cannot name an application: use lowercase letters, digits and dashes, \
         starting with a letter (it names the folder and the stack)"
    )]
    InvalidName(String),
    /// No trigger was chosen.
    #[error("choose at least one trigger (--trigger sqs, sns or eventbridge)")]
    NoTrigger,
    /// `new` was pointed at a folder that holds something already.
    #[error("{0} exists and is not empty: `new` makes a folder of its own; run `init` inside an existing one")]
    NotEmpty(PathBuf),
    /// `init` would overwrite a file.
    #[error(
        "{0} exists already: `init` writes only files that are not there, and none was written"
    )]
    Exists(PathBuf),
    /// A sample event could not be made.
    #[error("the sample event: {0}")]
    Sample(String),
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// An application to generate.
#[derive(Clone, Debug)]
pub struct Scaffold {
    name: String,
    triggers: Vec<AppTrigger>,
    toolkit: ToolkitSource,
    outbox: bool,
}

impl Scaffold {
    /// The application `name` with a function per trigger (each named once, in the order
    /// SQS, SNS, EventBridge), depending on the toolkit from `toolkit`.
    pub fn new(
        name: &str,
        triggers: &[AppTrigger],
        toolkit: ToolkitSource,
    ) -> Result<Self, ScaffoldError> {
        if !valid_name(name) {
            return Err(ScaffoldError::InvalidName(name.to_string()));
        }
        let mut triggers = triggers.to_vec();
        triggers.sort();
        triggers.dedup();
        if triggers.is_empty() {
            return Err(ScaffoldError::NoTrigger);
        }
        Ok(Self {
            name: name.to_string(),
            triggers,
            toolkit,
            outbox: false,
        })
    }

    /// With the outbox (`--outbox`) or without (the default): each function also emits an
    /// `OrderRecorded` event, committed on its idempotency record with the order, which a
    /// relay function publishes from the idempotency table's stream to the application's
    /// bus; a rule sends each to the `OrderEventsQueue`.
    #[must_use]
    pub fn with_outbox(mut self, outbox: bool) -> Self {
        self.outbox = outbox;
        self
    }

    /// Every file of the application: its path (relative to the application's folder) and
    /// its text.
    pub fn files(&self) -> Result<Vec<(PathBuf, String)>, ScaffoldError> {
        let app = [("app", self.name.as_str())];
        let toolkit = self.toolkit.dependency();
        let mut workspace = vec![("toolkit", toolkit.as_str())];
        let outbox = outbox::app_placeholders(self.outbox);
        workspace.extend(outbox.iter().map(|(name, value)| (*name, value.as_str())));
        let mut files = vec![
            (
                "Cargo.toml".into(),
                render(include_str!("files/workspace.Cargo.toml.tmpl"), &workspace),
            ),
            (
                ".gitignore".into(),
                include_str!("files/gitignore.tmpl").to_string(),
            ),
            (
                "samconfig.toml".into(),
                render(include_str!("files/samconfig.toml.tmpl"), &app),
            ),
            ("template.yaml".into(), self.template()),
            ("README.md".into(), self.readme()),
        ];
        for trigger in &self.triggers {
            files.extend(trigger.files(&self.name, self.outbox)?);
        }
        if self.outbox {
            files.extend(outbox::files());
        }
        Ok(files)
    }

    /// Writes the application into `folder`, which must not exist or be empty (`new`).
    /// Returns the files written.
    pub fn create(&self, folder: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
        let occupied = fs::read_dir(folder).is_ok_and(|mut entries| entries.next().is_some());
        if occupied {
            return Err(ScaffoldError::NotEmpty(folder.to_path_buf()));
        }
        write(folder, self.files()?)
    }

    /// Writes the application into the existing `folder` (`init`), refusing before writing
    /// anything when one of its files is there already.
    pub fn init(&self, folder: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
        let files = self.files()?;
        if let Some((path, _)) = files.iter().find(|(path, _)| folder.join(path).exists()) {
            return Err(ScaffoldError::Exists(folder.join(path)));
        }
        write(folder, files)
    }

    fn template(&self) -> String {
        let mut resources: String = self.triggers.iter().map(AppTrigger::resources).collect();
        let mut outputs: String = self.triggers.iter().map(AppTrigger::outputs).collect();
        if self.outbox {
            resources.push_str(&outbox::resources(&self.triggers));
            outputs.push_str(&outbox::outputs());
        }
        let outbox = outbox::app_placeholders(self.outbox);
        let mut values = vec![
            ("app", self.name.as_str()),
            ("resources", &resources),
            ("outputs", &outputs),
        ];
        values.extend(outbox.iter().map(|(name, value)| (*name, value.as_str())));
        render(include_str!("files/template.yaml.tmpl"), &values)
    }

    fn readme(&self) -> String {
        let summary = match self.triggers.as_slice() {
            [only] => format!("It has one function, {}.", only.summary()),
            several => format!(
                "It has {} functions: {}.",
                several.len(),
                several
                    .iter()
                    .map(AppTrigger::summary)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        let send_commands: String = self.triggers.iter().map(AppTrigger::send_command).collect();
        let outbox = outbox::readme(self.outbox);
        let mut values = vec![
            ("app", self.name.as_str()),
            ("summary", &summary),
            ("send_commands", &send_commands),
        ];
        values.extend(outbox.iter().map(|(name, value)| (*name, value.as_str())));
        render(include_str!("files/README.md.tmpl"), &values)
    }
}

/// Writes `files` under `folder`, returning their paths.
fn write(folder: &Path, files: Vec<(PathBuf, String)>) -> Result<Vec<PathBuf>, ScaffoldError> {
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = folder.join(&relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| ScaffoldError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        fs::write(&path, text).map_err(|source| ScaffoldError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(relative);
    }
    format_rust(folder, &written);
    Ok(written)
}

/// Formats the Rust files among `written` with rustfmt, so that the application starts
/// `cargo fmt`-clean whatever its names (the templates cannot know where a long name
/// wraps a line or where its crate sorts among the imports). Best effort: without rustfmt
/// (a toolchain without the component) the files stay as rendered, valid all the same.
fn format_rust(folder: &Path, written: &[PathBuf]) {
    let sources: Vec<PathBuf> = written
        .iter()
        .filter(|path| path.extension().is_some_and(|extension| extension == "rs"))
        .map(|path| folder.join(path))
        .collect();
    if sources.is_empty() {
        return;
    }
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let _ = std::process::Command::new(rustfmt)
        .args(["--edition", RUST_EDITION])
        .args(&sources)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The edition of the generated crates (their `Cargo.toml`s say the same).
const RUST_EDITION: &str = "2021";

/// A name a folder and a CloudFormation stack both take: lowercase ASCII
/// letters, digits and single dashes, starting with a letter, at most 64 characters.
fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|first: char| first.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests;
