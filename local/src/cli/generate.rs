//! `generate-event TRIGGER [--body TEXT]... [--batch FILE] [--from-sns]`: a sample event, as
//! `sam local generate-event` prints it, from the application's own samples when given.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use eventkit_local::batch_entries;
use eventkit_local::sample_events::{sample, sqs_sample, SampleMessage, Trigger};

/// Options of `generate-event`.
#[derive(Args, Clone)]
pub struct GenerateArgs {
    /// The trigger whose event to print.
    #[arg(value_enum)]
    pub trigger: Trigger,
    /// What it carries: an SQS body, an SNS message, an EventBridge detail (JSON) or a
    /// stream record's new image (a JSON object). For sqs, repeat it for several records.
    #[arg(long, short = 'b')]
    pub body: Vec<String>,
    /// For sqs: a record per entry of this SendMessageBatch entries file (a JSON array of
    /// `{"Id", "MessageBody", "MessageAttributes"}`, or the request with `Entries`), the
    /// shape `aws sqs send-message-batch --entries file://...` and `send --batch` take.
    #[arg(long, value_name = "FILE", conflicts_with = "body")]
    pub batch: Option<PathBuf>,
    /// For sqs: each record's body is the notification a topic delivers to its subscribed
    /// queue (the message in SNS's JSON envelope), as when an SNS topic fans out to SQS.
    #[arg(long)]
    pub from_sns: bool,
}

/// Prints the sample (for `invoke -e`).
pub fn generate(args: &GenerateArgs) -> Result<ExitCode> {
    let several = args.body.len() > 1 || args.batch.is_some() || args.from_sns;
    let event = match args.trigger {
        Trigger::Sqs if several => {
            let messages: Vec<SampleMessage> = match &args.batch {
                Some(file) => batch_entries::read(file)?
                    .iter()
                    .map(SampleMessage::from)
                    .collect(),
                None if args.body.is_empty() => vec![SampleMessage {
                    body: r#"{"hello": "world"}"#.into(),
                    ..SampleMessage::default()
                }],
                None => args
                    .body
                    .iter()
                    .map(|body| SampleMessage {
                        body: body.clone(),
                        ..SampleMessage::default()
                    })
                    .collect(),
            };
            sqs_sample(&messages, args.from_sns)?
        }
        _ if several => bail!(
            "several --body, --batch and --from-sns are for sqs (the records of a batch); \
             {} takes one --body",
            args.trigger.name()
        ),
        trigger => sample(trigger, args.body.first().map(String::as_str))?,
    };
    let text = serde_json::to_string_pretty(&event)?;
    // Piped into `head` or the like, a closed pipe is not an error.
    match writeln!(std::io::stdout(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
