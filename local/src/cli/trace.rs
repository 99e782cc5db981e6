//! `trace <id>`: one order's, event's or trace's spans, as the functions of `run` exported
//! them, printed as a waterfall and written as a self-contained HTML file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use eventkit_local::traces::store::traces_dir;
use eventkit_local::traces::waterfall::{select, Waterfall};
use eventkit_local::traces::{html, load_spans};

use super::Located;

/// Options of `trace`.
#[derive(Args)]
pub struct TraceArgs {
    /// An order id, correlation id, event id (any span attribute named like an id) or a
    /// trace id.
    pub id: String,
    #[command(flatten)]
    pub located: Located,
    /// Where to write the HTML waterfall [default:
    /// .local-cloud/traces/trace-<id>.html].
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The width of the bars, in characters.
    #[arg(long, default_value_t = 40)]
    pub width: usize,
}

/// Prints the waterfall and writes the HTML file.
pub fn trace(args: &TraceArgs) -> Result<ExitCode> {
    let project = args.located.project();
    let spans = load_spans(&project, args.located.stack_name.as_deref())?;
    let selected = select(&spans, &args.id);
    if selected.is_empty() {
        bail!(
            "no span has {} as its trace id or an id attribute ({} span(s) in {}); the \
             functions export spans when built with eventkit's feature `otel`",
            args.id,
            spans.len(),
            traces_dir(&project).display()
        );
    }
    let waterfall = Waterfall::build(selected);
    say!("{}", waterfall.render_text(args.width.max(10)).trim_end());
    let file = match &args.html {
        Some(file) => file.clone(),
        None => traces_dir(&project).join(format!("trace-{}.html", file_safe(&args.id))),
    };
    std::fs::write(&file, html::render(&waterfall, &args.id))
        .with_context(|| format!("writing {}", file.display()))?;
    say!("waterfall written to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// `id` as a file name: letters, digits, `-` and `_` kept, anything else `_`.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
