//! Which binary each function runs, decided as SAM's Rust builder (`BuildMethod:
//! rust-cargolambda`, cargo-lambda underneath) decides it, so that a template written for
//! `sam build` runs unmodified: `Metadata.BuildProperties.Binary` when it is set, else the
//! only binary target of the cargo package at the function's `CodeUri`. (`Handler` is
//! `bootstrap` in such templates: the name cargo-lambda gives every binary it packages, not
//! a binary of the package.) Decided before anything is built or created, so that a template
//! that cannot run fails with nothing to undo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::build::metadata;
use crate::functions::with_globals;
use crate::template::{Resource, Template};

/// The `BuildMethod` of functions SAM builds with cargo-lambda.
pub const RUST_BUILD_METHOD: &str = "rust-cargolambda";

/// The binary (its cargo target name) each function runs, by logical id.
pub type FunctionBinaries = BTreeMap<String, String>;

/// Why a function's binary cannot be decided; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// `CodeUri` is not a path (an S3 location, say).
    #[error(
        "{function}: CodeUri {code_uri} is not a local folder (the function's cargo package \
         is built from it)"
    )]
    CodeUriNotLocal {
        /// The function's logical id.
        function: String,
        /// The declared `CodeUri`.
        code_uri: String,
    },
    /// `cargo metadata` could not read a package there.
    #[error(
        "{function}: no cargo package at its CodeUri {} ({reason}); point CodeUri at the \
         package's folder (relative to the template's), or set \
         Metadata.BuildProperties.Binary",
        folder.display()
    )]
    NoPackage {
        /// The function's logical id.
        function: String,
        /// The folder `CodeUri` names.
        folder: PathBuf,
        /// What cargo said.
        reason: String,
    },
    /// The package there has no binary target.
    #[error(
        "{function}: no cargo package with a binary target at its CodeUri {} (the function \
         runs the package's binary: add a [[bin]] or src/main.rs, or point CodeUri at the \
         package's folder)",
        folder.display()
    )]
    NoBinary {
        /// The function's logical id.
        function: String,
        /// The folder `CodeUri` names.
        folder: PathBuf,
    },
    /// The package there has several, and the template does not say which.
    #[error(
        "{function}: the cargo package at its CodeUri {} has several binaries ({}); set \
         Metadata.BuildProperties.Binary to the one the function runs, as `sam build` \
         requires too",
        folder.display(),
        candidates.join(", ")
    )]
    SeveralBinaries {
        /// The function's logical id.
        function: String,
        /// The folder `CodeUri` names.
        folder: PathBuf,
        /// The binary targets found.
        candidates: Vec<String>,
    },
    /// Not a cargo-lambda function, and no `Handler` either.
    #[error("{function}: neither Metadata.BuildProperties.Binary nor Handler names its binary")]
    Unnamed {
        /// The function's logical id.
        function: String,
    },
}

/// What the template says about a function's binary.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Declared {
    /// Named outright: `BuildProperties.Binary`, or `Handler` for a function SAM does not
    /// build with cargo-lambda (what a prebuilt folder holds).
    Named(String),
    /// The only binary of the cargo package in this folder.
    Package(PathBuf),
}

/// The binary of every function of `template`, whose file is in `folder` (`CodeUri` is
/// relative to it).
pub async fn resolve(template: &Template, folder: &Path) -> Result<FunctionBinaries, BinaryError> {
    let mut resolved = FunctionBinaries::new();
    // One `cargo metadata` per package, however many functions share it.
    let mut packages: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for resource in &template.resources {
        if resource.kind != "AWS::Serverless::Function" {
            continue;
        }
        let function = resource.logical_id.clone();
        let binary = match declared(resource, &template.function_globals, folder)? {
            Declared::Named(binary) => binary,
            Declared::Package(code) => {
                let candidates = match packages.get(&code) {
                    Some(candidates) => candidates.clone(),
                    None => {
                        let candidates = package_binaries(&function, &code).await?;
                        packages.insert(code.clone(), candidates.clone());
                        candidates
                    }
                };
                only_binary(&function, &code, &candidates)?
            }
        };
        resolved.insert(function, binary);
    }
    Ok(resolved)
}

/// What `resource` (a function, under the template's `Globals.Function`) says about its
/// binary; `folder` is the template's.
fn declared(resource: &Resource, globals: &Value, folder: &Path) -> Result<Declared, BinaryError> {
    let function = || resource.logical_id.clone();
    if let Some(binary) = resource.metadata["BuildProperties"]["Binary"].as_str() {
        return Ok(Declared::Named(binary.to_string()));
    }
    let properties = with_globals(globals, &resource.properties);
    if resource.metadata["BuildMethod"].as_str() == Some(RUST_BUILD_METHOD) {
        return match &properties["CodeUri"] {
            // SAM builds the template's own folder then.
            Value::Null => Ok(Declared::Package(folder.to_path_buf())),
            Value::String(code) => Ok(Declared::Package(folder.join(code))),
            other => Err(BinaryError::CodeUriNotLocal {
                function: function(),
                code_uri: other.to_string(),
            }),
        };
    }
    properties["Handler"]
        .as_str()
        .map(|handler| Declared::Named(handler.to_string()))
        .ok_or_else(|| BinaryError::Unnamed {
            function: function(),
        })
}

/// The binary targets of the package in `code` (as `cargo metadata` lists them).
async fn package_binaries(function: &str, code: &Path) -> Result<Vec<String>, BinaryError> {
    let no_package = |reason: String| BinaryError::NoPackage {
        function: function.to_string(),
        folder: code.to_path_buf(),
        reason,
    };
    // cargo metadata names manifests by their canonical paths.
    let canonical = code
        .canonicalize()
        .map_err(|error| no_package(error.to_string()))?;
    let metadata = metadata(&canonical)
        .await
        .map_err(|error| no_package(format!("{error:#}")))?;
    Ok(bin_targets(&metadata, &canonical))
}

/// The binary targets of the package whose manifest is in `folder`, or, when `folder` is a
/// virtual workspace's root, of every member under it (cargo-lambda builds them all there).
fn bin_targets(metadata: &Value, folder: &Path) -> Vec<String> {
    let packages: Vec<&Value> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let mut chosen: Vec<&Value> = packages
        .iter()
        .copied()
        .filter(|package| manifest_folder(package) == Some(folder))
        .collect();
    if chosen.is_empty() {
        chosen = packages
            .into_iter()
            .filter(|package| manifest_folder(package).is_some_and(|dir| dir.starts_with(folder)))
            .collect();
    }
    let mut binaries: Vec<String> = chosen
        .into_iter()
        .flat_map(|package| package["targets"].as_array().into_iter().flatten())
        .filter(|target| {
            target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .filter_map(|target| target["name"].as_str().map(str::to_string))
        .collect();
    binaries.sort();
    binaries.dedup();
    binaries
}

/// The folder of a `cargo metadata` package's manifest.
fn manifest_folder(package: &Value) -> Option<&Path> {
    Path::new(package["manifest_path"].as_str()?).parent()
}

/// SAM's rule for a package without `BuildProperties.Binary`: its only binary.
fn only_binary(function: &str, code: &Path, candidates: &[String]) -> Result<String, BinaryError> {
    match candidates {
        [only] => Ok(only.clone()),
        [] => Err(BinaryError::NoBinary {
            function: function.to_string(),
            folder: code.to_path_buf(),
        }),
        several => Err(BinaryError::SeveralBinaries {
            function: function.to_string(),
            folder: code.to_path_buf(),
            candidates: several.to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn template(text: &str) -> Template {
        Template::parse(text).unwrap()
    }

    /// The workspace's test applications (tests/apps: several binaries; tests/apps/fanout:
    /// one).
    fn apps() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps")
    }

    const FUNCTION: &str = r#"
Globals:
  Function:
    CodeUri: fanout
Resources:
  Consumer:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
    Properties:
      Handler: bootstrap
      Runtime: provided.al2023
"#;

    #[tokio::test]
    async fn a_packages_only_binary_is_the_functions() {
        let resolved = resolve(&template(FUNCTION), &apps()).await.unwrap();
        assert_eq!(resolved["Consumer"], "fanout-consumer");
    }

    #[tokio::test]
    async fn build_properties_name_the_binary_whatever_the_package_holds() {
        let named = FUNCTION.replace(
            "BuildMethod: rust-cargolambda",
            "BuildMethod: rust-cargolambda\n      BuildProperties:\n        Binary: sqs-consumer",
        );
        let named = named.replace("CodeUri: fanout", "CodeUri: .");
        let resolved = resolve(&template(&named), &apps()).await.unwrap();
        assert_eq!(resolved["Consumer"], "sqs-consumer");
    }

    #[tokio::test]
    async fn several_binaries_without_build_properties_are_named_in_the_error() {
        let several = FUNCTION.replace("CodeUri: fanout", "CodeUri: .");
        let error = resolve(&template(&several), &apps()).await.unwrap_err();
        let BinaryError::SeveralBinaries { candidates, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(
            candidates,
            &["schedule-probe", "sqs-consumer", "stream-probe"]
        );
        let text = error.to_string();
        assert!(
            text.starts_with("Consumer: ") && text.contains("Metadata.BuildProperties.Binary"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_code_uri_without_a_package_says_so() {
        let nowhere = FUNCTION.replace("CodeUri: fanout", "CodeUri: no-such-folder");
        let error = resolve(&template(&nowhere), &apps()).await.unwrap_err();
        assert!(matches!(error, BinaryError::NoPackage { .. }), "{error}");
    }

    #[test]
    fn code_uri_comes_from_the_function_or_its_globals_and_is_relative_to_the_template() {
        let parsed = template(FUNCTION);
        let consumer = parsed.resource("Consumer").unwrap();
        let folder = Path::new("/app");
        assert_eq!(
            declared(consumer, &parsed.function_globals, folder).unwrap(),
            Declared::Package(PathBuf::from("/app/fanout"))
        );
        let mut own = consumer.clone();
        own.properties["CodeUri"] = json!("rust_app/");
        assert_eq!(
            declared(&own, &parsed.function_globals, folder).unwrap(),
            Declared::Package(PathBuf::from("/app/rust_app/"))
        );
        assert_eq!(
            declared(&own, &Value::Null, folder).unwrap(),
            Declared::Package(PathBuf::from("/app/rust_app/"))
        );
        let mut unbuilt = consumer.clone();
        unbuilt.metadata = Value::Null;
        assert_eq!(
            declared(&unbuilt, &parsed.function_globals, folder).unwrap(),
            Declared::Named("bootstrap".into())
        );
        let mut on_s3 = consumer.clone();
        on_s3.properties["CodeUri"] = json!({"Bucket": "b", "Key": "k"});
        assert!(matches!(
            declared(&on_s3, &Value::Null, folder),
            Err(BinaryError::CodeUriNotLocal { .. })
        ));
    }

    #[test]
    fn a_virtual_workspace_offers_its_members_binaries() {
        let metadata = json!({"packages": [
            {"manifest_path": "/w/a/Cargo.toml", "targets": [
                {"name": "a", "kind": ["bin"]}, {"name": "a_lib", "kind": ["lib"]}]},
            {"manifest_path": "/w/b/Cargo.toml", "targets": [
                {"name": "b", "kind": ["bin"]}, {"name": "b_test", "kind": ["test"]}]},
        ]});
        assert_eq!(bin_targets(&metadata, Path::new("/w/a")), ["a"]);
        assert_eq!(bin_targets(&metadata, Path::new("/w")), ["a", "b"]);
        assert!(bin_targets(&metadata, Path::new("/elsewhere")).is_empty());
        let none = only_binary("F", Path::new("/w/c"), &[]).unwrap_err();
        assert!(matches!(none, BinaryError::NoBinary { .. }), "{none}");
    }
}
