//! `generate-event TRIGGER [--body TEXT]`: a sample event, as `sam local generate-event`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use eventkit_local::sample_events::{sample, Trigger};

/// Options of `generate-event`.
#[derive(Args, Clone)]
pub struct GenerateArgs {
    /// The trigger whose event to print.
    #[arg(value_enum)]
    pub trigger: Trigger,
    /// What it carries: an SQS body, an SNS message, an EventBridge detail (JSON) or a
    /// stream record's new image (a JSON object).
    #[arg(long, short = 'b')]
    pub body: Option<String>,
}

/// Prints the sample (for `invoke -e`).
pub fn generate(args: &GenerateArgs) -> Result<ExitCode> {
    let event = sample(args.trigger, args.body.as_deref())?;
    let text = serde_json::to_string_pretty(&event)?;
    // Piped into `head` or the like, a closed pipe is not an error.
    match writeln!(std::io::stdout(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
