//! What `--outbox` adds to an application: each consumer also announces the order it
//! recorded, an `OrderRecorded` event staged in the same unit of work, which commits on the
//! event's idempotency record (eventkit's outbox on completions); the idempotency table's
//! stream feeds a relay function (eventkit's `outbox::Relay`, as the repository's
//! `functions/relay` runs it) that publishes the events to the application's bus, where a
//! rule sends every `OrderRecorded` to a queue one can read.
//!
//! Without it every placeholder below is filled with nothing, and the application is the
//! one generated before the option existed.

use std::path::PathBuf;

use super::render::render;
use super::trigger::{AppTrigger, EVENT_ID, ORDER_ID};

/// The relay function's package and binary: not `relay`, which the applications of this
/// repository's tests would share a target folder with (the pipeline's own relay).
pub const RELAY: &str = "outbox-relay";

/// The event each consumer emits.
pub const EVENT_TYPE: &str = "OrderRecorded";

/// The bus the unit tests stage the event for (the function's `EVENT_BUS_NAME` when
/// deployed).
const TEST_BUS: &str = "events";

/// The placeholders of the workspace's files and the template.
pub(super) fn app_placeholders(outbox: bool) -> Vec<(&'static str, String)> {
    let values = [
        (
            "outbox_dependencies",
            "aws-sdk-eventbridge = { version = \"1.127\", default-features = false, features = [\"default-https-client\", \"rt-tokio\"] }",
        ),
        ("outbox_environment", "        EVENT_BUS_NAME: !Ref EventsBus"),
        (
            "outbox_stream",
            "      # The outbox too: the OrderRecorded events ride on the records the completions\n      \
             # write, and the relay reads the new images from this stream to publish them.\n      \
             StreamSpecification:\n        StreamViewType: NEW_IMAGE",
        ),
    ];
    only_with(
        outbox,
        values.map(|(name, value)| (name, value.to_string())),
    )
}

/// The placeholders of a consumer's crate (see `files/function.*.tmpl`).
pub(super) fn function_placeholders(outbox: bool) -> Vec<(&'static str, String)> {
    let values = [
        ("outbox_doc", DOC.to_string()),
        ("outbox_use", "use eventkit::outbox::Destination;".to_string()),
        ("outbox_event", EVENT.to_string()),
        ("outbox_field", "    bus: Destination,".to_string()),
        ("outbox_new_doc", ", announced on the bus `bus`".to_string()),
        ("outbox_new_parameter", ", bus: impl Into<String>".to_string()),
        (
            "outbox_new_field",
            "            bus: Destination::event_bridge(bus),".to_string(),
        ),
        ("outbox_emit", EMIT.to_string()),
        ("outbox_test_bus", format!(", \"{TEST_BUS}\"")),
        ("outbox_assertions", unit_assertions()),
        ("outbox_store", ".with_outbox_on_completions()".to_string()),
        ("outbox_local_assertions", LOCAL_ASSERTIONS.to_string()),
        ("outbox_main_bus", ", required(\"EVENT_BUS_NAME\")?".to_string()),
        (
            "outbox_main_store",
            "    // The idempotency table is the outbox too: the events ride on the completions.\n    \
             let store = store.with_outbox_on_completions();"
                .to_string(),
        ),
    ];
    only_with(outbox, values)
}

/// The template's resources for the outbox (after the triggers'): the bus, the relay on the
/// stream, its failure queue, and the rule and queue where the events can be read.
pub(super) fn resources(triggers: &[AppTrigger]) -> String {
    let leading_keys = triggers
        .iter()
        .map(|trigger| format!("\"{}#*\"", trigger.function()))
        .collect::<Vec<_>>()
        .join(", ");
    render(
        include_str!("files/outbox.yaml.tmpl"),
        &[
            ("relay", RELAY),
            ("leading_keys", &leading_keys),
            ("stream_filter", eventkit::outbox::STREAM_FILTER),
            ("event_type", EVENT_TYPE),
        ],
    )
}

/// The template's outputs for the outbox.
pub(super) fn outputs() -> String {
    include_str!("files/outbox.outputs.tmpl").to_string()
}

/// The README's paragraph on the outbox, where to see the events, and the relay in the
/// layout.
pub(super) fn readme(outbox: bool) -> Vec<(&'static str, String)> {
    let values = [
        (
            "outbox_readme",
            format!(
                "\n{}",
                render(include_str!("files/outbox.README.md.tmpl"), &[("relay", RELAY)]).trim_end()
            ),
        ),
        (
            "outbox_status",
            ", OrderEventsQueue (one OrderRecorded per order)".to_string(),
        ),
        (
            "outbox_layout",
            format!(
                "- `functions/{RELAY}/src/main.rs`: the relay (eventkit's `outbox::Relay`) on the\n  \
                 idempotency table's stream, publishing the events to the application's bus."
            ),
        ),
    ];
    only_with(outbox, values)
}

/// The relay function's crate, relative to the application's folder.
pub(super) fn files() -> Vec<(PathBuf, String)> {
    let crate_dir = PathBuf::from("functions").join(RELAY);
    let values = [("relay", RELAY)];
    vec![
        (
            crate_dir.join("Cargo.toml"),
            render(include_str!("files/relay.Cargo.toml.tmpl"), &values),
        ),
        (
            crate_dir.join("src/main.rs"),
            render(include_str!("files/relay.main.rs.tmpl"), &values),
        ),
    ]
}

/// `values` with `--outbox`; the same placeholders filled with nothing without it.
fn only_with<const N: usize>(
    outbox: bool,
    values: [(&'static str, String); N],
) -> Vec<(&'static str, String)> {
    values
        .into_iter()
        .map(|(name, value)| (name, if outbox { value } else { String::new() }))
        .collect()
}

const DOC: &str = "//!
//! Each order recorded is announced too: an `OrderRecorded` event, staged in the same unit of
//! work, commits on the event's idempotency record (eventkit's outbox on completions), and the
//! relay function publishes it from the idempotency table's stream to the application's bus.";

const EVENT: &str =
    "/// What the function announces on the application's bus for each order it records. Its id
/// derives from the order's event (`EventEnvelope::caused_by`): a rerun stages the very same
/// event, and its consumers' idempotency absorbs a second publish.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = \"camelCase\")]
pub struct OrderRecorded {
    /// The order.
    pub order_id: String,
    /// What it costs, in cents.
    pub amount_cents: u64,
}

impl VersionedEvent for OrderRecorded {
    const EVENT_TYPE: &'static str = \"OrderRecorded\";
    const CURRENT_VERSION: u32 = 1;
}
";

const EMIT: &str =
    "        // Announced in the same commit: no order without its event, nor an event without
        // its order.
        let recorded = EventEnvelope::caused_by(
            &order,
            NAME,
            OrderRecorded {
                order_id: order.data.order_id.clone(),
                amount_cents: order.data.amount_cents,
            },
        );
        work.emit_envelope(self.bus.clone(), &recorded)?;";

/// The unit test's assertions on the staged event: one for two deliveries, under the id
/// derived from the sample's event.
fn unit_assertions() -> String {
    format!(
        "
        // One OrderRecorded for the bus, under the id derived from the order's event: the
        // duplicate staged nothing.
        let events: Vec<_> = commits.iter().flat_map(|commit| &commit.events).collect();
        assert_eq!(events.len(), 1, \"one event for two deliveries: {{events:?}}\");
        assert_eq!(events[0].destination, Destination::event_bridge(\"{TEST_BUS}\"));
        let event = &events[0].event;
        assert_eq!(event.event_type, \"{EVENT_TYPE}\");
        let cause = \"{EVENT_ID}\"; // the sample's eventId
        let id = eventkit::events::derived_event_id(cause, \"{EVENT_TYPE}\", NAME, None);
        assert_eq!(event.event_id, id, \"derived from the order's event\");
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body[\"data\"][\"orderId\"], \"{ORDER_ID}\");
        assert_eq!(body[\"causationId\"], cause);"
    )
}

const LOCAL_ASSERTIONS: &str =
    "    // The OrderRecorded event rides on that record (eventkit's outbox on completions),
    // unpublished until the relay publishes it from the table's stream.
    let record = &stored.items()[0];
    let events = record.get(\"outbox\").and_then(|events| events.as_l().ok());
    assert_eq!(events.map(Vec::len), Some(1), \"{record:?}\");
    assert!(record.contains_key(\"unpublished\"), \"{record:?}\");";
