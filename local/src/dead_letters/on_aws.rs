//! What the Lambda and CloudWatch Logs APIs tell about a dead-letter queue named by URL
//! (on AWS, or any endpoint that serves them): which functions read its source queues and
//! where they log (so that a message's reason can be found there), and whose own DLQ it is
//! (so that its messages are invoked again); and what SNS tells: which subscriptions send
//! what they could not deliver to it (so that its notifications go back to the one that
//! failed).

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::reasons::{reason_of_line, LoggedReason};
use crate::resources::Subscriber;

/// The functions (ARNs) whose event source mapping reads the queue `queue_arn`.
pub async fn functions_reading(
    lambda: &aws_sdk_lambda::Client,
    queue_arn: &str,
) -> Result<Vec<String>> {
    let mut functions = Vec::new();
    let mut pages = lambda
        .list_event_source_mappings()
        .event_source_arn(queue_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing what reads {queue_arn}"))?;
        functions.extend(
            page.event_source_mappings()
                .iter()
                .filter_map(|mapping| mapping.function_arn())
                .map(str::to_string),
        );
    }
    functions.sort();
    functions.dedup();
    Ok(functions)
}

/// The log group `function` writes to: its `LoggingConfig.LogGroup`, else Lambda's default
/// `/aws/lambda/<name>`.
pub async fn log_group_of(lambda: &aws_sdk_lambda::Client, function: &str) -> Result<String> {
    let config = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .with_context(|| format!("reading the configuration of {function}"))?;
    Ok(log_group(
        config.logging_config().and_then(|c| c.log_group()),
        config.function_name().unwrap_or(function),
    ))
}

/// A function's log group: the configured one, else `/aws/lambda/<name>`.
fn log_group(configured: Option<&str>, name: &str) -> String {
    match configured {
        Some(group) if !group.is_empty() => group.to_string(),
        _ => format!("/aws/lambda/{}", name.rsplit(':').next().unwrap_or(name)),
    }
}

/// The functions' own dead-letter queues: each queue's ARN with the function (ARN) whose
/// `DeadLetterConfig` it is, where what its asynchronous invocations failed goes. One
/// listing of the functions serves every queue.
pub async fn functions_by_dead_letter_queue(
    lambda: &aws_sdk_lambda::Client,
) -> Result<BTreeMap<String, String>> {
    let mut owners = BTreeMap::new();
    let mut pages = lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.context("listing the functions")?;
        for function in page.functions() {
            let queue = function.dead_letter_config().and_then(|c| c.target_arn());
            if let (Some(queue), Some(arn)) = (queue, function.function_arn()) {
                owners.insert(queue.to_string(), arn.to_string());
            }
        }
    }
    Ok(owners)
}

/// The subscriptions whose redrive policy names one of `dead_letter_arns`, by that queue's
/// ARN. SNS lists subscriptions without their attributes: each one's redrive policy is read
/// on its own (one request per subscription of the account and region).
pub async fn subscribers_by_dead_letter_queue(
    sns: &aws_sdk_sns::Client,
    dead_letter_arns: &[String],
) -> Result<BTreeMap<String, Vec<Subscriber>>> {
    let mut found: BTreeMap<String, Vec<Subscriber>> = BTreeMap::new();
    let mut pages = sns.list_subscriptions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.context("listing the SNS subscriptions")?;
        for listed in page.subscriptions() {
            let (Some(arn), Some(topic), Some(endpoint)) = (
                listed.subscription_arn(),
                listed.topic_arn(),
                listed.endpoint(),
            ) else {
                continue;
            };
            // Not confirmed yet ("PendingConfirmation"): no attributes to read.
            if !arn.starts_with("arn:") {
                continue;
            }
            let attributes = sns
                .get_subscription_attributes()
                .subscription_arn(arn)
                .send()
                .await
                .with_context(|| format!("reading the subscription {arn}"))?;
            let policy = attributes
                .attributes()
                .and_then(|attributes| attributes.get("RedrivePolicy"))
                .and_then(|policy| serde_json::from_str::<serde_json::Value>(policy).ok());
            let Some(dead_letter) = policy
                .as_ref()
                .and_then(|policy| policy["deadLetterTargetArn"].as_str())
                .filter(|dead_letter| dead_letter_arns.iter().any(|arn| arn == dead_letter))
            else {
                continue;
            };
            found
                .entry(dead_letter.to_string())
                .or_default()
                .push(Subscriber {
                    subscription: arn.to_string(),
                    topic: topic.to_string(),
                    endpoint: endpoint.to_string(),
                });
        }
    }
    Ok(found)
}

/// The last event of the log groups `groups` since `since_ms` (epoch milliseconds) that
/// names `message_id` and is not the platform's own: what a function logged about the
/// record it failed. At most `pages` pages per group are read.
pub async fn reason_in_log_groups(
    logs: &aws_sdk_cloudwatchlogs::Client,
    groups: &[String],
    message_id: &str,
    since_ms: i64,
) -> Result<Option<LoggedReason>> {
    const PAGES: usize = 10;
    let mut last: Option<(i64, LoggedReason)> = None;
    for group in groups {
        let mut pages = logs
            .filter_log_events()
            .log_group_name(group)
            // A quoted term: the id as it is, hyphens included.
            .filter_pattern(format!("\"{message_id}\""))
            .start_time(since_ms)
            .into_paginator()
            .send();
        let mut read = 0;
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("searching {group} for {message_id}"))?;
            for event in page.events() {
                let (Some(text), Some(at)) = (event.message(), event.timestamp()) else {
                    continue;
                };
                // The service's filter is a hint; the line must name the id itself.
                if !text.contains(message_id) {
                    continue;
                }
                let Some(reason) = reason_of_line(text) else {
                    continue;
                };
                if last.as_ref().is_none_or(|(seen, _)| at >= *seen) {
                    let found = LoggedReason {
                        function: group.clone(),
                        text: reason,
                    };
                    last = Some((at, found));
                }
            }
            read += 1;
            if read >= PAGES {
                break;
            }
        }
    }
    Ok(last.map(|(_, reason)| reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_logs_to_its_configured_group_else_to_lambdas_default() {
        assert_eq!(log_group(Some("/shared/logs"), "orders"), "/shared/logs");
        assert_eq!(log_group(None, "orders"), "/aws/lambda/orders");
        assert_eq!(log_group(Some(""), "orders"), "/aws/lambda/orders");
        assert_eq!(
            log_group(None, "arn:aws:lambda:eu-west-1:1:function:orders"),
            "/aws/lambda/orders"
        );
    }
}
