//! How the stack's pieces are connected: subscriptions and rules as declared, and the
//! event sources of each function (SQS mappings; SNS subscriptions, EventBridge rules and
//! schedules that reach the function through its delivery queue).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{attributes, emulated, resolved_text, Created, Stack, StackOptions};
use crate::clients::Clients;
use crate::event_sources::schedule::{ScheduleSource, Scheduler};
use crate::functions::{
    async_invoke_limits, bounded, function_spec, queue_source, stream_source, AsyncInvokeConfig,
    FailureDestination, FunctionDecl, STREAM_PROPERTIES_NOT_EMULATED,
};
use crate::resources::{
    create_queue, json_text, put_rule, subscribe, QueueInfo, RuleSpec, Subscriber, SubscriptionSpec,
};
use crate::template::Resource;

impl Stack {
    pub(super) async fn subscribe_declared(
        &mut self,
        clients: &Clients,
        properties: &Value,
    ) -> Result<String> {
        let topic = resolved_text(properties, "TopicArn")?;
        let protocol = resolved_text(properties, "Protocol")?;
        let endpoint = resolved_text(properties, "Endpoint")?;
        let spec = match self.function_by_arn(&endpoint) {
            // Lambda subscriptions reach the function through its delivery queue.
            Some(logical) if protocol == "lambda" => {
                let queue = self.async_queue(clients, &logical).await?;
                let mut spec =
                    SubscriptionSpec::from_properties(topic, "sqs", queue.arn, properties);
                spec.attributes
                    .retain(|(name, _)| name != "RawMessageDelivery");
                spec
            }
            _ => SubscriptionSpec::from_properties(topic, &protocol, endpoint, properties),
        };
        let arn = subscribe(clients, &spec).await?;
        self.created.push(Created::Subscription(arn.clone()));
        self.note_subscriber(&spec, &arn);
        Ok(arn)
    }

    pub(super) async fn rule_declared(
        &mut self,
        clients: &Clients,
        name: &str,
        properties: &Value,
    ) -> Result<String> {
        if properties["EventPattern"].is_null() {
            bail!("rule {name} has no EventPattern (schedules do not run locally)");
        }
        let mut targets = Vec::new();
        for target in properties["Targets"].as_array().into_iter().flatten() {
            let mut target = target.clone();
            let arn = resolved_text(&target, "Arn")?;
            if let Some(dlq) = target["DeadLetterConfig"]["Arn"].as_str() {
                self.dead_letter_arns.insert(dlq.to_string());
            }
            if let Some(logical) = self.function_by_arn(&arn) {
                target["Arn"] = json!(self.async_queue(clients, &logical).await?.arn);
            }
            targets.push(target);
        }
        let bus = properties["EventBusName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let spec = RuleSpec {
            name: name.to_string(),
            bus: bus.clone(),
            pattern: json_text(&properties["EventPattern"]),
            description: properties["Description"].as_str().map(str::to_string),
            state: properties["State"]
                .as_str()
                .unwrap_or("ENABLED")
                .to_string(),
            targets,
        };
        let arn = put_rule(clients, &spec).await?;
        self.created.push(Created::Rule {
            name: name.to_string(),
            bus,
        });
        Ok(arn)
    }

    pub(super) async fn declare_function(
        &mut self,
        clients: &Clients,
        options: &StackOptions,
        resource: &Resource,
        properties: &Value,
    ) -> Result<()> {
        let logical = resource.logical_id.clone();
        let binary = self
            .binaries
            .get(&logical)
            .with_context(|| format!("{logical}: its binary was not decided"))?;
        let spec = function_spec(
            resource,
            properties,
            &self.name,
            &options.binaries.join(binary),
            &options.endpoints,
        );
        for (property, why) in emulated::function_properties(properties) {
            self.skipped.push((format!("{logical}.{property}"), why));
        }
        let (max_retries, max_event_age) = async_invoke_limits(properties);
        let dead_letter_queue = match &properties["DeadLetterQueue"] {
            Value::Null => None,
            dlq if dlq["Type"] == "SQS" => {
                Some(self.queue_by_arn(&resolved_text(dlq, "TargetArn")?)?)
            }
            other => bail!("{logical}: DeadLetterQueue {other} is not an SQS queue"),
        };
        let on_failure = match &properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"] {
            Value::Null => None,
            destination if destination["Type"] == "SQS" => {
                Some(self.queue_by_arn(&resolved_text(destination, "Destination")?)?)
            }
            other => bail!("{logical}: OnFailure destination {other} is not an SQS queue"),
        };
        for queue in dead_letter_queue.iter().chain(on_failure.iter()) {
            self.dead_letter_arns.insert(queue.arn.clone());
        }
        self.resolver.record(
            &logical,
            attributes(spec.name.clone(), [("Arn", spec.arn.clone())]),
        );
        self.functions.insert(
            logical.clone(),
            FunctionDecl {
                spec,
                queue_sources: Vec::new(),
                stream_sources: Vec::new(),
                async_queue: None,
                sns_subscriptions: BTreeMap::new(),
                schedules: Vec::new(),
                async_invoke: AsyncInvokeConfig {
                    max_retries,
                    max_event_age,
                    dead_letter_queue,
                    on_failure,
                },
            },
        );
        let events = properties["Events"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (event, declared) in &events {
            let event_properties = &declared["Properties"];
            let kind = declared["Type"].as_str().unwrap_or_default();
            for ignored in emulated::event_properties_ignored(kind, event_properties) {
                self.skipped.push((
                    format!("{logical}.Events.{event}.{ignored}"),
                    format!("{kind} event property ignored locally"),
                ));
            }
            match kind {
                "SQS" => self.map_queue(&logical, event, event_properties)?,
                "DynamoDB" => self.map_stream(&logical, event, event_properties)?,
                "SNS" => {
                    self.subscribe_function(clients, &logical, event_properties)
                        .await?;
                }
                "EventBridgeRule" | "CloudWatchEvent" => {
                    self.route_to_function(clients, &logical, event, event_properties)
                        .await?;
                }
                "Schedule" | "ScheduleV2" => {
                    self.schedule_function(clients, &logical, event, kind, event_properties)
                        .await?;
                }
                other => self.skipped.push((
                    format!("{logical}.Events.{event}"),
                    format!("event type {other} (not run locally)"),
                )),
            }
        }
        Ok(())
    }

    /// An SQS event source mapping (unless disabled).
    fn map_queue(&mut self, logical: &str, event: &str, properties: &Value) -> Result<()> {
        if properties["Enabled"] == json!(false) {
            return Ok(());
        }
        let queue = self.queue_by_arn(&resolved_text(properties, "Queue")?)?;
        if let (Some(visibility), Some(function)) = (
            self.visibility.get(&queue.arn).copied(),
            self.functions.get(logical),
        ) {
            let queue_logical = self
                .queues
                .iter()
                .find(|(_, declared)| declared.arn == queue.arn)
                .map_or(queue.name.as_str(), |(name, _)| name.as_str());
            let timeout = function.spec.timeout;
            if let Some(warning) =
                super::visibility::check(logical, event, queue_logical, visibility, timeout)?
            {
                self.warnings.push(warning);
            }
        }
        let source = queue_source(event, properties, queue)?;
        if let Some(function) = self.functions.get_mut(logical) {
            function.queue_sources.push(source);
        }
        Ok(())
    }

    /// A DynamoDB stream event source mapping (unless disabled); properties it does not
    /// emulate are named in `skipped`.
    fn map_stream(&mut self, logical: &str, event: &str, properties: &Value) -> Result<()> {
        if properties["Enabled"] == json!(false) {
            return Ok(());
        }
        let stream = resolved_text(properties, "Stream")?;
        let table = self.streams.get(&stream).cloned().with_context(|| {
            format!(
                "{logical}.Events.{event}: no table of the stack has the stream {stream} (does \
                 the table declare a StreamSpecification?)"
            )
        })?;
        let on_failure = match &properties["DestinationConfig"]["OnFailure"]["Destination"] {
            Value::Null => None,
            destination => {
                let arn = json_text(destination);
                if self.topics.values().any(|topic| *topic == arn) {
                    Some(FailureDestination::Topic(arn))
                } else {
                    let queue = self.queue_by_arn(&arn).with_context(|| {
                        format!("{logical}.Events.{event}: OnFailure destination")
                    })?;
                    self.dead_letter_arns.insert(queue.arn.clone());
                    Some(FailureDestination::Queue(queue))
                }
            }
        };
        for property in STREAM_PROPERTIES_NOT_EMULATED {
            if !properties[*property].is_null() {
                self.skipped.push((
                    format!("{logical}.Events.{event}.{property}"),
                    "stream event source property (not emulated locally: ignored)".into(),
                ));
            }
        }
        let source = stream_source(event, properties, table, on_failure)?;
        if let Some(function) = self.functions.get_mut(logical) {
            function.stream_sources.push(source);
        }
        Ok(())
    }

    /// An SNS event: the topic delivers to the function's delivery queue, with the
    /// subscription's filter policy.
    async fn subscribe_function(
        &mut self,
        clients: &Clients,
        logical: &str,
        properties: &Value,
    ) -> Result<()> {
        let queue = self.async_queue(clients, logical).await?;
        let topic = resolved_text(properties, "Topic")?;
        let mut spec =
            SubscriptionSpec::from_properties(topic.clone(), "sqs", queue.arn, properties);
        // Lambda receives the SNS notification itself, never the raw message.
        spec.attributes
            .retain(|(name, _)| name != "RawMessageDelivery");
        let arn = subscribe(clients, &spec).await?;
        self.created.push(Created::Subscription(arn.clone()));
        self.note_subscriber(&spec, &arn);
        if let Some(function) = self.functions.get_mut(logical) {
            function.sns_subscriptions.insert(topic, arn);
        }
        Ok(())
    }

    /// An EventBridgeRule event: a rule on the bus with the event's pattern, retry policy and
    /// DLQ, targeting the function's delivery queue.
    async fn route_to_function(
        &mut self,
        clients: &Clients,
        logical: &str,
        event: &str,
        properties: &Value,
    ) -> Result<()> {
        let queue = self.async_queue(clients, logical).await?;
        let mut target = json!({"Id": bounded(&format!("{logical}{event}"), 64), "Arn": queue.arn});
        if properties["RetryPolicy"].is_object() {
            target["RetryPolicy"] = properties["RetryPolicy"].clone();
        }
        if let Some(dlq) = properties["DeadLetterConfig"]["Arn"].as_str() {
            self.dead_letter_arns.insert(dlq.to_string());
            target["DeadLetterConfig"] = json!({"Arn": dlq});
        }
        let text_or =
            |field: &str, default: &str| properties[field].as_str().unwrap_or(default).to_string();
        let rule = RuleSpec {
            name: properties["RuleName"].as_str().map_or_else(
                || bounded(&format!("{}-{logical}{event}", self.name), 64),
                str::to_string,
            ),
            bus: text_or("EventBusName", "default"),
            pattern: json_text(&properties["Pattern"]),
            description: None,
            state: text_or("State", "ENABLED"),
            targets: vec![target],
        };
        put_rule(clients, &rule).await?;
        self.created.push(Created::Rule {
            name: rule.name,
            bus: rule.bus,
        });
        Ok(())
    }

    /// A `Schedule` or `ScheduleV2` event (unless disabled): fired locally into the
    /// function's delivery queue (`event_sources::schedule`).
    async fn schedule_function(
        &mut self,
        clients: &Clients,
        logical: &str,
        event: &str,
        kind: &str,
        properties: &Value,
    ) -> Result<()> {
        let disabled = properties["Enabled"] == json!(false) || properties["State"] == "DISABLED";
        if disabled {
            return Ok(());
        }
        let (scheduler, expression) = if kind == "Schedule" {
            (Scheduler::Rule, "Schedule")
        } else {
            (Scheduler::Scheduler, "ScheduleExpression")
        };
        let expression = resolved_text(properties, expression)?;
        let expression = expression
            .parse()
            .with_context(|| format!("{logical}.Events.{event}"))?;
        // Created now, so that the invoker drains it.
        self.async_queue(clients, logical).await?;
        let source = ScheduleSource {
            name: properties["Name"].as_str().map_or_else(
                || bounded(&format!("{}-{logical}{event}", self.name), 64),
                str::to_string,
            ),
            scheduler,
            expression,
            input: match &properties["Input"] {
                Value::Null => None,
                Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            },
        };
        if let Some(function) = self.functions.get_mut(logical) {
            function.schedules.push(source);
        }
        Ok(())
    }

    /// A subscription's redrive policy makes its target a dead-letter queue (of what SNS
    /// could not deliver), whose messages go back to the subscription's endpoint.
    fn note_subscriber(&mut self, spec: &SubscriptionSpec, arn: &str) {
        if let Some(dead_letter) = spec.dead_letter_arn() {
            self.dead_letter_arns.insert(dead_letter.clone());
            self.subscribers
                .entry(dead_letter)
                .or_default()
                .push(Subscriber {
                    subscription: arn.to_string(),
                    topic: spec.topic_arn.clone(),
                    endpoint: spec.endpoint.clone(),
                });
        }
    }

    /// The function's delivery queue for asynchronous invocations, created on first use.
    async fn async_queue(&mut self, clients: &Clients, logical: &str) -> Result<QueueInfo> {
        let function = self
            .functions
            .get(logical)
            .with_context(|| format!("{logical} is not a function of the stack"))?;
        if let Some(queue) = &function.async_queue {
            return Ok(queue.clone());
        }
        // Invisible while its invocation and retries run; visible again only if the local
        // Lambda itself died, so that nothing accepted is lost.
        let attempts = u64::from(function.async_invoke.max_retries) + 1;
        let visibility = function.spec.timeout.as_secs() * attempts + 60;
        let name = bounded(&format!("{}-{logical}-async", self.name), 80);
        let queue = create_queue(
            clients,
            &name,
            &json!({"VisibilityTimeout": visibility}),
            None,
        )
        .await?;
        self.created.push(Created::Queue(queue.url.clone()));
        if let Some(function) = self.functions.get_mut(logical) {
            function.async_queue = Some(queue.clone());
        }
        Ok(queue)
    }
}
