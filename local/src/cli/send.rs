//! `send LOGICAL_ID (--message TEXT | --file FILE | --batch FILE)`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use eventkit_local::batch_entries;

use super::Located;

/// Options of `send`.
#[derive(Args, Clone)]
pub struct SendArgs {
    /// The queue, topic or bus, by its logical id in the template.
    pub target: String,
    /// What to send: a queue's message body, a topic's message, or a bus's event as an
    /// EventBridge entry (`{"Source": .., "DetailType": .., "Detail": {..}}`).
    #[arg(
        long,
        short = 'm',
        conflicts_with_all = ["file", "batch"],
        required_unless_present_any = ["file", "batch"]
    )]
    pub message: Option<String>,
    /// The same, read from a file.
    #[arg(long, short = 'f', conflicts_with = "batch")]
    pub file: Option<PathBuf>,
    /// Several messages to a queue or topic, from a file of SendMessageBatch entries (a
    /// JSON array of `{"Id", "MessageBody", "MessageAttributes", "DelaySeconds"}`, or the
    /// request with `Entries`), as `aws sqs send-message-batch --entries file://FILE` sends
    /// them; a topic publishes them with PublishBatch (`Message` and `Subject` read too).
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// The message group of a FIFO queue or topic (for --batch: of the entries that name
    /// none).
    #[arg(long, default_value = "default")]
    pub group_id: String,
    #[command(flatten)]
    pub located: Located,
}

/// Sends one message and prints its id, or a batch and prints each entry's.
pub async fn send(args: &SendArgs) -> Result<ExitCode> {
    if let Some(file) = &args.batch {
        return send_batch(args, file).await;
    }
    let payload = match (&args.message, &args.file) {
        (Some(message), _) => message.clone(),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, None) => anyhow::bail!("give --message TEXT, --file FILE or --batch FILE"),
    };
    let (app, clients) = args.located.reach().await?;
    let sent =
        eventkit_local::send::send(&clients, &app, &args.target, &payload, &args.group_id).await?;
    println!("sent to {} {}: {}", sent.kind, args.target, sent.id);
    if let Some(warning) = &sent.warning {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends the entries of `file`; fails when SQS refused any.
async fn send_batch(args: &SendArgs, file: &std::path::Path) -> Result<ExitCode> {
    // Read before the application is looked for: a wrong file is said as such.
    let entries = batch_entries::read(file)?;
    let (app, clients) = args.located.reach().await?;
    let outcome =
        eventkit_local::send::send_batch(&clients, &app, &args.target, &entries, &args.group_id)
            .await?;
    println!(
        "sent {} of {} message(s) to {} {}",
        outcome.sent.len(),
        entries.len(),
        outcome.kind,
        args.target
    );
    for (entry, message) in &outcome.sent {
        println!("  {entry}: {message}");
    }
    for (entry, why) in &outcome.failed {
        eprintln!("  {entry} refused: {why}");
    }
    if let Some(warning) = &outcome.warning {
        eprintln!("warning: {warning}");
    }
    Ok(if outcome.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
