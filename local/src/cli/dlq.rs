//! `dlq list | show | redrive`: the running application's dead-letter queues.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use eventkit_local::clients::Clients;
use eventkit_local::dead_letters::{
    self, unqualified, Destination, IdempotencyLookup, Invoker, KeyState, Moved, RedriveMethod,
    Redriven, Routes,
};
use eventkit_local::resources::QueueInfo;
use eventkit_local::running::{names, RunningApp};

use super::{clients_of, Located};

/// What to do with the dead-letter queues.
#[derive(Subcommand, Clone)]
pub enum DlqAction {
    /// Every dead-letter queue with its message count and where its messages came from.
    List(DlqTarget),
    /// Each message with why it failed and whether its effect already happened.
    Show {
        /// One dead-letter queue (logical id) [default: all].
        queue: Option<String>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        target: DlqTarget,
    },
    /// Move messages back to the queue they failed in.
    Redrive {
        /// One dead-letter queue (logical id) [default: all].
        queue: Option<String>,
        /// Only these messages (repeatable) [default: all].
        #[arg(long = "message-id", value_name = "ID")]
        message_ids: Vec<String>,
        /// Leave the messages whose idempotency record is COMPLETED (their effect happened).
        #[arg(long)]
        skip_completed: bool,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        target: DlqTarget,
    },
}

/// Whose dead-letter queues: the running application's, or queues named by URL.
#[derive(Args, Clone)]
pub struct DlqTarget {
    #[command(flatten)]
    located: Located,
    /// A dead-letter queue by URL instead of the running application's (repeatable): any
    /// SQS endpoint, AWS included, reached with the normal AWS configuration and
    /// credential chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...). Its source queues
    /// are the ones SQS lists for it (ListDeadLetterSourceQueues).
    #[arg(long = "queue-url", value_name = "URL")]
    queue_urls: Vec<String>,
    /// With --queue-url: a CloudWatch Logs group to search for why a message failed
    /// (repeatable), besides the groups of the functions Lambda says read the source queues.
    #[arg(long = "log-group", value_name = "NAME", requires = "queue_urls")]
    log_groups: Vec<String>,
}

/// Where a message's idempotency record is: eventkit's layout by default.
#[derive(Args, Clone)]
pub struct IdempotencyArgs {
    /// The idempotency table (logical id or name) [default: the one table whose logical id
    /// contains "Idempotency"].
    #[arg(long)]
    pub idempotency_table: Option<String>,
    /// Where the key is in the message's innermost body (dotted path or JSON Pointer).
    #[arg(long, default_value = "eventId")]
    pub key_path: String,
    /// The name the function gave `IdempotencyConfig::new` (keys are `<name>#<hash>`)
    /// [default: any name].
    #[arg(long)]
    pub key_prefix: Option<String>,
}

/// A dead-letter queue with the queues it takes failures from.
struct DeadLetterQueue {
    logical: String,
    queue: QueueInfo,
    sources: Vec<(String, QueueInfo)>,
    /// A function's own DLQ: the function (logical id or ARN), and its ARN.
    owner: Option<(String, String)>,
}

/// The dead-letter queues a command works on, and how to reach them.
struct Scope {
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    /// What the command is about, for headings.
    name: String,
    queues: Vec<DeadLetterQueue>,
    /// The functions' logs (logical id, file), searched for why a message failed.
    logs: Vec<(String, PathBuf)>,
    /// On AWS: CloudWatch Logs and the groups to search for why a message failed.
    log_groups: Option<(aws_sdk_cloudwatchlogs::Client, Vec<String>)>,
    /// Tables by logical id (the running application's), for the idempotency table.
    tables: BTreeMap<String, String>,
    /// Declared queues (the running application's) by logical id, for rules' targets.
    declared: Vec<(String, QueueInfo)>,
    /// How functions are invoked again.
    invoker: Invoker,
}

impl Scope {
    async fn of(target: &DlqTarget, only: Option<&str>) -> Result<Self> {
        if target.queue_urls.is_empty() {
            let app = target.located.find()?;
            let clients: Clients = clients_of(&app).await;
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
                .map(|arn| (unqualified(arn).to_string(), arn.clone()));
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
            });
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
    fn routes(&self, dlq: &DeadLetterQueue) -> Routes {
        Routes {
            sources: dlq.sources.clone(),
            owner: dlq.owner.as_ref().map(|(_, arn)| arn.clone()),
            queues: self.declared.clone(),
            invoker: self.invoker.clone(),
        }
    }

    /// Why `message` failed: its attributes, else the functions' log files, else the
    /// CloudWatch Logs groups.
    async fn reason(&self, message: &aws_sdk_sqs::types::Message) -> String {
        let id = message.message_id().unwrap_or_default();
        if let Some(reason) = dead_letters::reason_in_attributes(message) {
            return reason;
        }
        if let Some(found) = dead_letters::reason_in_logs(&self.logs, id) {
            return format!("{} logged: {}", found.function, found.text);
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

/// Why a message was left: it was not among the ones named.
const NOT_CHOSEN: &str = "not chosen";

/// Runs one `dlq` action.
pub async fn run(action: DlqAction) -> Result<ExitCode> {
    match action {
        DlqAction::List(target) => list(&Scope::of(&target, None).await?).await,
        DlqAction::Show {
            queue,
            idempotency,
            target,
        } => {
            let scope = Scope::of(&target, queue.as_deref()).await?;
            show(&scope, &idempotency).await
        }
        DlqAction::Redrive {
            queue,
            message_ids,
            skip_completed,
            idempotency,
            target,
        } => {
            let scope = Scope::of(&target, queue.as_deref()).await?;
            let chosen: BTreeSet<String> = message_ids.into_iter().collect();
            redrive(&scope, &chosen, skip_completed, &idempotency).await
        }
    }
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

fn describe_sources(dlq: &DeadLetterQueue) -> String {
    if let Some((function, _)) = &dlq.owner {
        format!("what {function}'s asynchronous invocations failed")
    } else if dlq.sources.is_empty() {
        "what a function, rule or subscription failed".into()
    } else {
        let sources: Vec<&str> = dlq.sources.iter().map(|(l, _)| l.as_str()).collect();
        format!("redrive target of {}", sources.join(", "))
    }
}

async fn list(scope: &Scope) -> Result<ExitCode> {
    if scope.queues.is_empty() {
        println!("{}: no dead-letter queue", scope.name);
    }
    println!(
        "{:<28} {:>8} {:>10}  holds",
        "dead-letter queue", "messages", "in flight"
    );
    for dlq in &scope.queues {
        let depth = dead_letters::depth(&scope.sqs, &dlq.queue).await?;
        println!(
            "{:<28} {:>8} {:>10}  {}",
            dlq.logical,
            depth.visible,
            depth.in_flight,
            describe_sources(dlq)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The idempotency table to check, if one is declared or named.
fn lookup(scope: &Scope, args: &IdempotencyArgs) -> Result<Option<IdempotencyLookup>> {
    let table = match &args.idempotency_table {
        Some(named) => Some(
            scope
                .tables
                .get(named)
                .cloned()
                .unwrap_or_else(|| named.clone()),
        ),
        None => {
            let candidates: Vec<&String> = scope
                .tables
                .iter()
                .filter(|(logical, _)| logical.to_lowercase().contains("idempotency"))
                .map(|(_, name)| name)
                .collect();
            match candidates.as_slice() {
                [one] => Some((*one).clone()),
                [] => None,
                _ => bail!(
                    "several tables may be the idempotency table ({}): choose one with \
                     --idempotency-table",
                    names(&scope.tables)
                ),
            }
        }
    };
    Ok(table.map(|table| IdempotencyLookup {
        table,
        key_path: args.key_path.clone(),
        prefix: args.key_prefix.clone(),
    }))
}

async fn key_states(
    dynamodb: &aws_sdk_dynamodb::Client,
    lookup: Option<&IdempotencyLookup>,
    messages: &[aws_sdk_sqs::types::Message],
) -> Result<BTreeMap<String, KeyState>> {
    let mut states = BTreeMap::new();
    let Some(lookup) = lookup else {
        return Ok(states);
    };
    for message in messages {
        let state = dead_letters::key_state(dynamodb, lookup, message).await?;
        states.insert(message.message_id().unwrap_or_default().to_string(), state);
    }
    Ok(states)
}

async fn show(scope: &Scope, args: &IdempotencyArgs) -> Result<ExitCode> {
    let lookup = lookup(scope, args)?;
    for dlq in &scope.queues {
        let messages = dead_letters::read_all(&scope.sqs, &dlq.queue).await?;
        println!(
            "{} ({} message(s); {})",
            dlq.logical,
            messages.len(),
            describe_sources(dlq)
        );
        let states = key_states(&scope.dynamodb, lookup.as_ref(), &messages).await?;
        for message in &messages {
            let id = message.message_id().unwrap_or_default();
            println!("  message {id}");
            println!("    body: {}", message.body().unwrap_or_default());
            println!("    reason: {}", scope.reason(message).await);
            let idempotency = match (&lookup, states.get(id)) {
                (Some(lookup), Some(state)) => format!(
                    "{state} (key {} in table {})",
                    lookup.key_path, lookup.table
                ),
                _ => "not checked (no idempotency table; pass --idempotency-table)".into(),
            };
            println!("    idempotency: {idempotency}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn redrive(
    scope: &Scope,
    chosen: &BTreeSet<String>,
    skip_completed: bool,
    args: &IdempotencyArgs,
) -> Result<ExitCode> {
    let lookup = lookup(scope, args)?;
    if skip_completed && lookup.is_none() {
        bail!("--skip-completed needs the idempotency table: pass --idempotency-table");
    }
    let mut found: BTreeSet<String> = BTreeSet::new();
    for dlq in &scope.queues {
        let everything = chosen.is_empty() && !skip_completed;
        // SQS's message-move task returns what a queue's redrive moved; a function's or a
        // rule's dead letters have no source queue for it.
        if everything && !dlq.sources.is_empty() && dlq.owner.is_none() {
            let timeout = Duration::from_secs(120);
            if let Some(moved) = dead_letters::redrive_all(&scope.sqs, &dlq.queue, timeout).await? {
                println!(
                    "{}: {moved} message(s) back in {} ({})",
                    dlq.logical,
                    source_names(dlq),
                    RedriveMethod::MessageMoveTask
                );
                continue;
            }
        }
        let messages = dead_letters::read_all(&scope.sqs, &dlq.queue).await?;
        let states = if skip_completed {
            key_states(&scope.dynamodb, lookup.as_ref(), &messages).await?
        } else {
            BTreeMap::new()
        };
        let choose = |message: &aws_sdk_sqs::types::Message| {
            let id = message.message_id().unwrap_or_default();
            if !chosen.is_empty() && !chosen.contains(id) {
                return Err(NOT_CHOSEN.into());
            }
            match states.get(id) {
                Some(state) if state.is_completed() => {
                    Err("its idempotency record is COMPLETED (--skip-completed)".into())
                }
                _ => Ok(()),
            }
        };
        let outcome: Redriven =
            dead_letters::redrive_chosen(&scope.sqs, &dlq.queue, &scope.routes(dlq), choose)
                .await
                .with_context(|| format!("redriving {}", dlq.logical))?;
        let mut by_destination: BTreeMap<&Destination, Vec<&Moved>> = BTreeMap::new();
        for moved in &outcome.moved {
            by_destination.entry(&moved.to).or_default().push(moved);
        }
        if by_destination.is_empty() {
            println!("{}: nothing sent back", dlq.logical);
        }
        for (destination, moved) in by_destination {
            let method = match destination {
                Destination::Invoked(_) => String::new(),
                _ => format!(" ({})", RedriveMethod::ReceiveSendDelete),
            };
            println!(
                "{}: {} message(s) {destination}{method}",
                dlq.logical,
                moved.len()
            );
            for moved in moved {
                println!("  moved {} (now {})", moved.id, moved.copy);
                found.insert(moved.id.clone());
            }
        }
        for (id, why) in &outcome.left {
            if why != NOT_CHOSEN {
                println!("  left {id}: {why}");
            }
            found.insert(id.clone());
        }
    }
    let missing: Vec<&String> = chosen.iter().filter(|id| !found.contains(*id)).collect();
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(|id| id.as_str()).collect();
        eprintln!(
            "not found in the dead-letter queues: {}",
            missing.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn source_names(dlq: &DeadLetterQueue) -> String {
    dlq.sources
        .iter()
        .map(|(logical, _)| logical.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
