//! Which properties of a resource or function event the local run honours, so that every
//! other one is named at start-up (once, in `Stack::skipped`) instead of being ignored
//! silently.

use serde_json::Value;

/// Function properties the local run uses (or that change nothing locally: descriptions,
/// tags, where the code is).
const FUNCTION: &[&str] = &[
    "FunctionName",
    "Handler",
    "Runtime",
    "CodeUri",
    "Timeout",
    "MemorySize",
    "Environment",
    "LoggingConfig",
    "Events",
    "EventInvokeConfig",
    "DeadLetterQueue",
    "Description",
    "Tags",
    "PropagateTags",
];

/// Function properties about permissions: nothing checks them locally.
const PERMISSIONS: &[&str] = &[
    "Policies",
    "Role",
    "PermissionsBoundary",
    "RolePath",
    "AssumeRolePolicyDocument",
];

/// The properties of each function event type that the local event sources honour.
fn event_properties(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "SQS" => &[
            "Queue",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "FunctionResponseTypes",
            "ScalingConfig",
            "Enabled",
            // Matched locally (`event_sources::filter`).
            "FilterCriteria",
        ],
        "SNS" => &[
            "Topic",
            "FilterPolicy",
            "FilterPolicyScope",
            "RedrivePolicy",
        ],
        "EventBridgeRule" | "CloudWatchEvent" => &[
            "Pattern",
            "EventBusName",
            "RetryPolicy",
            "DeadLetterConfig",
            "RuleName",
            "State",
        ],
        // Fired locally, in UTC (`event_sources::schedule`).
        "Schedule" => &[
            "Schedule",
            "Input",
            "Enabled",
            "State",
            "Name",
            "Description",
        ],
        "ScheduleV2" => &[
            "ScheduleExpression",
            "Input",
            "State",
            "Name",
            "Description",
        ],
        // Streams name theirs themselves (`STREAM_PROPERTIES_NOT_EMULATED`).
        _ => return None,
    })
}

/// Queue and topic properties the local run uses besides the queue attributes.
const QUEUE: &[&str] = &["QueueName", "Tags"];
const TOPIC: &[&str] = &[
    "TopicName",
    // Subscribed as `AWS::SNS::Subscription`s are.
    "Subscription",
    "FifoTopic",
    "ContentBasedDeduplication",
    "Tags",
    "DisplayName",
];

/// Removes the permission properties (`Role`, `Policies`, ...) from a function's
/// `properties` and returns them as written.
pub fn take_permissions(properties: &mut Value) -> Vec<(String, Value)> {
    let Some(object) = properties.as_object_mut() else {
        return Vec::new();
    };
    PERMISSIONS
        .iter()
        .filter_map(|name| Some((name.to_string(), object.remove(*name)?)))
        .collect()
}

/// What of a function's `properties` is not emulated: (property, why).
pub fn function_properties(properties: &Value) -> Vec<(String, String)> {
    let mut named = Vec::new();
    for (name, value) in properties.as_object().into_iter().flatten() {
        let why = if FUNCTION.contains(&name.as_str()) {
            match name.as_str() {
                "Runtime" if !value.as_str().is_some_and(|r| r.starts_with("provided")) => {
                    "only provided.* runtimes (a native binary) run locally"
                }
                _ => continue,
            }
        } else if PERMISSIONS.contains(&name.as_str()) {
            "not enforced locally (no IAM)"
        } else if name == "Architectures" {
            "ignored: the binary is built for and runs on this machine"
        } else {
            "ignored locally"
        };
        named.push((name.clone(), why.to_string()));
    }
    named
}

/// What of a function event's `properties` (of type `kind`) is not emulated.
pub fn event_properties_ignored(kind: &str, properties: &Value) -> Vec<String> {
    let Some(honoured) = event_properties(kind) else {
        return Vec::new();
    };
    properties
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| name)
        .filter(|name| !honoured.contains(&name.as_str()))
        .cloned()
        .collect()
}

/// What of a queue's or topic's `properties` is not emulated (`attributes`: the queue
/// attributes it sets from properties of the same name).
pub fn resource_properties_ignored(
    kind: &str,
    properties: &Value,
    attributes: &[&str],
) -> Vec<String> {
    let honoured: &[&str] = match kind {
        "AWS::SQS::Queue" => QUEUE,
        "AWS::SNS::Topic" => TOPIC,
        _ => return Vec::new(),
    };
    properties
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| name)
        .filter(|name| !honoured.contains(&name.as_str()) && !attributes.contains(&name.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_is_not_honoured_is_named_and_what_is_stays_quiet() {
        let function = json!({
            "Handler": "bootstrap", "Runtime": "provided.al2023", "Timeout": 3,
            "Architectures": ["arm64"], "Policies": [], "Layers": ["arn"],
        });
        let named: Vec<String> = function_properties(&function)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(named, ["Architectures", "Layers", "Policies"]);
        let python = function_properties(&json!({"Runtime": "python3.12"}));
        assert_eq!(python.len(), 1);

        let sqs =
            json!({"Queue": "arn", "BatchSize": 5, "FilterCriteria": {}, "MetricsConfig": {}});
        assert_eq!(event_properties_ignored("SQS", &sqs), ["MetricsConfig"]);
        let rule = json!({"Pattern": {}, "InputTransformer": {}});
        assert_eq!(
            event_properties_ignored("EventBridgeRule", &rule),
            ["InputTransformer"]
        );
        let queue = json!({"VisibilityTimeout": 5, "KmsMasterKeyId": "k"});
        assert_eq!(
            resource_properties_ignored("AWS::SQS::Queue", &queue, &["VisibilityTimeout"]),
            ["KmsMasterKeyId"]
        );
    }
}
