//! The checked-in contracts against the code: the drift test (files and template exactly as
//! generated) and the compatibility test (no breaking change within a version).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::cloud::workspace_root;

#[test]
fn checked_in_schemas_and_registry_match_the_code() {
    let root = workspace_root();
    let generated = generate(&root).unwrap();
    let drift = drift(&root, &generated).unwrap();
    assert!(
        drift.is_empty(),
        "the event schemas are out of date:\n  {}\nrun `{REGENERATE}` and commit the result",
        drift.join("\n  ")
    );
}

#[test]
fn no_version_changed_in_a_breaking_way() {
    let root = workspace_root();
    let generated = generate(&root).unwrap();
    let breaks = contract_breaks(&root, &generated).unwrap();
    assert!(
        breaks.is_empty(),
        "event contracts broken:\n  {}\n{HOW_TO_BREAK}",
        breaks.join("\n  ")
    );
}

/// Every version of every type has a checked-in file, and each newer version of a type
/// differs from the one before in a breaking way (a compatible change stays in its version).
#[test]
fn each_new_version_is_a_breaking_change_with_its_predecessor_accepted() {
    let generated = generate(&workspace_root()).unwrap();
    for pair in generated.schemas.windows(2) {
        let [old, new] = pair else { continue };
        if old.event_type != new.event_type {
            continue;
        }
        let breaking: Vec<String> = compat::breaking_changes(&old.schema, &new.schema)
            .iter()
            .filter(|change| change.path != "/eventVersion")
            .map(ToString::to_string)
            .collect();
        assert!(
            !breaking.is_empty(),
            "{} v{} is compatible with v{}: add the fields to v{} instead of a new version",
            new.event_type,
            new.version,
            old.version,
            old.version
        );
    }
}

/// The real case: OrderPlaced v2 replaced v1's flat total with `total`.
#[test]
fn order_placed_v2_breaks_v1_where_the_total_moved() {
    let generated = generate(&workspace_root()).unwrap();
    let version = |v: u32| {
        generated
            .schemas
            .iter()
            .find(|s| s.event_type == "OrderPlaced" && s.version == v)
            .map(|s| &s.schema)
            .unwrap()
    };
    let breaking: Vec<String> = compat::breaking_changes(version(1), version(2))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        breaking,
        [
            "/data/amountCents: removed",
            "/data/currency: removed",
            "/data/total: added as a required field",
            "/eventVersion: no longer allows 1",
        ]
    );
}

/// A field removed from a checked-in version is reported with its path and the file.
#[test]
fn a_breaking_edit_of_a_checked_in_schema_is_named() {
    let root = std::env::temp_dir().join(format!("eventkit-schemas-{}", std::process::id()));
    let generated = generate(&workspace_root()).unwrap();
    let path = schema_path("OrderPlaced", 2);
    let mut checked_in = generated
        .schemas
        .iter()
        .find(|schema| schema.event_type == "OrderPlaced" && schema.version == 2)
        .map(|schema| schema.schema.clone())
        .unwrap();
    // As if the checked-in v2 had a field the code has since dropped.
    let money = checked_in["definitions"]["Money"]["properties"]
        .as_object_mut()
        .unwrap();
    money.insert("taxCents".into(), serde_json::json!({"type": "integer"}));
    std::fs::create_dir_all(root.join(path.parent().unwrap())).unwrap();
    std::fs::write(root.join(&path), checked_in.to_string()).unwrap();
    let breaks = contract_breaks(&root, &generated).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(
        breaks,
        ["OrderPlaced v2: /data/total/taxCents: removed (events/schemas/OrderPlaced/v2.json)"]
    );
}
