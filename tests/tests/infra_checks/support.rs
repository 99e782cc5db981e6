//! What the infra checks share: the repository's paths, the template as JSON with its
//! intrinsic functions in long form, the template as CloudFormation deploys it (after the
//! SAM transform), and running the tools of `cargo xtask tools`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

/// The variable through which `cargo xtask test` passes the tools' folder.
pub const TOOLS_BIN_VAR: &str = "EVENTKIT_TOOLS_BIN";

/// The repository's root (the tests crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// `infra/template.yaml`, relative to the root (the tools run from the root).
pub const TEMPLATE: &str = "infra/template.yaml";

/// The template as JSON: `!Ref X` becomes `{"Ref": "X"}`, `!GetAtt A.B` becomes
/// `{"Fn::GetAtt": ["A", "B"]}`, any other `!Tag v` becomes `{"Fn::Tag": v}`.
pub fn template() -> &'static Value {
    static TEMPLATE_JSON: OnceLock<Value> = OnceLock::new();
    TEMPLATE_JSON.get_or_init(|| {
        let path = workspace_root().join(TEMPLATE);
        let text = std::fs::read_to_string(&path).expect("infra/template.yaml is readable");
        let yaml: Yaml = serde_norway::from_str(&text).expect("infra/template.yaml is YAML");
        to_json(yaml)
    })
}

fn to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => serde_json::to_value(number).expect("a YAML number is JSON"),
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .map(|(key, value)| {
                    let key = key.as_str().expect("template keys are strings").to_string();
                    (key, to_json(value))
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            let long = match (name, value) {
                ("Ref", value) => ("Ref".to_string(), value),
                ("GetAtt", Value::String(dotted)) => {
                    let (resource, attribute) = dotted.split_once('.').expect("!GetAtt A.B");
                    (
                        "Fn::GetAtt".to_string(),
                        serde_json::json!([resource, attribute]),
                    )
                }
                (other, value) => (format!("Fn::{other}"), value),
            };
            Value::Object(Map::from_iter([long]))
        }
    }
}

/// The template's resources of type `kind`, as (logical id, resource).
pub fn resources(kind: &str) -> Vec<(&'static str, &'static Value)> {
    of_kind(template(), kind)
}

fn of_kind<'t>(template: &'t Value, kind: &str) -> Vec<(&'t str, &'t Value)> {
    template["Resources"]
        .as_object()
        .expect("the template has Resources")
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(id, resource)| (id.as_str(), resource))
        .collect()
}

/// The template as CloudFormation deploys it: the SAM transform applied (by
/// `infra_checks/sam_transform.py`, with the SAM translator of the tools' venv, as
/// `sam validate` and `sam deploy` apply it), with the parameters' defaults. What SAM
/// generates (roles and their policies, event source mappings, the functions' rules and
/// subscriptions, permissions) is only there.
pub fn transformed() -> &'static Value {
    static TRANSFORMED: OnceLock<Value> = OnceLock::new();
    TRANSFORMED.get_or_init(|| {
        // The venv's python, next to its `sam` (bin/sam is a link into the venv).
        let sam = tools_bin().join("sam");
        let sam = std::fs::canonicalize(&sam)
            .unwrap_or_else(|error| panic!("{}: {error}", sam.display()));
        let python = sam.with_file_name("python");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/infra_checks/sam_transform.py");
        let output = Command::new(&python)
            .arg(&script)
            .arg(TEMPLATE)
            .current_dir(workspace_root())
            .output()
            .unwrap_or_else(|error| panic!("running {}: {error}", python.display()));
        assert!(
            output.status.success(),
            "the SAM transform: {}",
            describe(&output)
        );
        serde_json::from_slice(&output.stdout).expect("the transformed template is JSON")
    })
}

/// The transformed template's resources of type `kind`, as (logical id, resource).
pub fn transformed_resources(kind: &str) -> Vec<(&'static str, &'static Value)> {
    of_kind(transformed(), kind)
}

/// The logical id a `Ref` or `Fn::GetAtt` points at.
pub fn target(value: &Value) -> Option<&str> {
    value["Ref"]
        .as_str()
        .or_else(|| value["Fn::GetAtt"][0].as_str())
        .or_else(|| {
            // `!Sub "${Table.Arn}/index/name"`: a part of the resource (an index of a table).
            let text = value["Fn::Sub"].as_str()?.strip_prefix("${")?;
            text.split(['.', '}']).next()
        })
}

/// A function's property, else the one of `Globals.Function`.
pub fn function_property<'a>(function: &'a Value, name: &str) -> &'a Value {
    match &function["Properties"][name] {
        Value::Null => &template()["Globals"]["Function"][name],
        own => own,
    }
}

/// The folder holding the tools' commands: `EVENTKIT_TOOLS_BIN`, else where
/// `cargo xtask tools` installs them; fails the test with what to run when neither has them.
pub fn tools_bin() -> PathBuf {
    let bin = std::env::var_os(TOOLS_BIN_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".local-cloud/tools/bin"));
    let missing: Vec<&str> = ["sam", "cfn-lint", "checkov", "cargo-lambda", "zig"]
        .into_iter()
        .filter(|tool| !bin.join(tool).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the infra checks' tools ({}) are not in {}: run `cargo xtask test`, or \
         `cargo xtask tools` and then `cargo test` (or set {TOOLS_BIN_VAR})",
        missing.join(", "),
        bin.display()
    );
    bin
}

/// Runs one of the tools from the repository's root, with the tools first on `PATH` (SAM
/// finds cargo-lambda there, and cargo-lambda zig) and SAM's telemetry off.
pub fn run_tool(tool: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let bin = tools_bin();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&path)))
            .expect("PATH entries join");
    Command::new(bin.join(tool))
        .args(args)
        .current_dir(workspace_root())
        .env("PATH", path)
        .env("SAM_CLI_TELEMETRY", "0")
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("running {tool}: {error}"))
}

/// A tool's output, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The per-record backoff a function's code gives its SQS records (functions/*/src/lib.rs,
/// wired in their `main` through `orders::wiring::redelivery`); off for a function that sets
/// none, whose failed records come back after their queue's visibility timeout.
pub fn record_backoff(binary: &str) -> eventkit::redelivery::RecordBackoff {
    match binary {
        "inventory" => inventory::record_backoff(),
        "analytics" => analytics::record_backoff(),
        "payments" => payments::record_backoff(),
        "notifications" => notifications::record_backoff(),
        _ => eventkit::redelivery::RecordBackoff::off(),
    }
}

/// The idempotency configuration a function's code runs with (functions/*/src/lib.rs), by
/// its binary's name; `None` for a function that keeps no records: the relay and the
/// outbox's sweeper publish under each event's staged id, and the consumers' records absorb
/// an event published again.
pub fn idempotency_config(binary: &str) -> Option<eventkit::idempotency::IdempotencyConfig> {
    match binary {
        "inventory" => Some(inventory::idempotency_config()),
        "payments" => Some(payments::idempotency_config()),
        "notifications" => Some(notifications::idempotency_config()),
        "analytics" => Some(analytics::idempotency_config()),
        "relay" | "outbox-sweeper" => None,
        other => panic!("{other}: say here which idempotency records it keeps"),
    }
}

/// The binary a function of the template runs (its `BuildProperties.Binary`).
pub fn binary_of(function_id: &str) -> &'static str {
    template()["Resources"][function_id]["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_else(|| panic!("{function_id}: no BuildProperties.Binary"))
}
