//! `dlq list | show | redrive`: the running application's dead-letter queues.

mod scope;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use eventkit_local::dead_letters::{
    self, Destination, IdempotencyLookup, KeyState, Moved, RedriveMethod, Redriven,
};
use eventkit_local::running::names;

use super::Located;
use scope::{DeadLetterQueue, Scope};

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
    /// Move messages back to where they failed, except those whose idempotency record is
    /// COMPLETED (their effect happened: sent back, they would only replay it, or run it
    /// again once the record expired).
    Redrive {
        /// One dead-letter queue (logical id) [default: all].
        queue: Option<String>,
        /// Only these messages (repeatable) [default: all].
        #[arg(long = "message-id", value_name = "ID")]
        message_ids: Vec<String>,
        /// Send back the messages whose idempotency record is COMPLETED too.
        #[arg(long)]
        include_completed: bool,
        /// What redrive does by default (leave the completed messages), kept for the scripts
        /// that pass it; unlike the default, it fails without an idempotency table.
        #[arg(long, hide = true, conflicts_with = "include_completed")]
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

/// Why a message was left: it was not among the ones named.
const NOT_CHOSEN: &str = "not chosen";

/// What `dlq redrive` does with the messages whose idempotency record is COMPLETED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Completed {
    /// Leave them (the default); without an idempotency table, say so and send back all.
    Skip,
    /// Leave them; without an idempotency table, fail (`--skip-completed`, as it always did).
    SkipOrFail,
    /// Send them back too (`--include-completed`).
    Include,
}

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
            include_completed,
            skip_completed,
            idempotency,
            target,
        } => {
            let scope = Scope::of(&target, queue.as_deref()).await?;
            let chosen: BTreeSet<String> = message_ids.into_iter().collect();
            let completed = match (include_completed, skip_completed) {
                (true, _) => Completed::Include,
                (false, true) => Completed::SkipOrFail,
                (false, false) => Completed::Skip,
            };
            redrive(&scope, &chosen, completed, &idempotency).await
        }
    }
}

fn describe_sources(dlq: &DeadLetterQueue) -> String {
    if let Some((function, _)) = &dlq.owner {
        return format!("what {function}'s asynchronous invocations failed");
    }
    let mut holds = Vec::new();
    if !dlq.sources.is_empty() {
        let sources: Vec<&str> = dlq.sources.iter().map(|(l, _)| l.as_str()).collect();
        holds.push(format!("redrive target of {}", sources.join(", ")));
    }
    if !dlq.subscribers.is_empty() {
        let mut topics: Vec<&str> = dlq
            .subscribers
            .iter()
            .map(|s| s.topic.rsplit(':').next().unwrap_or(&s.topic))
            .collect();
        topics.sort_unstable();
        topics.dedup();
        holds.push(format!(
            "what subscriptions of {} could not deliver",
            topics.join(", ")
        ));
    }
    if holds.is_empty() {
        return "what a function, rule or subscription failed".into();
    }
    holds.join("; ")
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
            println!(
                "    body: {}",
                indented(message.body().unwrap_or_default(), "          ")
            );
            println!("    reason: {}", scope.reason(message).await);
            // Said only of an application with an idempotency table: elsewhere it is noise.
            if let (Some(lookup), Some(state)) = (&lookup, states.get(id)) {
                println!(
                    "    idempotency: {state} (key {} in table {})",
                    lookup.key_path, lookup.table
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn redrive(
    scope: &Scope,
    chosen: &BTreeSet<String>,
    completed: Completed,
    args: &IdempotencyArgs,
) -> Result<ExitCode> {
    let lookup = match completed {
        Completed::Include => None,
        Completed::Skip | Completed::SkipOrFail => lookup(scope, args)?,
    };
    match (completed, &lookup) {
        (Completed::SkipOrFail, None) => {
            bail!("--skip-completed needs the idempotency table: pass --idempotency-table")
        }
        (Completed::Skip, None) => println!(
            "no idempotency table to tell which effects already happened (pass \
             --idempotency-table): every message goes back"
        ),
        _ => {}
    }
    let skip_completed = lookup.is_some();
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
                    Err("its idempotency record is COMPLETED, its effect happened \
                     (--include-completed sends it back)"
                        .into())
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

/// `text` with every line after the first indented by `indent`, so that a multi-line body
/// stays under its heading.
fn indented(text: &str, indent: &str) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

fn source_names(dlq: &DeadLetterQueue) -> String {
    dlq.sources
        .iter()
        .map(|(logical, _)| logical.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::indented;

    #[test]
    fn a_multi_line_body_stays_under_its_heading() {
        assert_eq!(
            indented("{\n  \"a\": 1\n}", "    "),
            "{\n      \"a\": 1\n    }"
        );
        assert_eq!(indented("one line", "    "), "one line");
    }
}
