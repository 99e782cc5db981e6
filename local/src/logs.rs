//! A function's log, as CloudWatch Logs would hold it: every line its processes write to
//! stdout and stderr, plus the platform's own lines (start, report, timeouts, crashes),
//! appended to `<logs dir>/<function>.log` and never to the terminal. The lines are also
//! kept in memory, parsed, for the summary (EMF metrics, journeys by correlationId) and
//! published to live listeners (`dev`'s console, a test waiting for a record to start).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Lines kept in memory per function; older ones stay in the file only.
const KEPT_LINES: usize = 200_000;

/// Where a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The function's stdout (its logs and EMF lines).
    Stdout,
    /// The function's stderr (panics, runtime errors).
    Stderr,
    /// The local Lambda platform (invocation start and end, crashes, timeouts).
    Platform,
}

/// One line of a function's log.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// When it was written.
    pub at: SystemTime,
    /// The function's logical id.
    pub function: String,
    /// Where it came from.
    pub stream: Stream,
    /// The line as written.
    pub text: String,
    /// The line parsed, when it is JSON.
    pub json: Option<Value>,
}

impl LogLine {
    /// The CloudWatch EMF document, when the line is one.
    pub fn emf(&self) -> Option<&Value> {
        self.json.as_ref().filter(|json| json.get("_aws").is_some())
    }

    /// The value of `field` in the line's span list (`requestId`, `record_id`,
    /// `correlation_id`, ...), innermost span first.
    pub fn span_field(&self, field: &str) -> Option<&str> {
        let spans = self.json.as_ref()?.get("spans")?.as_array()?;
        spans
            .iter()
            .rev()
            .find_map(|span| span.get(field)?.as_str())
            .filter(|value| !value.is_empty())
    }

    /// The line's own field `field` (the log event's fields are flattened).
    pub fn field(&self, field: &str) -> Option<&str> {
        self.json.as_ref()?.get(field)?.as_str()
    }

    /// The log message, or the whole line when it is not a JSON log event.
    pub fn message(&self) -> &str {
        self.field("message").unwrap_or(&self.text)
    }
}

/// A function's log: the file, the lines in memory and the live listeners.
#[derive(Clone, Debug)]
pub struct FunctionLog {
    function: String,
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
    live: broadcast::Sender<Arc<LogLine>>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    lines: Vec<Arc<LogLine>>,
}

impl FunctionLog {
    /// The log of `function`, appended to `<dir>/<file_stem>.log`.
    pub fn create(dir: &Path, function: &str, file_stem: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{file_stem}.log"));
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let (live, _) = broadcast::channel(4096);
        Ok(Self {
            function: function.to_string(),
            path,
            inner: Arc::new(Mutex::new(Inner {
                file,
                lines: Vec::new(),
            })),
            live,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line.
    pub fn write(&self, stream: Stream, text: &str) {
        let line = Arc::new(LogLine {
            at: SystemTime::now(),
            function: self.function.clone(),
            stream,
            text: text.to_string(),
            json: serde_json::from_str(text).ok().filter(Value::is_object),
        });
        {
            let mut inner = self.lock();
            // A full disk must not stop the pipeline; the line stays in memory.
            let _ = writeln!(inner.file, "{text}");
            if inner.lines.len() >= KEPT_LINES {
                inner.lines.drain(..KEPT_LINES / 10);
            }
            inner.lines.push(line.clone());
        }
        let _ = self.live.send(line);
    }

    /// Appends a platform line in Lambda's JSON log format (`type`, `record`).
    pub fn platform(&self, kind: &str, record: Value) {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.write(
            Stream::Platform,
            &json!({"time": time, "type": kind, "record": record}).to_string(),
        );
    }

    /// Every line kept in memory.
    pub fn lines(&self) -> Vec<Arc<LogLine>> {
        self.lock().lines.clone()
    }

    /// Lines written from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.live.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (a Vec push), so go on.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
