//! The template through the tools a deployment relies on: each test asserts the tool's exit
//! status and what its output says.

use std::path::Path;

use serde_json::Value;

use crate::support::{describe, resources, run_tool, workspace_root, TEMPLATE};

#[test]
fn cfn_lint_finds_nothing() {
    let output = run_tool("cfn-lint", &["--format", "json", TEMPLATE], &[]);
    let findings: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("cfn-lint printed no JSON: {}", describe(&output)));
    assert!(
        output.status.success() && findings.is_empty(),
        "cfn-lint: {}",
        describe(&output)
    );
}

#[test]
fn sam_validate_lint_passes() {
    // No --template-file: samconfig.toml's [default.validate] names the template, so this
    // checks the config too.
    let output = run_tool("sam", &["validate", "--lint"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("infra/template.yaml is a valid SAM Template"),
        "sam validate --lint: {}",
        describe(&output)
    );
}

#[test]
fn checkov_fails_no_check_and_every_skip_says_why() {
    // --skip-download: no call to Prisma Cloud for guidelines (there is no network here).
    let output = run_tool(
        "checkov",
        &[
            "--framework",
            "cloudformation",
            "--file",
            TEMPLATE,
            "--output",
            "json",
            "--skip-download",
        ],
        &[],
    );
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("checkov printed no JSON: {}", describe(&output)));
    // One framework gives one report; checkov wraps several in a list.
    let report = report.as_array().map_or(&report, |reports| &reports[0]);
    let summary = &report["summary"];
    assert!(
        output.status.success() && summary["failed"] == 0 && summary["parsing_errors"] == 0,
        "checkov: {summary}\n{}",
        describe(&output)
    );
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 0,
        "checkov ran no check: {summary}"
    );
    for skipped in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let comment = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(
            comment.len() > 20,
            "{} on {} is skipped without a justification",
            skipped["check_id"],
            skipped["resource"]
        );
    }
}

/// The Architecture SAM applies with samconfig.toml's `environment`, at `sam build` and at
/// `sam deploy`, read from SAM's own debug log: the build is asked for a function that does
/// not exist and the deploy for a template that does not exist, so both stop right after
/// reading the configuration, with no compiling and no AWS call.
fn sam_architectures(environment: &str) -> (String, String) {
    let root = workspace_root();
    let build_dir = root.join("target/sam-config-check");
    let build = run_tool(
        "sam",
        &[
            "build",
            "NoSuchFunction",
            "--config-env",
            environment,
            "--debug",
            "--build-dir",
            &build_dir.to_string_lossy(),
        ],
        &[],
    );
    let build_log = describe(&build);
    // "Converted 1 parameters: {'Architecture': 'x86_64'}"; none converted: the default.
    let build_architecture = build_log
        .lines()
        .find(|line| line.contains("Converted") && line.contains("parameters:"))
        .and_then(|line| after(line, "'Architecture': '", '\''))
        .unwrap_or_else(|| template_default("Architecture"));
    let config = root.join("samconfig.toml");
    let missing = root.join("target/no-such-built-template.yaml");
    let deploy = run_tool(
        "sam",
        &[
            "deploy",
            "--config-file",
            &config.to_string_lossy(),
            "--config-env",
            environment,
            "--debug",
            "--template-file",
            &missing.to_string_lossy(),
        ],
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    );
    let deploy_log = describe(&deploy);
    // "Configuration values are: {..., 'parameter_overrides': 'Architecture=arm64 ...', ...}"
    let values = deploy_log
        .lines()
        .find(|line| line.contains("Configuration values are:"))
        .unwrap_or_else(|| panic!("sam deploy read no configuration: {deploy_log}"));
    let deploy_architecture = after(values, "Architecture=", ' ')
        .map(|value| value.trim_end_matches(['\'', ',']).to_string())
        .unwrap_or_else(|| template_default("Architecture"));
    (build_architecture, deploy_architecture)
}

/// What follows `marker` in `line`, up to `end`.
fn after(line: &str, marker: &str, end: char) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    Some(rest.split(end).next().unwrap_or(rest).to_string())
}

fn template_default(parameter: &str) -> String {
    crate::support::template()["Parameters"][parameter]["Default"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn each_samconfig_environment_builds_and_deploys_for_one_architecture() {
    for (environment, architecture) in [("default", "arm64"), ("x86_64", "x86_64")] {
        assert_eq!(
            sam_architectures(environment),
            (architecture.to_string(), architecture.to_string()),
            "samconfig.toml [{environment}]: (sam build, sam deploy) Architecture"
        );
    }
}

#[test]
fn sam_validate_lint_passes_with_the_x86_64_environment() {
    let output = run_tool(
        "sam",
        &["validate", "--lint", "--config-env", "x86_64"],
        &[],
    );
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout).contains("is a valid SAM Template"),
        "sam validate --lint --config-env x86_64: {}",
        describe(&output)
    );
}

/// One `sam build` of every function, for the template's architecture, arm64: cargo-lambda
/// cross-compiles with zig against the aarch64 std that `cargo xtask tools` adds.
/// CARGO_TARGET_DIR keeps cargo's cache between runs (a clean release build of the functions
/// takes about 7 minutes on 2 cores).
#[test]
fn sam_build_produces_an_arm64_bootstrap_for_every_function() {
    let root = workspace_root();
    let build_dir = root.join("target/sam-build");
    let cargo_target = root.join("target/sam-cargo");
    let _ = std::fs::remove_dir_all(&build_dir);
    let build_dir_arg = build_dir.to_string_lossy();
    // The release profile's optimisation (thin LTO, one codegen unit) is for deployments;
    // what this checks (SAM's build method builds every function, for arm64, without the
    // crash points) holds for any profile, and unoptimised it builds in a fraction of the
    // time on CI's two cores.
    let output = run_tool(
        "sam",
        &["build", "--build-dir", &build_dir_arg],
        &[
            ("CARGO_TARGET_DIR", &cargo_target.to_string_lossy()),
            ("CARGO_PROFILE_RELEASE_LTO", "off"),
            ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256"),
            ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0"),
        ],
    );
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout).contains("Build Succeeded"),
        "sam build: {}",
        describe(&output)
    );
    let functions = resources("AWS::Serverless::Function");
    assert_eq!(functions.len(), 6, "the pipeline has six functions");
    for (logical_id, _) in functions {
        let bootstrap = build_dir.join(logical_id).join("bootstrap");
        assert_arm64_executable(&bootstrap);
        assert_no_crash_points(&bootstrap);
    }
}

/// Built without eventkit's `faults` feature: the crash points' code, whose log line says
/// `crash_injected`, is not in the binary, so no environment variable can arm it.
fn assert_no_crash_points(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let marker = b"crash_injected";
    assert!(
        !bytes.windows(marker.len()).any(|window| window == marker),
        "{} has eventkit's crash points compiled in (the faults feature)",
        path.display()
    );
}

/// An ELF executable for AArch64 (`e_machine` 0xb7), so the binary really was built for
/// Graviton.
fn assert_arm64_executable(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(
        bytes.len() > 64 && bytes.starts_with(b"\x7fELF") && bytes[18] == 0xb7,
        "{} is not an AArch64 ELF executable",
        path.display()
    );
}
