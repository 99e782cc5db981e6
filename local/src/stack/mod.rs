//! The template's resources created in the local cloud under one stack name, in dependency
//! order, and deleted again on request. Function event sources that Lambda would wire up
//! itself (SNS subscriptions and EventBridge rules that invoke a function) end in a
//! delivery queue per function, which the local Lambda drains with Lambda's asynchronous
//! invocation semantics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

mod emulated;
pub mod outputs;
mod teardown;
mod visibility;
mod wiring;

pub use teardown::delete_by_name;
pub use visibility::VisibilityBelowTimeout;

use super::binary::{resolve as resolve_binaries, FunctionBinaries};
use super::clients::{Clients, Endpoints};
use super::functions::{bounded, with_globals, FailureDestination, FunctionDecl};
use super::resolver::{Attributes, Resolver};
use super::resources::{
    create_bus, create_queue, create_table, create_topic, inline_subscriptions, QueueInfo,
    Subscriber,
};
use super::template::{folder_of, Resource, Template};
use crate::cloud::REGION;
use crate::dead_letters::{Invoker, Routes};
use teardown::Created;

/// Resource types the local pipeline creates.
const CREATED: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::Serverless::Function",
    "AWS::SNS::Subscription",
    "AWS::Events::Rule",
];

/// Resource types with no local effect: LocalStack does not enforce access policies. Any
/// other type that is not created (alarms, keys, log groups, ...) is skipped as not emulated.
const NOT_ENFORCED: &[&str] = &[
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Lambda::Permission",
    "AWS::Events::EventBusPolicy",
];

/// The properties that name a resource that is not created, for what `Ref` gives.
const NAME_PROPERTIES: &[&str] = &["LogGroupName", "AliasName", "AlarmName", "Name"];

/// How to create a stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// The stack's name (`AWS::StackName`); every physical name derives from it.
    pub name: String,
    /// The template.
    pub template: PathBuf,
    /// Parameter values, over the template's defaults.
    pub parameters: HashMap<String, String>,
    /// A visibility timeout for every declared queue instead of the template's: the local
    /// time scale, so that failed records come back in seconds rather than minutes.
    pub visibility_timeout: Option<u32>,
    /// Where the functions' binaries are.
    pub binaries: PathBuf,
    /// The local cloud.
    pub endpoints: Endpoints,
}

/// The created stack.
#[derive(Debug)]
pub struct Stack {
    /// Its name.
    pub name: String,
    /// Table names by logical id.
    pub tables: BTreeMap<String, String>,
    /// Declared queues by logical id.
    pub queues: BTreeMap<String, QueueInfo>,
    /// Topic ARNs by logical id.
    pub topics: BTreeMap<String, String>,
    /// Bus names by logical id.
    pub buses: BTreeMap<String, String>,
    /// The tables' streams: table names by stream ARN.
    pub streams: BTreeMap<String, String>,
    /// Functions by logical id.
    pub functions: BTreeMap<String, FunctionDecl>,
    /// Resources not created, with why.
    pub skipped: Vec<(String, String)>,
    /// What runs here but would not deploy as it is (a `--visibility-timeout` below a
    /// consuming function's timeout), to be shown.
    pub warnings: Vec<String>,
    /// The template's outputs, resolved once every resource exists.
    pub outputs: Vec<outputs::StackOutput>,
    /// Each declared queue's visibility timeout, by ARN.
    visibility: BTreeMap<String, visibility::Visibility>,
    resolver: Resolver,
    created: Vec<Created>,
    dead_letter_arns: BTreeSet<String>,
    redrives: BTreeMap<String, String>,
    /// Subscriptions by the dead-letter queue (ARN) their redrive policy names.
    subscribers: BTreeMap<String, Vec<Subscriber>>,
    /// The binary each function runs (in `StackOptions::binaries`), by logical id.
    binaries: FunctionBinaries,
}

impl Stack {
    /// Creates every resource of the template; `progress` hears each logical id as it
    /// starts. On failure, what was created is deleted again.
    pub async fn create(
        clients: &Clients,
        options: &StackOptions,
        progress: impl Fn(&str),
    ) -> Result<Self> {
        let template = Template::load(&options.template)?;
        // Decided before anything is created: a function that cannot run leaves nothing.
        let binaries = resolve_binaries(&template, folder_of(&options.template)).await?;
        let mut parameters: HashMap<String, String> = template
            .parameters
            .iter()
            .filter_map(|(name, default)| Some((name.clone(), default.clone()?)))
            .collect();
        parameters.extend(options.parameters.clone());
        let mut stack = Self {
            name: options.name.clone(),
            tables: BTreeMap::new(),
            queues: BTreeMap::new(),
            topics: BTreeMap::new(),
            buses: BTreeMap::new(),
            streams: BTreeMap::new(),
            functions: BTreeMap::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
            outputs: Vec::new(),
            visibility: BTreeMap::new(),
            resolver: Resolver::new(&options.name, REGION, parameters)
                .with_conditions(template.conditions.clone()),
            created: Vec::new(),
            dead_letter_arns: BTreeSet::new(),
            redrives: BTreeMap::new(),
            subscribers: BTreeMap::new(),
            binaries,
        };
        let mut active = template.clone();
        active.resources.clear();
        for resource in &template.resources {
            let exists = match &resource.condition {
                Some(condition) => stack
                    .resolver
                    .condition(condition)
                    .with_context(|| format!("deciding whether {} exists", resource.logical_id))?,
                None => true,
            };
            let skipped = if !exists {
                format!(
                    "{} (condition {} is false)",
                    resource.kind,
                    resource.condition.as_deref().unwrap_or_default()
                )
            } else if NOT_ENFORCED.contains(&resource.kind.as_str()) {
                format!("{} (not enforced locally)", resource.kind)
            } else if !CREATED.contains(&resource.kind.as_str()) {
                stack.stand_in(resource);
                format!("{} (not emulated locally)", resource.kind)
            } else {
                active.resources.push(resource.clone());
                continue;
            };
            stack.skipped.push((resource.logical_id.clone(), skipped));
        }
        for resource in active.in_dependency_order(CREATED)? {
            progress(&resource.logical_id);
            let created = stack
                .create_resource(clients, options, &template, resource)
                .await
                .with_context(|| format!("creating {}", resource.logical_id));
            if let Err(error) = created {
                stack.delete(clients).await;
                return Err(error);
            }
        }
        stack.outputs = outputs::resolve(&template.outputs, &stack.resolver);
        Ok(stack)
    }

    async fn create_resource(
        &mut self,
        clients: &Clients,
        options: &StackOptions,
        template: &Template,
        resource: &Resource,
    ) -> Result<()> {
        let logical = resource.logical_id.as_str();
        if resource.kind == "AWS::Serverless::Function" {
            let mut merged = with_globals(&template.function_globals, &resource.properties);
            // Permissions are not enforced locally and name IAM resources that are not
            // created (`Role: !GetAtt FunctionRole.Arn`): kept as written, unresolved, and
            // named as skipped like any property not emulated.
            let permissions = emulated::take_permissions(&mut merged);
            let mut properties = self.resolver.resolve(&merged)?;
            if let Some(object) = properties.as_object_mut() {
                object.extend(permissions);
            }
            return self
                .declare_function(clients, options, resource, &properties)
                .await;
        }
        let properties = self.resolver.resolve(&resource.properties)?;
        for ignored in emulated::resource_properties_ignored(
            &resource.kind,
            &properties,
            crate::resources::QUEUE_ATTRIBUTES,
        ) {
            self.skipped.push((
                format!("{logical}.{ignored}"),
                "ignored locally".to_string(),
            ));
        }
        let named = |field: &str, limit: usize| {
            properties[field].as_str().map_or_else(
                || bounded(&format!("{}-{logical}", self.name), limit),
                str::to_string,
            )
        };
        let attributes = match resource.kind.as_str() {
            "AWS::DynamoDB::Table" => {
                let name = named("TableName", 255);
                let stream = create_table(clients, &name, &properties).await?;
                self.created.push(Created::Table(name.clone()));
                self.tables.insert(logical.into(), name.clone());
                let mut recorded = attributes(name.clone(), [("Arn", table_arn(&name))]);
                if let Some(arn) = stream {
                    recorded.attributes.insert("StreamArn".into(), arn.clone());
                    self.streams.insert(arn, name);
                }
                recorded
            }
            "AWS::SQS::Queue" => {
                let name = named("QueueName", 80);
                let queue =
                    create_queue(clients, &name, &properties, options.visibility_timeout).await?;
                self.visibility.insert(
                    queue.arn.clone(),
                    visibility::Visibility::of(&properties, options.visibility_timeout),
                );
                let redrive = &properties["RedrivePolicy"];
                let redrive: Value = match redrive {
                    Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                    other => other.clone(),
                };
                if let Some(dlq) = redrive["deadLetterTargetArn"].as_str() {
                    self.dead_letter_arns.insert(dlq.to_string());
                    self.redrives.insert(queue.arn.clone(), dlq.to_string());
                }
                self.created.push(Created::Queue(queue.url.clone()));
                self.queues.insert(logical.into(), queue.clone());
                attributes(
                    queue.url.clone(),
                    [
                        ("Arn", queue.arn),
                        ("QueueName", name),
                        ("QueueUrl", queue.url),
                    ],
                )
            }
            "AWS::SNS::Topic" => {
                let name = named("TopicName", 256);
                let arn = create_topic(clients, &name, &properties).await?;
                self.created.push(Created::Topic(arn.clone()));
                self.topics.insert(logical.into(), arn.clone());
                // Its `Subscription` list: each one as an `AWS::SNS::Subscription` of it.
                for subscription in inline_subscriptions(&arn, &properties)? {
                    self.subscribe_declared(clients, &subscription).await?;
                }
                attributes(arn.clone(), [("TopicArn", arn), ("TopicName", name)])
            }
            "AWS::SNS::Subscription" => {
                let arn = self.subscribe_declared(clients, &properties).await?;
                attributes(arn, [])
            }
            "AWS::Events::EventBus" => {
                let name = named("Name", 256);
                let arn = create_bus(clients, &name).await?;
                self.created.push(Created::Bus(name.clone()));
                self.buses.insert(logical.into(), name.clone());
                attributes(name.clone(), [("Arn", arn), ("Name", name)])
            }
            "AWS::Events::Rule" => {
                let name = named("Name", 64);
                let arn = self.rule_declared(clients, &name, &properties).await?;
                attributes(name, [("Arn", arn)])
            }
            other => bail!("{other} is not created locally"),
        };
        self.resolver.record(logical, attributes);
        Ok(())
    }

    /// Records what `Ref` and `GetAtt ... Arn` of a resource that is not emulated give, so that
    /// created resources may refer to it (a function to its log group): its name property
    /// when that resolves, else `<stack>-<logical id>`.
    fn stand_in(&mut self, resource: &Resource) {
        let logical = resource.logical_id.as_str();
        let name = NAME_PROPERTIES
            .iter()
            .find_map(|field| {
                let declared = resource.properties.get(*field)?;
                self.resolver.resolve_string(declared).ok()
            })
            .unwrap_or_else(|| format!("{}-{logical}", self.name));
        let service = resource
            .kind
            .split("::")
            .nth(1)
            .unwrap_or("local")
            .to_lowercase();
        let arn = format!(
            "arn:aws:{service}:{REGION}:{}:{logical}/{name}",
            super::template::ACCOUNT_ID
        );
        self.resolver
            .record(logical, attributes(name, [("Arn", arn)]));
    }

    fn function_by_arn(&self, arn: &str) -> Option<String> {
        self.functions
            .iter()
            .find(|(_, function)| function.spec.arn == arn || function.spec.name == arn)
            .map(|(logical, _)| logical.clone())
    }

    /// A queue of the stack (declared or a delivery queue) by its ARN.
    pub fn queue_by_arn(&self, arn: &str) -> Result<QueueInfo> {
        self.queues
            .values()
            .chain(
                self.functions
                    .values()
                    .filter_map(|f| f.async_queue.as_ref()),
            )
            .find(|queue| queue.arn == arn)
            .cloned()
            .with_context(|| format!("no queue of the stack has the ARN {arn}"))
    }

    /// The logical id of the declared queue named by `logical_or_name`.
    pub fn queue(&self, logical: &str) -> Result<&QueueInfo> {
        self.queues
            .get(logical)
            .with_context(|| format!("the template declares no queue {logical}"))
    }

    /// The name of the table declared as `logical`.
    pub fn table(&self, logical: &str) -> Result<&str> {
        self.tables
            .get(logical)
            .map(String::as_str)
            .with_context(|| format!("the template declares no table {logical}"))
    }

    /// What `!Ref` / `!GetAtt` of `logical` gave, for outputs such as a topic ARN.
    pub fn attributes(&self, logical: &str) -> Option<&Attributes> {
        self.resolver.attributes(logical)
    }

    /// The declared queues that receive what failed elsewhere (redrive targets, function
    /// DLQs and OnFailure destinations, rule DLQs), by logical id.
    pub fn dead_letter_queues(&self) -> Vec<(String, QueueInfo)> {
        self.queues
            .iter()
            .filter(|(_, queue)| self.dead_letter_arns.contains(&queue.arn))
            .map(|(logical, queue)| (logical.clone(), queue.clone()))
            .collect()
    }

    /// The declared queues (logical ids) whose redrive policy sends what they fail to
    /// the queue `dead_letter_arn`: where a redrive returns its messages.
    pub fn redrive_sources(&self, dead_letter_arn: &str) -> Vec<String> {
        self.queues
            .iter()
            .filter(|(_, queue)| {
                self.redrives.get(&queue.arn).map(String::as_str) == Some(dead_letter_arn)
            })
            .map(|(logical, _)| logical.clone())
            .collect()
    }

    /// The functions invoked asynchronously, by ARN: each one's logical id and the delivery
    /// queue its asynchronous invocations go through.
    pub fn deliveries(&self) -> BTreeMap<String, (String, QueueInfo)> {
        self.functions
            .iter()
            .filter_map(|(function, declared)| {
                let delivery = declared.async_queue.clone()?;
                Some((declared.spec.arn.clone(), (function.clone(), delivery)))
            })
            .collect()
    }

    /// Every dead-letter queue with where its messages go back to ([`Routes`]), for sending
    /// them back from the process that runs the stack (the `dlq` command reads the same from
    /// a running application's description).
    pub fn dead_letter_routes(&self) -> Vec<(String, QueueInfo, Routes)> {
        let deliveries = self.deliveries();
        self.dead_letter_queues()
            .into_iter()
            .map(|(logical, queue)| {
                let owner = self.functions.values().find_map(|declared| {
                    let dlq = declared.async_invoke.dead_letter_queue.as_ref()?;
                    (dlq.arn == queue.arn).then(|| declared.spec.arn.clone())
                });
                let routes = Routes {
                    sources: self
                        .redrive_sources(&queue.arn)
                        .into_iter()
                        .filter_map(|source| {
                            let info = self.queues.get(&source)?.clone();
                            Some((source, info))
                        })
                        .collect(),
                    owner,
                    queues: self
                        .queues
                        .iter()
                        .map(|(logical, queue)| (logical.clone(), queue.clone()))
                        .collect(),
                    subscribers: self.subscribers(&queue.arn),
                    invoker: Invoker::Local(deliveries.clone()),
                };
                (logical, queue, routes)
            })
            .collect()
    }

    /// The subscriptions whose redrive policy sends what SNS could not deliver to the queue
    /// `dead_letter_arn`.
    pub fn subscribers(&self, dead_letter_arn: &str) -> Vec<Subscriber> {
        self.subscribers
            .get(dead_letter_arn)
            .cloned()
            .unwrap_or_default()
    }

    /// The dead-letter queues (logical ids) of what `function` fails: its source queues'
    /// redrive targets, its DLQ and its OnFailure destinations.
    pub fn function_dead_letter_queues(&self, function: &str) -> Vec<String> {
        let Some(declared) = self.functions.get(function) else {
            return Vec::new();
        };
        let arns: Vec<&String> =
            declared
                .queue_sources
                .iter()
                .filter_map(|source| self.redrives.get(&source.queue.arn))
                .chain(
                    declared
                        .async_invoke
                        .dead_letter_queue
                        .iter()
                        .map(|q| &q.arn),
                )
                .chain(declared.async_invoke.on_failure.iter().map(|q| &q.arn))
                .chain(declared.stream_sources.iter().filter_map(
                    |source| match &source.on_failure {
                        Some(FailureDestination::Queue(queue)) => Some(&queue.arn),
                        _ => None,
                    },
                ))
                .collect();
        let mut logical: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, queue)| arns.contains(&&queue.arn))
            .map(|(name, _)| name.clone())
            .collect();
        logical.dedup();
        logical
    }

    /// Every queue the pipeline's messages pass through: declared ones and the functions'
    /// delivery queues.
    pub fn all_queues(&self) -> Vec<QueueInfo> {
        self.queues
            .values()
            .cloned()
            .chain(
                self.functions
                    .values()
                    .filter_map(|f| f.async_queue.clone()),
            )
            .collect()
    }
}

fn attributes<const N: usize>(reference: String, values: [(&str, String); N]) -> Attributes {
    Attributes {
        reference,
        attributes: values
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
    }
}

fn table_arn(name: &str) -> String {
    format!(
        "arn:aws:dynamodb:{REGION}:{}:table/{name}",
        super::template::ACCOUNT_ID
    )
}

fn resolved_text(properties: &Value, field: &str) -> Result<String> {
    properties[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{field} is missing or not a string"))
}
