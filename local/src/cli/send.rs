//! `send LOGICAL_ID (--message TEXT | --file FILE)`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::{clients_of, Located};

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
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    pub message: Option<String>,
    /// The same, read from a file.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// The message group of a FIFO queue or topic.
    #[arg(long, default_value = "default")]
    pub group_id: String,
    #[command(flatten)]
    pub located: Located,
}

/// Sends one message and prints its id.
pub async fn send(args: &SendArgs) -> Result<ExitCode> {
    let payload = match (&args.message, &args.file) {
        (Some(message), _) => message.clone(),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, None) => anyhow::bail!("give --message TEXT or --file FILE"),
    };
    let app = args.located.find()?;
    let clients = clients_of(&app).await;
    let sent =
        eventkit_local::send::send(&clients, &app, &args.target, &payload, &args.group_id).await?;
    println!("sent to {} {}: {}", sent.kind, args.target, sent.id);
    if let Some(warning) = &sent.warning {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
