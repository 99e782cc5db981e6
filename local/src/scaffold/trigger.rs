//! What each trigger adds to an application: its function crate, its resources and policy in
//! the template, its sample events, and how the README sends it a message.

use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::{json, Value};

use super::render::render;
use super::ScaffoldError;
use crate::sample_events::{sample, Trigger};

/// A trigger a generated function is invoked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum AppTrigger {
    /// An SQS queue, batches of up to 10 with partial batch responses, a DLQ after ten
    /// receives.
    Sqs,
    /// An SNS topic the function is subscribed to; failed notifications to a DLQ.
    Sns,
    /// An EventBridge bus and a rule for `OrderPlaced`; failed events to a DLQ.
    Eventbridge,
}

/// The sample order every trigger's events carry.
pub(super) const ORDER_ID: &str = "o-1001";
/// The sample event's id, from which the outbox's derived event ids follow.
pub(super) const EVENT_ID: &str = "5b7c2e1a-8f3d-4c6b-9e0a-2d4f6a8c0e13";

impl AppTrigger {
    /// Its name on the command line and in file names (`eventbridge`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqs => "sqs",
            Self::Sns => "sns",
            Self::Eventbridge => "eventbridge",
        }
    }

    /// The function's package and binary name.
    pub fn function(self) -> String {
        format!("{}-consumer", self.name())
    }

    /// The function's logical id in the template, without `Function`.
    fn logical(self) -> &'static str {
        match self {
            Self::Sqs => "SqsConsumer",
            Self::Sns => "SnsConsumer",
            Self::Eventbridge => "EventbridgeConsumer",
        }
    }

    /// Where its orders come from, for doc comments.
    fn arrival(self) -> &'static str {
        match self {
            Self::Sqs => "from the orders queue",
            Self::Sns => "published to the orders topic",
            Self::Eventbridge => "put on the orders bus",
        }
    }

    /// The resource a message is sent to.
    fn target(self) -> &'static str {
        match self {
            Self::Sqs => "OrdersQueue",
            Self::Sns => "OrdersTopic",
            Self::Eventbridge => "OrdersBus",
        }
    }

    /// One line of the README's summary.
    pub(super) fn summary(&self) -> String {
        format!(
            "`{}` records the orders {}",
            self.function(),
            self.arrival()
        )
    }

    /// The README's command that sends this trigger's sample message.
    pub(super) fn send_command(&self) -> String {
        format!(
            "eventkit-local send {} --file events/{}-message.json\n",
            self.target(),
            self.name()
        )
    }

    fn placeholders(self) -> Vec<(&'static str, String)> {
        let function = self.function();
        vec![
            ("crate_name", function.replace('-', "_")),
            ("function", function),
            ("logical", self.logical().into()),
            ("trigger", self.name().into()),
            ("arrival", self.arrival().into()),
        ]
    }

    fn fill(self, template: &str, more: &[(&str, &str)]) -> String {
        let placeholders = self.placeholders();
        let mut values: Vec<(&str, &str)> = placeholders
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        values.extend_from_slice(more);
        render(template, &values)
    }

    /// Its resources in the template (after the tables).
    pub(super) fn resources(&self) -> String {
        let policy = self.fill(include_str!("files/policy.yaml.tmpl"), &[]);
        let resources = match self {
            Self::Sqs => include_str!("files/sqs.yaml.tmpl"),
            Self::Sns => include_str!("files/sns.yaml.tmpl"),
            Self::Eventbridge => include_str!("files/eventbridge.yaml.tmpl"),
        };
        self.fill(resources, &[("policy", policy.trim_end())])
    }

    /// Its outputs in the template.
    pub(super) fn outputs(&self) -> String {
        let outputs = match self {
            Self::Sqs => include_str!("files/sqs.outputs.tmpl"),
            Self::Sns => include_str!("files/sns.outputs.tmpl"),
            Self::Eventbridge => include_str!("files/eventbridge.outputs.tmpl"),
        };
        self.fill(outputs, &[])
    }

    /// Its function crate and sample events, relative to the application's folder.
    pub(super) fn files(
        self,
        app: &str,
        outbox: bool,
    ) -> Result<Vec<(PathBuf, String)>, ScaffoldError> {
        let crate_dir = PathBuf::from("functions").join(self.function());
        let (extra_dependencies, redelivery) = match self {
            // A record that failed transiently goes back to its queue with a growing delay,
            // so that an outage of hours does not exhaust its receives.
            Self::Sqs => (
                "aws-sdk-sqs.workspace = true\n",
                "\n        .with_redelivery(eventkit::redelivery::Redelivery::new(\n            aws_sdk_sqs::Client::new(&config),\n        ))",
            ),
            Self::Sns | Self::Eventbridge => ("", ""),
        };
        let (amount_in_sample, zero_amount, refused_assertion) = match self {
            // The envelope is a JSON string inside the record (its quotes escaped).
            Self::Sqs => (
                r##"r#"\"amountCents\":1999"#"##,
                r##"r#"\"amountCents\":0"#"##,
                "// Only the failed record goes back to its queue (then to the DLQ).\n        \
                 let response = response.unwrap();\n        \
                 assert_eq!(response[\"batchItemFailures\"][0][\"itemIdentifier\"], \"m-1\");",
            ),
            Self::Sns => (
                r##"r#"\"amountCents\":1999"#"##,
                r##"r#"\"amountCents\":0"#"##,
                ASYNC_REFUSAL,
            ),
            // The envelope is the event's `detail`, a JSON object.
            Self::Eventbridge => (
                r##"r#""amountCents": 1999"#"##,
                r##"r#""amountCents": 0"#"##,
                ASYNC_REFUSAL,
            ),
        };
        let outbox = super::outbox::function_placeholders(outbox);
        let mut values = vec![
            ("extra_dependencies", extra_dependencies),
            ("redelivery", redelivery),
            ("amount_in_sample", amount_in_sample),
            ("zero_amount", zero_amount),
            ("refused_assertion", refused_assertion),
        ];
        values.extend(outbox.iter().map(|(name, value)| (*name, value.as_str())));
        let code = |template: &str| self.fill(template, &values);
        Ok(vec![
            (
                crate_dir.join("Cargo.toml"),
                code(include_str!("files/function.Cargo.toml.tmpl")),
            ),
            (
                crate_dir.join("src/lib.rs"),
                code(include_str!("files/function.lib.rs.tmpl")),
            ),
            (
                crate_dir.join("src/main.rs"),
                code(include_str!("files/function.main.rs.tmpl")),
            ),
            (
                crate_dir.join("tests/local_cloud.rs"),
                code(include_str!("files/function.local_cloud.rs.tmpl")),
            ),
            (
                PathBuf::from("events").join(format!("{}.json", self.name())),
                pretty(&self.lambda_event(app)?),
            ),
            (
                PathBuf::from("events").join(format!("{}-message.json", self.name())),
                pretty(&self.message(app)),
            ),
        ])
    }

    /// The sample order in eventkit's envelope.
    fn envelope(app: &str) -> Value {
        json!({
            "eventId": EVENT_ID,
            "eventType": "OrderPlaced",
            "eventVersion": 1,
            "source": app,
            "time": "2026-12-01T09:30:00Z",
            "correlationId": EVENT_ID,
            "causationId": EVENT_ID,
            "data": {"orderId": ORDER_ID, "amountCents": 1999}
        })
    }

    /// What `eventkit-local send` sends: the envelope (a queue's body, a topic's message) or
    /// an EventBridge entry carrying it as its detail.
    fn message(self, app: &str) -> Value {
        match self {
            Self::Sqs | Self::Sns => Self::envelope(app),
            Self::Eventbridge => json!({
                "Source": app,
                "DetailType": "OrderPlaced",
                "Detail": Self::envelope(app),
            }),
        }
    }

    /// The event Lambda delivers to the function for the sample message (as
    /// `generate-event` makes it), with fixed ids the tests can name.
    fn lambda_event(self, app: &str) -> Result<Value, ScaffoldError> {
        let body = Self::envelope(app).to_string();
        let trigger = match self {
            Self::Sqs => Trigger::Sqs,
            Self::Sns => Trigger::Sns,
            Self::Eventbridge => Trigger::Eventbridge,
        };
        let mut event = sample(trigger, Some(&body))
            .map_err(|error| ScaffoldError::Sample(format!("{error:#}")))?;
        match self {
            Self::Sqs => {
                event["Records"][0]["messageId"] = json!("m-1");
            }
            Self::Sns => {
                event["Records"][0]["Sns"]["MessageId"] = json!("m-1");
                event["Records"][0]["Sns"]["Timestamp"] = json!("2026-12-01T09:30:00.000Z");
            }
            Self::Eventbridge => {
                event["id"] = json!("m-1");
                event["time"] = json!("2026-12-01T09:30:00Z");
                event["source"] = json!(app);
                event["detail-type"] = json!("OrderPlaced");
            }
        }
        Ok(event)
    }
}

/// How an asynchronously invoked function (SNS, EventBridge) refuses: the invocation fails,
/// naming the record and the reason, so Lambda retries it and then dead-letters it.
const ASYNC_REFUSAL: &str = "let error = response.unwrap_err().to_string();\n        \
     assert!(error.contains(\"has no amount\"), \"{error}\");";

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}
