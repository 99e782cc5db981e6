//! An `AWS::Serverless::Function` as the local Lambda runs it: its process's environment
//! (what Lambda sets, plus the template's variables), its SQS event sources, and how its
//! asynchronous invocations (SNS, EventBridge) are retried and dead-lettered.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::clients::Endpoints;
use super::event_sources::filter::RecordFilter;
use super::host::FunctionSpec;
use super::resources::QueueInfo;
use super::template::{scalar_text, Resource, ACCOUNT_ID};
use crate::cloud::REGION;

/// An SQS event source mapping.
#[derive(Clone, Debug)]
pub struct QueueSource {
    /// The event's name in the template (`OrderPlaced`).
    pub event: String,
    /// The queue polled.
    pub queue: QueueInfo,
    /// At most this many records per invocation.
    pub batch_size: u32,
    /// How long to gather records before invoking with fewer than `batch_size`.
    pub batching_window: Duration,
    /// Whether the function's partial batch response is honoured.
    pub report_batch_item_failures: bool,
    /// Concurrent pollers (`ScalingConfig.MaximumConcurrency`).
    pub max_concurrency: u32,
    /// `FilterCriteria`: the messages that invoke the function (the others are deleted).
    pub filter: Arc<RecordFilter>,
}

/// Where a stream event source sends what it gives up on: an invocation record naming the
/// records (`DDBStreamBatchInfo`), never the records themselves.
#[derive(Clone, Debug)]
pub enum FailureDestination {
    /// An SQS queue of the stack.
    Queue(QueueInfo),
    /// An SNS topic (its ARN).
    Topic(String),
}

/// Where a stream event source starts reading a shard it finds when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record the stream still holds.
    TrimHorizon,
    /// Only records written after the source started.
    Latest,
}

/// A DynamoDB stream event source mapping.
#[derive(Clone, Debug)]
pub struct StreamSource {
    /// The event's name in the template (`OutboxStream`).
    pub event: String,
    /// The stream read.
    pub stream_arn: String,
    /// The table it belongs to.
    pub table: String,
    /// Where reading begins on the shards found at start (later shards: from their start).
    pub starting_position: StartingPosition,
    /// At most this many records per invocation (`BatchSize`, 100 by default).
    pub batch_size: usize,
    /// How long to gather records before invoking with fewer than `batch_size`.
    pub batching_window: Duration,
    /// Whether the function's partial batch response (sequence numbers) is honoured.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError`: a failed batch is split in two and each half retried.
    pub bisect_on_error: bool,
    /// Retries of a failed batch before it is given up (`None`: -1, until the record expires).
    pub max_retries: Option<u32>,
    /// `DestinationConfig.OnFailure`; without one, given-up records are only logged.
    pub on_failure: Option<FailureDestination>,
    /// `FilterCriteria`: the records that invoke the function (the others are passed over).
    pub filter: Arc<RecordFilter>,
}

/// How Lambda handles the function's asynchronous invocations.
#[derive(Clone, Debug)]
pub struct AsyncInvokeConfig {
    /// Retries after the first attempt (`EventInvokeConfig.MaximumRetryAttempts`, 2 by default).
    pub max_retries: u32,
    /// Events older than this are not invoked any more (`MaximumEventAgeInSeconds`).
    pub max_event_age: Duration,
    /// `DeadLetterQueue` (SQS): the event, with the error as message attributes.
    pub dead_letter_queue: Option<QueueInfo>,
    /// `EventInvokeConfig.DestinationConfig.OnFailure` (SQS): an invocation record.
    pub on_failure: Option<QueueInfo>,
}

/// A function with everything that invokes it.
#[derive(Clone, Debug)]
pub struct FunctionDecl {
    /// How its processes run.
    pub spec: FunctionSpec,
    /// Its SQS event sources.
    pub queue_sources: Vec<QueueSource>,
    /// Its DynamoDB stream event sources.
    pub stream_sources: Vec<StreamSource>,
    /// Where SNS and EventBridge put its asynchronous invocations (Lambda's internal queue,
    /// made visible); `None` when nothing invokes it asynchronously.
    pub async_queue: Option<QueueInfo>,
    /// The subscription ARN of each topic that invokes the function (the SNS event names it).
    pub sns_subscriptions: BTreeMap<String, String>,
    /// Retries and failure destinations of asynchronous invocations.
    pub async_invoke: AsyncInvokeConfig,
    /// Its `Schedule` and `ScheduleV2` events (they invoke it asynchronously).
    pub schedules: Vec<crate::event_sources::schedule::ScheduleSource>,
}

/// SAM's `Globals.Function` under a function's own properties: maps merge (so environment
/// variables add up), anything else the function declares wins.
pub fn with_globals(globals: &Value, properties: &Value) -> Value {
    match (globals, properties) {
        (Value::Object(base), Value::Object(own)) => {
            let mut merged: Map<String, Value> = base.clone();
            for (key, value) in own {
                let combined = match merged.get(key) {
                    Some(global) if global.is_object() && value.is_object() => {
                        with_globals(global, value)
                    }
                    _ => value.clone(),
                };
                merged.insert(key.clone(), combined);
            }
            Value::Object(merged)
        }
        (_, Value::Null) => globals.clone(),
        _ => properties.clone(),
    }
}

/// The function's name, ARN, limits and environment, from its resolved properties; it runs
/// `binary` (decided by [`crate::binary::resolve`]).
pub fn function_spec(
    resource: &Resource,
    properties: &Value,
    stack_name: &str,
    binary: &Path,
    endpoints: &Endpoints,
) -> FunctionSpec {
    let name = properties["FunctionName"].as_str().map_or_else(
        || bounded(&format!("{stack_name}-{}", resource.logical_id), 64),
        str::to_string,
    );
    let number = |field: &str, default: u64| {
        scalar_text(&properties[field])
            .parse::<u64>()
            .unwrap_or(default)
    };
    let timeout = Duration::from_secs(number("Timeout", 3));
    let memory_mb = u32::try_from(number("MemorySize", 128)).unwrap_or(128);
    let binary = binary.to_path_buf();
    let task_root = binary
        .parent()
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();

    let mut environment: BTreeMap<String, String> = BTreeMap::new();
    if let Some(variables) = properties["Environment"]["Variables"].as_object() {
        for (variable, value) in variables {
            environment.insert(variable.clone(), scalar_text(value));
        }
    }
    for (variable, value) in endpoints.process_env() {
        environment.insert(variable.to_string(), value);
    }
    let log_stream = format!(
        "{}/[$LATEST]{}",
        chrono::Utc::now().format("%Y/%m/%d"),
        uuid::Uuid::new_v4().simple()
    );
    // LoggingConfig.LogGroup, else Lambda's default group.
    let log_group = properties["LoggingConfig"]["LogGroup"]
        .as_str()
        .map_or_else(|| format!("/aws/lambda/{name}"), str::to_string);
    let lambda = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", log_group),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
        (
            "_HANDLER",
            properties["Handler"]
                .as_str()
                .unwrap_or("bootstrap")
                .to_string(),
        ),
        ("LAMBDA_TASK_ROOT", task_root.clone()),
        ("LAMBDA_RUNTIME_DIR", task_root),
        ("TZ", ":UTC".to_string()),
        ("LANG", "en_US.UTF-8".to_string()),
    ];
    for (variable, value) in lambda {
        environment.insert(variable.to_string(), value);
    }
    // Lambda sets the log format and level from LoggingConfig (the level only for JSON).
    let logging = &properties["LoggingConfig"];
    if let Some(format) = logging["LogFormat"].as_str() {
        environment.insert("AWS_LAMBDA_LOG_FORMAT".into(), format.to_string());
        if format.eq_ignore_ascii_case("json") {
            if let Some(level) = logging["ApplicationLogLevel"].as_str() {
                environment.insert("AWS_LAMBDA_LOG_LEVEL".into(), level.to_string());
            }
        }
    }
    FunctionSpec {
        logical_id: resource.logical_id.clone(),
        arn: function_arn(&name),
        name,
        binary,
        timeout,
        memory_mb,
        environment,
    }
}

/// A function's ARN in the local account.
pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
}

/// An SQS event's source mapping, its queue already looked up.
pub fn queue_source(event: &str, properties: &Value, queue: QueueInfo) -> Result<QueueSource> {
    let number = |value: &Value, default: u64| scalar_text(value).parse::<u64>().unwrap_or(default);
    Ok(QueueSource {
        event: event.to_string(),
        filter: Arc::new(RecordFilter::from_properties(event, properties)?),
        queue,
        batch_size: u32::try_from(number(&properties["BatchSize"], 10)).unwrap_or(10),
        batching_window: Duration::from_secs(number(
            &properties["MaximumBatchingWindowInSeconds"],
            0,
        )),
        report_batch_item_failures: properties["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
        max_concurrency: u32::try_from(number(
            &properties["ScalingConfig"]["MaximumConcurrency"],
            2,
        ))
        .unwrap_or(2),
    })
}

/// Properties of a `DynamoDB` event the local Lambda does not emulate (named at start-up).
pub const STREAM_PROPERTIES_NOT_EMULATED: &[&str] = &[
    "MaximumRecordAgeInSeconds",
    "ParallelizationFactor",
    "TumblingWindowInSeconds",
    "KafkaBootstrapServers",
];

/// A `DynamoDB` event's source mapping; `table` and `on_failure` already looked up.
pub fn stream_source(
    event: &str,
    properties: &Value,
    table: String,
    on_failure: Option<FailureDestination>,
) -> Result<StreamSource> {
    let number = |field: &str, default: i64| {
        let text = scalar_text(&properties[field]);
        if text.is_empty() {
            Ok(default)
        } else {
            text.parse::<i64>()
                .with_context(|| format!("{event}: {field} {text:?} is not a number"))
        }
    };
    let starting_position = match properties["StartingPosition"].as_str() {
        Some("TRIM_HORIZON") => StartingPosition::TrimHorizon,
        Some("LATEST") => StartingPosition::Latest,
        other => anyhow::bail!(
            "{event}: StartingPosition {other:?} is not TRIM_HORIZON or LATEST (the two a \
             DynamoDB stream has)"
        ),
    };
    let flag = |field: &str| {
        properties[field] == Value::Bool(true) || properties[field].as_str() == Some("true")
    };
    Ok(StreamSource {
        event: event.to_string(),
        filter: Arc::new(RecordFilter::from_properties(event, properties)?),
        stream_arn: scalar_text(&properties["Stream"]),
        table,
        starting_position,
        batch_size: usize::try_from(number("BatchSize", 100)?.clamp(1, 10_000)).unwrap_or(100),
        batching_window: Duration::from_secs(
            u64::try_from(number("MaximumBatchingWindowInSeconds", 0)?).unwrap_or(0),
        ),
        report_batch_item_failures: properties["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
        bisect_on_error: flag("BisectBatchOnFunctionError"),
        max_retries: u32::try_from(number("MaximumRetryAttempts", -1)?).ok(),
        on_failure,
    })
}

/// The retry settings of `EventInvokeConfig` (failure destinations are looked up by the
/// caller, which knows the queues).
pub fn async_invoke_limits(properties: &Value) -> (u32, Duration) {
    let config = &properties["EventInvokeConfig"];
    let retries = scalar_text(&config["MaximumRetryAttempts"])
        .parse::<u32>()
        .unwrap_or(2);
    let age = scalar_text(&config["MaximumEventAgeInSeconds"])
        .parse::<u64>()
        .unwrap_or(21_600);
    (retries, Duration::from_secs(age))
}

/// `text` cut to `limit` characters (AWS name limits).
pub fn bounded(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn globals_merge_under_the_functions_own_properties() {
        let globals = json!({"Timeout": 15, "Environment": {"Variables": {"A": "1"}}});
        let own = json!({"Timeout": 30, "Environment": {"Variables": {"B": "2"}}});
        assert_eq!(
            with_globals(&globals, &own),
            json!({"Timeout": 30, "Environment": {"Variables": {"A": "1", "B": "2"}}})
        );
    }
}
