//! Which dead-letter queues a `dlq` command works on, and what it knows about each: the
//! running application's (from its description), or queues named by URL (what SQS, Lambda
//! and SNS tell about them, on AWS or any endpoint that serves those APIs).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use eventkit_local::clients::Clients;
use eventkit_local::dead_letters::{self, function_name, Invoker, Routes};
use eventkit_local::resources::{QueueInfo, Subscriber};
use eventkit_local::running::{names, RunningApp};

use super::DlqTarget;

/// A dead-letter queue with where its messages come from.
pub(super) struct DeadLetterQueue {
    /// Its logical id, or its name when named by URL.
    pub logical: String,
    pub queue: QueueInfo,
    /// The queues whose redrive policy sends it what they fail.
    pub sources: Vec<(String, QueueInfo)>,
    /// A function's own DLQ: the function (logical id, or name on AWS), and its ARN.
    pub owner: Option<(String, String)>,
    /// The subscriptions whose redrive policy sends it what SNS could not deliver.
    pub subscribers: Vec<Subscriber>,
}

/// The dead-letter queues a command works on, and how to reach them.
pub(super) struct Scope {
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// What the command is about, for headings.
    pub name: String,
    pub queues: Vec<DeadLetterQueue>,
    /// The functions' logs (logical id, file), searched for why a message failed.
    logs: Vec<(String, PathBuf)>,
    /// On AWS: CloudWatch Logs and the groups to search for why a message failed.
    log_groups: Option<(aws_sdk_cloudwatchlogs::Client, Vec<String>)>,
    /// Tables by logical id (the running application's), for the idempotency table.
    pub tables: BTreeMap<String, String>,
    /// Declared queues (the running application's) by logical id, for rules' targets.
    declared: Vec<(String, QueueInfo)>,
    /// How functions are invoked again.
    invoker: Invoker,
}

impl Scope {
    /// The queues `target` names (`only` one of the application's, if given).
    pub async fn of(target: &DlqTarget, only: Option<&str>) -> Result<Self> {
        if target.queue_urls.is_empty() {
            let (app, clients): (_, Clients) = target.located.reach().await?;
            return Ok(Self {
                sqs: clients.sqs,
                dynamodb: clients.dynamodb,
                name: format!("stack {}", app.stack),
                queues: dead_letter_queues(&app, only)?,
                logs: app
                    .functions
                    .iter()
                    .map(|(logical, function)| (logical.clone(), function.log.clone()))
                    .collect(),
                log_groups: None,
                tables: app.tables.clone(),
                declared: app
                    .queues
                    .iter()
                    .map(|(logical, queue)| (logical.clone(), queue.clone()))
                    .collect(),
                invoker: Invoker::Local(app.deliveries.clone()),
            });
        }
        if only.is_some() {
            bail!("name the queues either by logical id or with --queue-url, not both");
        }
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let lambda = aws_sdk_lambda::Client::new(&config);
        let mut lambda_reachable = true;
        let mut groups: Vec<String> = target.log_groups.clone();
        let owners = match dead_letters::functions_by_dead_letter_queue(&lambda).await {
            Ok(owners) => owners,
            Err(error) => {
                unreachable(&mut lambda_reachable, "its functions", error);
                BTreeMap::new()
            }
        };
        let mut queues = Vec::new();
        for url in &target.queue_urls {
            let queue = queue_at(&sqs, url).await?;
            let listed = sqs
                .list_dead_letter_source_queues()
                .queue_url(url)
                .send()
                .await
                .with_context(|| format!("listing the source queues of {url}"))?;
            let mut sources = Vec::new();
            for source in listed.queue_urls() {
                let source = queue_at(&sqs, source).await?;
                sources.push((source.name.clone(), source));
            }
            let owner = owners
                .get(&queue.arn)
                .map(|arn| (function_name(arn).to_string(), arn.clone()));
            let mut readers: Vec<String> = owner.iter().map(|(_, arn)| arn.clone()).collect();
            for (_, source) in &sources {
                if !lambda_reachable {
                    break;
                }
                match dead_letters::functions_reading(&lambda, &source.arn).await {
                    Ok(found) => readers.extend(found),
                    Err(error) => {
                        unreachable(&mut lambda_reachable, "what reads the source queues", error)
                    }
                }
            }
            for function in readers {
                match dead_letters::log_group_of(&lambda, &function).await {
                    Ok(group) => groups.push(group),
                    Err(error) => eprintln!("note: no log group for {function}: {error:#}"),
                }
            }
            queues.push(DeadLetterQueue {
                logical: queue.name.clone(),
                queue,
                sources,
                owner,
                subscribers: Vec::new(),
            });
        }
        let arns: Vec<String> = queues.iter().map(|dlq| dlq.queue.arn.clone()).collect();
        let sns = aws_sdk_sns::Client::new(&config);
        match dead_letters::subscribers_by_dead_letter_queue(&sns, &arns).await {
            Ok(mut found) => {
                for dlq in &mut queues {
                    dlq.subscribers = found.remove(&dlq.queue.arn).unwrap_or_default();
                }
            }
            Err(error) => {
                eprintln!("note: SNS did not answer ({error:#}); subscriptions are not looked up")
            }
        }
        groups.sort();
        groups.dedup();
        Ok(Self {
            sqs,
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            name: "the queues named".into(),
            queues,
            logs: Vec::new(),
            log_groups: Some((aws_sdk_cloudwatchlogs::Client::new(&config), groups)),
            tables: BTreeMap::new(),
            declared: Vec::new(),
            invoker: Invoker::Lambda(lambda),
        })
    }

    /// Where the messages of `dlq` go back to.
    pub fn routes(&self, dlq: &DeadLetterQueue) -> Routes {
        Routes {
            sources: dlq.sources.clone(),
            owner: dlq.owner.as_ref().map(|(_, arn)| arn.clone()),
            queues: self.declared.clone(),
            subscribers: dlq.subscribers.clone(),
            invoker: self.invoker.clone(),
        }
    }

    /// Why `message` failed: its attributes, else the functions' log files, else the
    /// CloudWatch Logs groups.
    pub async fn reason(&self, message: &aws_sdk_sqs::types::Message) -> String {
        let id = message.message_id().unwrap_or_default();
        if let Some(reason) = dead_letters::reason_in_attributes(message) {
            return reason;
        }
        if let Some(found) = dead_letters::reason_in_logs(&self.logs, id) {
            return format!("{} {}", found.function, found.text);
        }
        let Some((logs, groups)) = &self.log_groups else {
            return "not found in its attributes nor in the logs".into();
        };
        if groups.is_empty() {
            return "not in its attributes; no log group to search (pass --log-group)".into();
        }
        // The message was first sent no later than its SentTimestamp; what logged its
        // failure came after.
        let since = message
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp))
            .and_then(|sent| sent.parse::<i64>().ok())
            .map_or(0, |sent| sent - 60_000);
        match dead_letters::reason_in_log_groups(logs, groups, id, since).await {
            Ok(Some(found)) => format!("{} logged: {}", found.function, found.text),
            Ok(None) => format!("not in its attributes nor in {}", groups.join(", ")),
            Err(error) => format!("not in its attributes; searching the logs failed: {error:#}"),
        }
    }
}

/// Says once that Lambda did not answer; functions are not looked up after that.
fn unreachable(reachable: &mut bool, what: &str, error: anyhow::Error) {
    if *reachable {
        eprintln!("note: Lambda did not answer ({what}: {error:#}); functions are not looked up");
    }
    *reachable = false;
}

/// The queue at `url`, its ARN asked of SQS.
async fn queue_at(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<QueueInfo> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the queue at {url}"))?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .with_context(|| format!("the queue at {url} has no ARN"))?
        .clone();
    Ok(QueueInfo {
        name: arn.rsplit(':').next().unwrap_or(url).to_string(),
        url: url.to_string(),
        arn,
    })
}

fn dead_letter_queues(app: &RunningApp, only: Option<&str>) -> Result<Vec<DeadLetterQueue>> {
    if let Some(logical) = only {
        if !app.dead_letter_queues.contains_key(logical) {
            bail!(
                "{logical} is not a dead-letter queue of the application (its dead-letter \
                 queues: {})",
                names(&app.dead_letter_queues)
            );
        }
    }
    app.dead_letter_queues
        .iter()
        .filter(|(logical, _)| only.is_none_or(|wanted| wanted == logical.as_str()))
        .map(|(logical, sources)| {
            Ok(DeadLetterQueue {
                logical: logical.clone(),
                queue: app.queue(logical)?.clone(),
                sources: sources
                    .iter()
                    .map(|source| Ok((source.clone(), app.queue(source)?.clone())))
                    .collect::<Result<_>>()?,
                subscribers: app.subscribers.get(logical).cloned().unwrap_or_default(),
                owner: app.reinvoked_by.get(logical).and_then(|(function, _)| {
                    let arn = app
                        .deliveries
                        .iter()
                        .find(|(_, (name, _))| name == function)
                        .map(|(arn, _)| arn.clone())?;
                    Some((function.clone(), arn))
                }),
            })
        })
        .collect()
}
