//! `cargo xtask schemas`: the event contracts as files. Every event type of the pipeline, at
//! every version it still accepts, gets its JSON Schema (draft-07, generated from the Rust
//! types in `functions/orders/src/contracts.rs`) in `events/schemas/<type>/v<version>.json`,
//! and `infra/template.yaml` an EventBridge schema registry with each type's current
//! version (in draft 4, between two marker lines).
//!
//! Before writing, the command compares what the code generates with what is checked in:
//! within one version only backward-compatible changes are allowed ([`compat`]), so a
//! breaking one is refused, naming the field, unless `--allow-breaking` is given. The test
//! suite runs the same two checks (drift and compatibility) and fails with the command to
//! run.

pub mod compat;
pub mod registry;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use comfy_table::Table;
use eventkit::events::schema::EventSchema;

/// Where the schemas go, from the workspace root.
pub const SCHEMAS_DIR: &str = "events/schemas";
/// The SAM template that holds the registry, from the workspace root.
pub const TEMPLATE: &str = "infra/template.yaml";
/// The command that regenerates both.
pub const REGENERATE: &str = "cargo xtask schemas";

/// The command's options.
#[derive(Debug, clap::Args)]
pub struct SchemasArgs {
    /// Write nothing: fail when the checked-in schemas or the template differ from the code.
    #[arg(long)]
    pub check: bool,
    /// Write even when a version's schema changed in a breaking way (for a version no
    /// producer has published yet).
    #[arg(long)]
    pub allow_breaking: bool,
}

/// What the code generates.
#[derive(Debug)]
pub struct Generated {
    /// Every event type at every accepted version.
    pub schemas: Vec<EventSchema>,
    /// Each schema file's path (from the workspace root) and text.
    pub files: BTreeMap<PathBuf, String>,
    /// The template with its registry block as the code says.
    pub template: String,
}

/// The path of the schema of `event_type` at `version`, from the workspace root.
pub fn schema_path(event_type: &str, version: u32) -> PathBuf {
    Path::new(SCHEMAS_DIR)
        .join(event_type)
        .join(format!("v{version}.json"))
}

/// Generates every schema file and the template (read from `root`) with its registry block.
pub fn generate(root: &Path) -> Result<Generated> {
    let schemas = orders::event_schemas();
    let mut files = BTreeMap::new();
    for schema in &schemas {
        let text = serde_json::to_string_pretty(&schema.schema)? + "\n";
        files.insert(schema_path(schema.event_type, schema.version), text);
    }
    // The current version of each type: the last one listed.
    let mut current: BTreeMap<&str, &EventSchema> = BTreeMap::new();
    for schema in &schemas {
        current.insert(schema.event_type, schema);
    }
    let current: Vec<&EventSchema> = schemas
        .iter()
        .filter(|schema| current.get(schema.event_type) == Some(schema))
        .collect();
    let template_path = root.join(TEMPLATE);
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let template = registry::splice(&template, &registry::block(&current)?)?;
    Ok(Generated {
        schemas,
        files,
        template,
    })
}

/// The schema files checked in under `root`'s `events/schemas/`, by path from `root`.
pub fn checked_in(root: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let mut files = BTreeMap::new();
    let dir = root.join(SCHEMAS_DIR);
    if !dir.exists() {
        return Ok(files);
    }
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let type_dir = entry?.path();
        if !type_dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&type_dir)? {
            let path = file?.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                files.insert(relative, text);
            }
        }
    }
    Ok(files)
}

/// Where the checked-in files differ from what the code generates, one line each.
pub fn drift(root: &Path, generated: &Generated) -> Result<Vec<String>> {
    let on_disk = checked_in(root)?;
    let mut drift = Vec::new();
    for (path, text) in &generated.files {
        match on_disk.get(path) {
            None => drift.push(format!("{} is missing", path.display())),
            Some(checked_in) if checked_in != text => {
                drift.push(format!("{} differs from the code", path.display()));
            }
            Some(_) => {}
        }
    }
    for path in on_disk.keys() {
        if !generated.files.contains_key(path) {
            drift.push(format!(
                "{} is a version the code no longer accepts",
                path.display()
            ));
        }
    }
    let template = std::fs::read_to_string(root.join(TEMPLATE))?;
    if template != generated.template {
        drift.push(format!(
            "{TEMPLATE}: the event schema registry differs from the code"
        ));
    }
    Ok(drift)
}

/// The contract breaks between the checked-in schemas and the code: a breaking change
/// within a version (naming the field), or a checked-in version the code no longer accepts.
pub fn contract_breaks(root: &Path, generated: &Generated) -> Result<Vec<String>> {
    let on_disk = checked_in(root)?;
    let mut breaks = Vec::new();
    for schema in &generated.schemas {
        let path = schema_path(schema.event_type, schema.version);
        let Some(text) = on_disk.get(&path) else {
            continue; // a new version: nothing to be compatible with
        };
        let checked_in = serde_json::from_str(text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        for change in compat::breaking_changes(&checked_in, &schema.schema) {
            breaks.push(format!(
                "{} v{}: {change} ({})",
                schema.event_type,
                schema.version,
                path.display()
            ));
        }
    }
    for path in on_disk.keys() {
        if !generated.files.contains_key(path) {
            breaks.push(format!(
                "{} is checked in, but the code no longer accepts that version: its producers \
                 and queued events would fail (keep its upcast, or delete the file once \
                 nothing publishes it)",
                path.display()
            ));
        }
    }
    Ok(breaks)
}

/// What a breaking change must do instead, for messages.
pub const HOW_TO_BREAK: &str = "within a version only optional fields may be added; a breaking \
     change needs a new version (CURRENT_VERSION + 1) with an upcast from the old one, the old \
     data type listed in `older_versions` (README, events section)";

/// Runs the command.
pub fn run(root: &Path, args: &SchemasArgs) -> Result<()> {
    let generated = generate(root)?;
    let breaks = contract_breaks(root, &generated)?;
    let drift = drift(root, &generated)?;
    print_table(&generated)?;
    if !breaks.is_empty() && !args.allow_breaking {
        bail!(
            "the code breaks checked-in contracts:\n  {}\n{HOW_TO_BREAK}",
            breaks.join("\n  ")
        );
    }
    if args.check {
        if drift.is_empty() {
            println!("schemas and template are up to date");
            return Ok(());
        }
        bail!("out of date:\n  {}\nrun `{REGENERATE}`", drift.join("\n  "));
    }
    for path in checked_in(root)?.keys() {
        if !generated.files.contains_key(path) {
            std::fs::remove_file(root.join(path))?;
        }
    }
    for (path, text) in &generated.files {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::write(root.join(TEMPLATE), &generated.template)?;
    if drift.is_empty() {
        println!("nothing changed");
    } else {
        println!("updated:\n  {}", drift.join("\n  "));
    }
    Ok(())
}

/// Per event type and version: its file and what changed from the previous version.
fn print_table(generated: &Generated) -> Result<()> {
    let mut table = Table::new();
    table.set_header([
        "event type",
        "version",
        "file",
        "against the previous version",
    ]);
    let mut previous: Option<&EventSchema> = None;
    for schema in &generated.schemas {
        let against = match previous.filter(|p| p.event_type == schema.event_type) {
            None => "-".to_string(),
            Some(previous) => {
                // The pinned version differs by definition; the rest is the real change.
                let changes: Vec<_> = compat::compare(&previous.schema, &schema.schema)
                    .into_iter()
                    .filter(|change| change.path != "/eventVersion")
                    .collect();
                let breaking = changes.iter().filter(|c| c.kind.is_breaking()).count();
                let listed: Vec<String> = changes.iter().map(ToString::to_string).collect();
                format!(
                    "{breaking} breaking (upcast from v{}): {}",
                    previous.version,
                    listed.join("; ")
                )
            }
        };
        table.add_row([
            schema.event_type.to_string(),
            format!("v{}", schema.version),
            schema_path(schema.event_type, schema.version)
                .display()
                .to_string(),
            against,
        ]);
        previous = Some(schema);
    }
    println!("{table}");
    Ok(())
}
