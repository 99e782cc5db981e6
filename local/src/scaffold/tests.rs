#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::template::Template;

const ALL: [AppTrigger; 3] = [AppTrigger::Sqs, AppTrigger::Sns, AppTrigger::Eventbridge];

fn variants() -> Vec<Vec<AppTrigger>> {
    let mut variants: Vec<Vec<AppTrigger>> = ALL.iter().map(|trigger| vec![*trigger]).collect();
    variants.push(ALL.to_vec());
    variants
}

fn scratch(name: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!(
        "scaffold-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    fs::create_dir_all(&folder).unwrap();
    folder
}

#[test]
fn every_variant_fills_every_placeholder() {
    for triggers in variants() {
        let scaffold = Scaffold::new("shop", &triggers, ToolkitSource::Registry).unwrap();
        for (path, text) in scaffold.files().unwrap() {
            assert!(
                !text.contains("{{"),
                "{triggers:?}: {} keeps a placeholder:\n{text}",
                path.display()
            );
        }
    }
}

#[test]
fn the_template_names_each_function_by_its_crate_and_reads_as_the_runner_reads_it() {
    let scaffold = Scaffold::new("shop", &ALL, ToolkitSource::Registry).unwrap();
    let files = scaffold.files().unwrap();
    let template = &files
        .iter()
        .find(|(path, _)| path == Path::new("template.yaml"))
        .unwrap()
        .1;
    Template::parse(template).unwrap();
    for trigger in ALL {
        let function = trigger.function();
        assert!(
            template.contains(&format!("Binary: {function}")),
            "{function} is not built by the template"
        );
        assert!(files
            .iter()
            .any(|(path, _)| path == &PathBuf::from(format!("functions/{function}/Cargo.toml"))));
        assert!(
            template.contains(&format!("dynamodb:LeadingKeys: [\"{function}#*\"]")),
            "{function}'s policy is not confined to its own records"
        );
    }
}

#[test]
fn the_toolkit_comes_from_where_it_is_asked_for() {
    let cargo_toml = |source: ToolkitSource| {
        let files = Scaffold::new("shop", &[AppTrigger::Sqs], source)
            .unwrap()
            .files()
            .unwrap();
        files
            .into_iter()
            .find(|(path, _)| path == Path::new("Cargo.toml"))
            .unwrap()
            .1
    };
    let features = r#"default-features = false, features = ["dynamodb", "sqs"]"#;
    assert!(cargo_toml(ToolkitSource::Registry).contains(&format!(
        "eventkit-lambda = {{ version = \"{TOOLKIT_VERSION}\", {features} }}"
    )));
    assert!(
        cargo_toml(ToolkitSource::Path("/src/eventkit/shared".into())).contains(&format!(
            "eventkit-lambda = {{ path = \"/src/eventkit/shared\", {features} }}"
        ))
    );
    assert!(
        cargo_toml(ToolkitSource::Git("https://example.com/e.git".into())).contains(&format!(
            "eventkit-lambda = {{ git = \"https://example.com/e.git\", version = \"{TOOLKIT_VERSION}\", {features} }}"
        ))
    );
}

#[test]
fn names_that_cannot_name_a_stack_and_no_trigger_are_refused() {
    for name in [
        "", "Shop", "1shop", "shop_app", "shop-", "sh--op", "shop app",
    ] {
        assert!(
            matches!(
                Scaffold::new(name, &[AppTrigger::Sqs], ToolkitSource::Registry),
                Err(ScaffoldError::InvalidName(_))
            ),
            "{name:?} was taken"
        );
    }
    assert!(matches!(
        Scaffold::new("shop", &[], ToolkitSource::Registry),
        Err(ScaffoldError::NoTrigger)
    ));
}

#[test]
fn new_refuses_a_folder_with_something_in_it_and_init_overwrites_nothing() {
    let scaffold = Scaffold::new("shop", &[AppTrigger::Sns], ToolkitSource::Registry).unwrap();
    let folder = scratch("taken");
    fs::write(folder.join("notes.txt"), "mine").unwrap();
    assert!(matches!(
        scaffold.create(&folder),
        Err(ScaffoldError::NotEmpty(_))
    ));

    // init writes beside what is there...
    let written = scaffold.init(&folder).unwrap();
    assert!(written.contains(&PathBuf::from("template.yaml")));
    assert_eq!(
        fs::read_to_string(folder.join("notes.txt")).unwrap(),
        "mine"
    );
    // ...and, run again, refuses before writing anything.
    fs::write(folder.join("README.md"), "my own").unwrap();
    assert!(matches!(
        scaffold.init(&folder),
        Err(ScaffoldError::Exists(_))
    ));
    assert_eq!(
        fs::read_to_string(folder.join("README.md")).unwrap(),
        "my own"
    );
    fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn the_sample_events_carry_the_order_where_each_trigger_puts_it() {
    let files = Scaffold::new("shop", &ALL, ToolkitSource::Registry)
        .unwrap()
        .files()
        .unwrap();
    let text = |name: &str| {
        &files
            .iter()
            .find(|(path, _)| path == &PathBuf::from("events").join(name))
            .unwrap()
            .1
    };
    let sqs: serde_json::Value = serde_json::from_str(text("sqs.json")).unwrap();
    let body: serde_json::Value =
        serde_json::from_str(sqs["Records"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["orderId"], "o-1001");
    let sns: serde_json::Value = serde_json::from_str(text("sns.json")).unwrap();
    assert!(sns["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .contains("o-1001"));
    let eventbridge: serde_json::Value = serde_json::from_str(text("eventbridge.json")).unwrap();
    assert_eq!(eventbridge["detail"]["data"]["orderId"], "o-1001");
    let entry: serde_json::Value = serde_json::from_str(text("eventbridge-message.json")).unwrap();
    assert_eq!(entry["DetailType"], "OrderPlaced");
}

#[test]
fn a_runner_built_from_a_checkout_points_new_applications_at_its_toolkit() {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .canonicalize()
        .unwrap();
    assert_eq!(
        ToolkitSource::default_for_this_build(),
        ToolkitSource::Path(checkout)
    );
}

fn file<'a>(files: &'a [(PathBuf, String)], path: &str) -> &'a str {
    &files
        .iter()
        .find(|(file, _)| file == Path::new(path))
        .unwrap_or_else(|| panic!("{path} is not generated"))
        .1
}

#[test]
fn every_outbox_variant_fills_every_placeholder() {
    for triggers in variants() {
        let scaffold = Scaffold::new("shop", &triggers, ToolkitSource::Registry)
            .unwrap()
            .with_outbox(true);
        for (path, text) in scaffold.files().unwrap() {
            assert!(
                !text.contains("{{"),
                "{triggers:?} with the outbox: {} keeps a placeholder:\n{text}",
                path.display()
            );
        }
    }
}

#[test]
fn the_outbox_adds_the_stream_the_relay_and_the_bus_and_each_function_emits() {
    let files = Scaffold::new("shop", &ALL, ToolkitSource::Registry)
        .unwrap()
        .with_outbox(true)
        .files()
        .unwrap();
    let template = file(&files, "template.yaml");
    let parsed = Template::parse(template).unwrap();
    let resource = |logical: &str| {
        parsed
            .resources
            .iter()
            .find(|resource| resource.logical_id == logical)
            .unwrap_or_else(|| panic!("{logical} is not declared"))
    };
    assert_eq!(
        resource("IdempotencyTable").properties["StreamSpecification"]["StreamViewType"],
        "NEW_IMAGE"
    );
    for logical in [
        "EventsBus",
        "RelayFailures",
        "OrderEventsQueue",
        "OrderRecordedRule",
    ] {
        resource(logical);
    }
    let relay = resource("RelayFunction");
    assert_eq!(
        relay.metadata["BuildProperties"]["Binary"],
        outbox::RELAY,
        "the relay is built from its crate"
    );
    assert!(
        files
            .iter()
            .any(|(path, _)| path
                == &PathBuf::from(format!("functions/{}/Cargo.toml", outbox::RELAY)))
    );
    let stream = &relay.properties["Events"]["Outbox"]["Properties"];
    assert_eq!(
        stream["FilterCriteria"]["Filters"][0]["Pattern"],
        eventkit::outbox::STREAM_FILTER,
        "the relay's own marks are filtered out as the toolkit says"
    );
    assert_eq!(
        stream["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0],
        "RelayFailures"
    );
    assert!(
        template.contains(
            r#"dynamodb:LeadingKeys: ["sqs-consumer#*", "sns-consumer#*", "eventbridge-consumer#*"]"#
        ),
        "the relay marks only the consumers' records"
    );
    for trigger in ALL {
        let function = trigger.function();
        let lib = file(&files, &format!("functions/{function}/src/lib.rs"));
        assert!(lib.contains("work.emit_envelope(self.bus.clone(), &recorded)?;"));
        let main = file(&files, &format!("functions/{function}/src/main.rs"));
        assert!(main.contains("store.with_outbox_on_completions()"));
        assert!(main.contains("required(\"EVENT_BUS_NAME\")"));
    }
    assert!(file(&files, "Cargo.toml").contains("aws-sdk-eventbridge = "));
}

#[test]
fn without_the_outbox_nothing_of_it_is_generated() {
    let files = Scaffold::new("shop", &ALL, ToolkitSource::Registry)
        .unwrap()
        .files()
        .unwrap();
    assert!(!files
        .iter()
        .any(|(path, _)| path.starts_with(format!("functions/{}", outbox::RELAY))));
    for (path, text) in &files {
        for word in [
            "OrderRecorded",
            "StreamSpecification",
            "EventsBus",
            "aws-sdk-eventbridge",
        ] {
            assert!(!text.contains(word), "{} has {word}", path.display());
        }
    }
}
