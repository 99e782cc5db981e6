//! No fault switch in production: crash points (eventkit's `faults` feature) are compiled
//! into the chaos run's and the tests' builds of the functions only. Here: the template never
//! sets `EVENTKIT_CRASH_POINTS` (a copied-in value would abort every record of a build that
//! has the points), and what `sam build` builds, each function's package with its default
//! features and the template's build properties, leaves the feature off.

use std::process::Command;

use eventkit::faults::CRASH_POINTS_VAR;
use serde_json::{json, Value};

use crate::support::{resources, template, workspace_root};

/// Where in `value` (a JSON path) a key or a string mentions `needle`.
fn mentions(value: &Value, needle: &str, at: &str) -> Vec<String> {
    match value {
        Value::String(text) if text.contains(needle) => vec![at.to_string()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(index, item)| mentions(item, needle, &format!("{at}[{index}]")))
            .collect(),
        Value::Object(entries) => entries
            .iter()
            .flat_map(|(key, item)| {
                let here = format!("{at}.{key}");
                let mut found = mentions(item, needle, &here);
                if key.contains(needle) {
                    found.insert(0, here);
                }
                found
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn the_template_never_sets_the_crash_points_variable() {
    // Globals and every function: anywhere at all, so a parameter or a condition feeding the
    // variable is caught as well.
    let found = mentions(template(), CRASH_POINTS_VAR, "template");
    assert!(found.is_empty(), "{CRASH_POINTS_VAR} in {found:?}");
}

#[test]
fn a_crash_points_variable_in_globals_or_a_function_is_found() {
    let planted = json!({
        "Globals": {"Function": {"Environment": {"Variables": {CRASH_POINTS_VAR: "after-completion:1"}}}},
        "Resources": {"F": {"Properties": {"Environment": {"Variables": {"X": CRASH_POINTS_VAR}}}}}
    });
    assert_eq!(
        mentions(&planted, CRASH_POINTS_VAR, "template"),
        [
            format!("template.Globals.Function.Environment.Variables.{CRASH_POINTS_VAR}"),
            "template.Resources.F.Properties.Environment.Variables.X".to_string(),
        ]
    );
}

#[test]
fn the_templates_build_properties_leave_the_faults_feature_off() {
    let functions = resources("AWS::Serverless::Function");
    assert_eq!(functions.len(), 6);
    for (id, function) in functions {
        // cargo-lambda gets the template's BuildProperties (Binary, and Flags passed to
        // `cargo lambda build` as they are).
        let properties = &function["Metadata"]["BuildProperties"];
        for needle in ["faults", "all-features"] {
            let found = mentions(properties, needle, id);
            assert!(found.is_empty(), "{id}: {needle} in {found:?}");
        }
    }
    let samconfig = std::fs::read_to_string(workspace_root().join("samconfig.toml"))
        .expect("samconfig.toml is readable");
    let mut words = samconfig.split(|c: char| !(c.is_alphanumeric() || c == '-'));
    assert!(
        !words.any(|word| word == "faults" || word == "--all-features"),
        "samconfig.toml turns the faults feature on"
    );
}

/// Whether eventkit's `faults` feature is on in what cargo builds for `selection` (`-p
/// PACKAGE`, `--workspace`, and any `--features`): normal and build dependencies, as a
/// `cargo build` resolves them (dev-dependencies only count for test targets).
fn faults_enabled(selection: &[&str]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "features,no-dev",
            "-i",
            "eventkit-lambda",
        ])
        .args(selection)
        .current_dir(workspace_root())
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree {selection:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).contains(r#"eventkit-lambda feature "faults""#)
}

#[test]
fn builds_as_sam_builds_them_leave_the_faults_feature_off() {
    let binaries: Vec<&str> = resources("AWS::Serverless::Function")
        .into_iter()
        .map(|(id, function)| {
            function["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no Binary"))
        })
        .collect();
    for binary in &binaries {
        // The probe sees the feature where it is on: each function passes it through.
        assert!(
            faults_enabled(&["-p", binary, "--features", "faults"]),
            "{binary} has no `faults` feature passing eventkit's through"
        );
        assert!(
            !faults_enabled(&["-p", binary]),
            "the package {binary} turns eventkit's faults feature on by default"
        );
    }
    // `sam build` runs `cargo lambda build --bin <Binary>` at the workspace root, where cargo
    // resolves features over every member: none may turn it on outside dev-dependencies.
    assert!(
        !faults_enabled(&["--workspace"]),
        "a workspace member turns eventkit's faults feature on for every build at the root"
    );
}
