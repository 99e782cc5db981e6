//! `logs [FUNCTION] [--follow]`: the running (or kept) application's function logs, as
//! `sam logs` prints a function's: every line so far, then with `--follow` (`--tail`, as
//! SAM calls it) what comes next, until Ctrl-C.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use eventkit_local::running::names;

use super::Located;

/// Options of `logs`.
#[derive(Args, Clone)]
pub struct LogsArgs {
    /// The function (logical id) [default: every function, each line prefixed with its id].
    pub function: Option<String>,
    /// Keep printing what the functions log, until Ctrl-C.
    #[arg(long, short = 'f', visible_alias = "tail")]
    pub follow: bool,
    #[command(flatten)]
    pub located: Located,
}

/// How often a followed log is looked at.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Prints the logs, and with `--follow` what is appended to them.
pub async fn logs(args: &LogsArgs) -> Result<ExitCode> {
    let app = args.located.find()?;
    let files: BTreeMap<String, PathBuf> = match &args.function {
        Some(function) => {
            let Some(found) = app.functions.get(function) else {
                bail!(
                    "the application has no function {function} (its functions: {})",
                    names(&app.functions)
                );
            };
            [(function.clone(), found.log.clone())].into()
        }
        None => app
            .functions
            .iter()
            .map(|(logical, function)| (logical.clone(), function.log.clone()))
            .collect(),
    };
    let prefixed = files.len() > 1;
    let mut readers: Vec<Tail> = files
        .into_iter()
        .map(|(function, path)| Tail {
            label: prefixed.then_some(function),
            path,
            offset: 0,
            partial: String::new(),
        })
        .collect();
    loop {
        for reader in &mut readers {
            for line in reader.new_lines()? {
                let written = match &reader.label {
                    Some(label) => writeln!(std::io::stdout(), "{label} | {line}"),
                    None => writeln!(std::io::stdout(), "{line}"),
                };
                written.context("writing to stdout")?;
            }
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// A log file read from where the last read ended.
struct Tail {
    label: Option<String>,
    path: PathBuf,
    offset: u64,
    /// The end of the file after its last newline: a line still being written.
    partial: String,
}

impl Tail {
    /// The whole lines written since the last call (none while the file does not exist).
    fn new_lines(&mut self) -> Result<Vec<String>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(error).with_context(|| format!("opening {}", self.path.display()))
            }
        };
        let length = file.metadata()?.len();
        // A log that shrank was started anew (a later run of the stack): read it from the top.
        if length < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", self.path.display()))?;
        self.offset += u64::try_from(bytes.len()).unwrap_or(0);
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(end + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        Ok(complete.lines().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_followed_log_gives_each_whole_line_once() {
        let path = std::env::temp_dir().join(format!("tail-{}.log", uuid::Uuid::new_v4()));
        let mut tail = Tail {
            label: None,
            path: path.clone(),
            offset: 0,
            partial: String::new(),
        };
        assert!(tail.new_lines().unwrap().is_empty(), "no file yet");
        std::fs::write(&path, "one\ntw").unwrap();
        assert_eq!(tail.new_lines().unwrap(), ["one"]);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"o\nthree\n").unwrap();
        assert_eq!(tail.new_lines().unwrap(), ["two", "three"]);
        assert!(tail.new_lines().unwrap().is_empty());
        std::fs::write(&path, "anew\n").unwrap();
        assert_eq!(tail.new_lines().unwrap(), ["anew"]);
        std::fs::remove_file(path).unwrap();
    }
}
