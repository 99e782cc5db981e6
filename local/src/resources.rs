//! Creating the template's resources in the local cloud with the AWS SDK, one function per
//! resource type, from the resource's resolved `Properties`: tables in DynamoDB Local;
//! topics, subscriptions, queues, buses and rules in LocalStack.

use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ProvisionedThroughput, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::{DeadLetterConfig, RetryPolicy, Target};
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, Message, QueueAttributeName};
use serde_json::Value;

use super::clients::Clients;
use super::template::scalar_text;

/// A queue in LocalStack.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// Its URL, for the SQS API.
    pub url: String,
    /// Its ARN, for subscriptions, targets and redrive policies.
    pub arn: String,
}

/// Makes `messages`, received from `queue` and not dealt with, visible again at once, for
/// whoever receives next. Best effort: one that is not handed back becomes visible by itself
/// when the visibility timeout it was received with ends.
pub(crate) async fn hand_back(sqs: &aws_sdk_sqs::Client, queue: &QueueInfo, messages: &[Message]) {
    for chunk in messages.chunks(10) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(message.receipt_handle()?)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        let _ = sqs
            .change_message_visibility_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await;
    }
}

/// An SNS subscription whose redrive policy sends what it could not deliver to a
/// dead-letter queue: where such a dead letter goes back to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscriber {
    /// The subscription's ARN.
    pub subscription: String,
    /// The topic's ARN.
    pub topic: String,
    /// Where it delivers: a queue's ARN (locally, a function's delivery queue too) or a
    /// function's.
    pub endpoint: String,
}

/// `Properties` of an `AWS::SQS::Queue` that are queue attributes of the same name.
pub const QUEUE_ATTRIBUTES: &[&str] = &[
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Creates a table as `properties` (an `AWS::DynamoDB::Table`'s) declare it, with its
/// stream when it declares a `StreamSpecification`; returns the stream's ARN then.
pub async fn create_table(
    clients: &Clients,
    name: &str,
    properties: &Value,
) -> Result<Option<String>> {
    let mut request = clients.dynamodb.create_table().table_name(name);
    if let Some(view) = properties["StreamSpecification"]["StreamViewType"].as_str() {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()?,
        );
    }
    for definition in list(properties, "AttributeDefinitions") {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(definition, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(
                    text(definition, "AttributeType")?.as_str(),
                ))
                .build()?,
        );
    }
    request = request.set_key_schema(Some(key_schema(&properties["KeySchema"])?));
    let provisioned = properties["BillingMode"].as_str() == Some("PROVISIONED");
    if provisioned {
        request = request
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(throughput(&properties["ProvisionedThroughput"])?);
    } else {
        request = request.billing_mode(BillingMode::PayPerRequest);
    }
    for index in list(properties, "GlobalSecondaryIndexes") {
        let projection = &index["Projection"];
        let mut builder = GlobalSecondaryIndex::builder()
            .index_name(text(index, "IndexName")?)
            .set_key_schema(Some(key_schema(&index["KeySchema"])?))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(
                        projection["ProjectionType"].as_str().unwrap_or("ALL"),
                    ))
                    .set_non_key_attributes(
                        projection["NonKeyAttributes"]
                            .as_array()
                            .map(|names| names.iter().map(scalar_text).collect::<Vec<String>>()),
                    )
                    .build(),
            );
        if provisioned {
            builder = builder.provisioned_throughput(throughput(&index["ProvisionedThroughput"])?);
        }
        request = request.global_secondary_indexes(builder.build()?);
    }
    let created = match request.send().await {
        Ok(created) => created,
        // Left by an earlier run of the same stack (`run --keep`): taken over as it is.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            let existing = clients
                .dynamodb
                .describe_table()
                .table_name(name)
                .send()
                .await
                .with_context(|| format!("reading table {name}, which exists already"))?;
            return Ok(existing
                .table()
                .and_then(|table| table.latest_stream_arn())
                .map(str::to_string));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("creating table {name} in DynamoDB Local"))
        }
    };
    let stream_arn = created
        .table_description()
        .and_then(|table| table.latest_stream_arn())
        .map(str::to_string);
    let ttl = &properties["TimeToLiveSpecification"];
    if ttl["Enabled"].as_bool() == Some(true) || ttl["Enabled"].as_str() == Some("true") {
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(ttl, "AttributeName")?)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("enabling TTL on {name}"))?;
    }
    Ok(stream_arn)
}

fn key_schema(schema: &Value) -> Result<Vec<KeySchemaElement>> {
    schema
        .as_array()
        .context("KeySchema must be a list")?
        .iter()
        .map(|key| {
            Ok(KeySchemaElement::builder()
                .attribute_name(text(key, "AttributeName")?)
                .key_type(KeyType::from(text(key, "KeyType")?.as_str()))
                .build()?)
        })
        .collect()
}

fn throughput(value: &Value) -> Result<ProvisionedThroughput> {
    let units = |name: &str| scalar_text(&value[name]).parse::<i64>().unwrap_or(5);
    Ok(ProvisionedThroughput::builder()
        .read_capacity_units(units("ReadCapacityUnits"))
        .write_capacity_units(units("WriteCapacityUnits"))
        .build()?)
}

/// Creates a queue as `properties` (an `AWS::SQS::Queue`'s) declare it; a
/// `visibility_timeout` replaces the declared one (the local time scale).
pub async fn create_queue(
    clients: &Clients,
    name: &str,
    properties: &Value,
    visibility_timeout: Option<u32>,
) -> Result<QueueInfo> {
    let mut request = clients.sqs.create_queue().queue_name(name);
    for attribute in QUEUE_ATTRIBUTES {
        let value = match (&properties[*attribute], *attribute) {
            (Value::Null, _) => continue,
            (_, "VisibilityTimeout") if visibility_timeout.is_some() => continue,
            (Value::Object(_), _) => properties[*attribute].to_string(),
            (other, _) => scalar_text(other),
        };
        request = request.attributes(QueueAttributeName::from(*attribute), value);
    }
    if let Some(seconds) = visibility_timeout {
        request = request.attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string());
    }
    let created = request
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?;
    let url = created
        .queue_url()
        .context("CreateQueue returned no URL")?
        .to_string();
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of queue {name}"))?
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("queue {name} has no ARN"))?;
    Ok(QueueInfo {
        name: name.to_string(),
        url,
        arn,
    })
}

/// Creates a topic as `properties` (an `AWS::SNS::Topic`'s) declare it; returns its ARN.
/// (Encryption settings are left out: they mean nothing locally.)
pub async fn create_topic(clients: &Clients, name: &str, properties: &Value) -> Result<String> {
    let mut request = clients.sns.create_topic().name(name);
    for attribute in ["FifoTopic", "ContentBasedDeduplication"] {
        if !properties[attribute].is_null() {
            request = request.attributes(attribute, scalar_text(&properties[attribute]));
        }
    }
    let created = request
        .send()
        .await
        .with_context(|| format!("creating topic {name}"))?;
    Ok(created
        .topic_arn()
        .context("CreateTopic returned no ARN")?
        .to_string())
}

/// A subscription of a topic, with its delivery attributes.
#[derive(Clone, Debug)]
pub struct SubscriptionSpec {
    /// The topic.
    pub topic_arn: String,
    /// `sqs` here: functions are reached through their delivery queue.
    pub protocol: String,
    /// The queue ARN.
    pub endpoint: String,
    /// `RawMessageDelivery`, `FilterPolicy` (JSON), `FilterPolicyScope`, `RedrivePolicy`.
    pub attributes: Vec<(String, String)>,
}

impl SubscriptionSpec {
    /// The dead-letter queue (ARN) its redrive policy names, if any.
    pub fn dead_letter_arn(&self) -> Option<String> {
        let (_, policy) = self
            .attributes
            .iter()
            .find(|(name, _)| name == "RedrivePolicy")?;
        let policy: Value = serde_json::from_str(policy).ok()?;
        policy["deadLetterTargetArn"].as_str().map(str::to_string)
    }

    /// The subscription `properties` (an `AWS::SNS::Subscription`'s, or a SAM SNS event's)
    /// declare, delivered to `endpoint` with `protocol`.
    pub fn from_properties(
        topic_arn: String,
        protocol: &str,
        endpoint: String,
        properties: &Value,
    ) -> Self {
        let attributes = ["RawMessageDelivery", "FilterPolicyScope"]
            .iter()
            .filter(|name| !properties[**name].is_null())
            .map(|name| (name.to_string(), scalar_text(&properties[*name])))
            .chain(
                ["FilterPolicy", "RedrivePolicy"]
                    .iter()
                    .filter(|name| !properties[**name].is_null())
                    .map(|name| (name.to_string(), json_text(&properties[*name]))),
            )
            .collect();
        Self {
            topic_arn,
            protocol: protocol.to_string(),
            endpoint,
            attributes,
        }
    }
}

/// The subscriptions an `AWS::SNS::Topic` declares in its `Subscription` property (a list of
/// `{Endpoint, Protocol}`), as the properties of the `AWS::SNS::Subscription`s of `topic_arn`
/// they stand for.
pub fn inline_subscriptions(topic_arn: &str, properties: &Value) -> Result<Vec<Value>> {
    let declared = match &properties["Subscription"] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(declared) => declared,
        other => bail!("Subscription must be a list of {{Endpoint, Protocol}}, not {other}"),
    };
    declared
        .iter()
        .enumerate()
        .map(|(index, subscription)| {
            let field = |name: &str| {
                subscription[name]
                    .as_str()
                    .map(str::to_string)
                    .with_context(|| format!("Subscription[{index}] has no {name} (a string)"))
            };
            Ok(serde_json::json!({
                "TopicArn": topic_arn,
                "Protocol": field("Protocol")?,
                "Endpoint": field("Endpoint")?,
            }))
        })
        .collect()
}

/// Subscribes as `spec` says; returns the subscription ARN.
pub async fn subscribe(clients: &Clients, spec: &SubscriptionSpec) -> Result<String> {
    let mut request = clients
        .sns
        .subscribe()
        .topic_arn(&spec.topic_arn)
        .protocol(&spec.protocol)
        .endpoint(&spec.endpoint)
        .return_subscription_arn(true);
    for (name, value) in &spec.attributes {
        request = request.attributes(name, value);
    }
    let created = request
        .send()
        .await
        .with_context(|| format!("subscribing {} to {}", spec.endpoint, spec.topic_arn))?;
    Ok(created.subscription_arn().unwrap_or_default().to_string())
}

/// Creates a custom event bus; returns its ARN.
pub async fn create_bus(clients: &Clients, name: &str) -> Result<String> {
    let created = clients
        .eventbridge
        .create_event_bus()
        .name(name)
        .send()
        .await;
    match created {
        Ok(created) => Ok(created.event_bus_arn().unwrap_or_default().to_string()),
        // Left by an earlier run of the same stack (`run --keep`): taken over as it is.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception()) =>
        {
            let existing = clients
                .eventbridge
                .describe_event_bus()
                .name(name)
                .send()
                .await
                .with_context(|| format!("reading event bus {name}, which exists already"))?;
            Ok(existing.arn().unwrap_or_default().to_string())
        }
        Err(error) => Err(error).with_context(|| format!("creating event bus {name}")),
    }
}

/// A rule of a bus and its targets.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// The rule's name.
    pub name: String,
    /// The bus.
    pub bus: String,
    /// The event pattern (JSON).
    pub pattern: String,
    /// Its description.
    pub description: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// The targets: `Id`, `Arn`, `RetryPolicy`, `DeadLetterConfig`, `Input`, `InputPath`.
    pub targets: Vec<Value>,
}

/// Creates the rule and its targets; returns the rule's ARN.
pub async fn put_rule(clients: &Clients, spec: &RuleSpec) -> Result<String> {
    let created = clients
        .eventbridge
        .put_rule()
        .name(&spec.name)
        .event_bus_name(&spec.bus)
        .event_pattern(&spec.pattern)
        .set_description(spec.description.clone())
        .state(aws_sdk_eventbridge::types::RuleState::from(
            spec.state.as_str(),
        ))
        .send()
        .await
        .with_context(|| format!("creating rule {} on {}", spec.name, spec.bus))?;
    let targets = spec
        .targets
        .iter()
        .map(target)
        .collect::<Result<Vec<_>>>()?;
    let response = clients
        .eventbridge
        .put_targets()
        .rule(&spec.name)
        .event_bus_name(&spec.bus)
        .set_targets(Some(targets))
        .send()
        .await
        .with_context(|| format!("adding the targets of rule {}", spec.name))?;
    if response.failed_entry_count() > 0 {
        bail!(
            "rule {}: targets rejected: {:?}",
            spec.name,
            response.failed_entries()
        );
    }
    Ok(created.rule_arn().unwrap_or_default().to_string())
}

fn target(declared: &Value) -> Result<Target> {
    let mut builder = Target::builder()
        .id(text(declared, "Id")?)
        .arn(text(declared, "Arn")?)
        .set_input(declared["Input"].as_str().map(str::to_string))
        .set_input_path(declared["InputPath"].as_str().map(str::to_string));
    let retry = &declared["RetryPolicy"];
    if retry.is_object() {
        let number = |name: &str| scalar_text(&retry[name]).parse::<i32>().ok();
        builder = builder.retry_policy(
            RetryPolicy::builder()
                .set_maximum_retry_attempts(number("MaximumRetryAttempts"))
                .set_maximum_event_age_in_seconds(number("MaximumEventAgeInSeconds"))
                .build(),
        );
    }
    if let Some(arn) = declared["DeadLetterConfig"]["Arn"].as_str() {
        builder = builder.dead_letter_config(DeadLetterConfig::builder().arn(arn).build());
    }
    Ok(builder.build()?)
}

/// `value[field]` as text, or an error naming the field.
pub fn text(value: &Value, field: &str) -> Result<String> {
    match &value[field] {
        Value::Null => bail!("{field} is missing in {value}"),
        other => Ok(scalar_text(other)),
    }
}

/// A policy or pattern as the JSON text the APIs take (a string stays as written).
pub fn json_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn list<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value[field].as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn a_topics_inline_subscriptions_become_subscriptions_of_it() {
        let topic = json!({"TopicName": "t", "Subscription": [
            {"Protocol": "sqs", "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q"},
            {"Protocol": "lambda", "Endpoint": "arn:aws:lambda:us-east-1:000000000000:function:f"},
        ]});
        let subscriptions = inline_subscriptions("arn:topic", &topic).unwrap();
        assert_eq!(
            subscriptions,
            [
                json!({"TopicArn": "arn:topic", "Protocol": "sqs",
                       "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q"}),
                json!({"TopicArn": "arn:topic", "Protocol": "lambda",
                       "Endpoint": "arn:aws:lambda:us-east-1:000000000000:function:f"}),
            ]
        );
        assert!(inline_subscriptions("arn:topic", &json!({}))
            .unwrap()
            .is_empty());
        let error =
            inline_subscriptions("arn:topic", &json!({"Subscription": [{"Protocol": "sqs"}]}))
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Subscription[0] has no Endpoint (a string)"
        );
        assert!(inline_subscriptions("arn:topic", &json!({"Subscription": "q"})).is_err());
    }
}
