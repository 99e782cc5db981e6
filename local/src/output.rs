//! A function process's stdout and stderr, copied line by line into its log.
//!
//! The copy runs in the background, so on its own it may lag behind the process: an
//! invocation's last lines could reach the log after the Runtime API wrote the invocation's
//! report line. The process writes those lines before it posts its response, so they are in
//! the pipes by the time the response arrives; [`OutputDrain::drain`] copies what the pipes
//! hold at once, and the Runtime API calls it before the report line. Reads never wait (the
//! pipes are non-blocking), so the drain is quick and needs no async context.

use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::unix::pipe;
use tokio::process::Child;
use tokio::task::JoinHandle;

use super::logs::{FunctionLog, Stream};

/// A line longer than this is logged in pieces rather than held without end.
const LONGEST_LINE: usize = 1 << 20;

/// One pipe of the process and the line it is in the middle of.
struct Pipe {
    /// Read directly, never through tokio (whose readiness may lag behind the pipe): a
    /// duplicate of the descriptor tokio watches, non-blocking like it.
    file: File,
    stream: Stream,
    log: FunctionLog,
    unfinished: Vec<u8>,
    /// The last non-blank line, kept for crash reports (stderr only).
    last_line: Option<Arc<Mutex<Option<String>>>>,
    ended: bool,
}

impl Pipe {
    /// Logs every complete line the pipe holds now. Ok once the pipe reached its end;
    /// `WouldBlock` when it is empty for now (what tokio's `try_io` expects).
    fn drain(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        while !self.ended {
            match self.file.read(&mut chunk) {
                Ok(0) => {
                    self.ended = true;
                    self.write_unfinished();
                }
                Ok(read) => self.take(&chunk[..read]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn take(&mut self, bytes: &[u8]) {
        self.unfinished.extend_from_slice(bytes);
        while let Some(end) = self.unfinished.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = self.unfinished.drain(..=end).collect();
            self.write(&line[..end]);
        }
        if self.unfinished.len() >= LONGEST_LINE {
            self.write_unfinished();
        }
    }

    fn write_unfinished(&mut self) {
        if !self.unfinished.is_empty() {
            let line = std::mem::take(&mut self.unfinished);
            self.write(&line);
        }
    }

    fn write(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if let Some(last) = &self.last_line {
            if !text.trim().is_empty() {
                *lock(last) = Some(text.clone().into_owned());
            }
        }
        self.log.write(self.stream, &text);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data is a buffer and a flag, consistent after any panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies what a process's pipes hold into its log, on demand (cheap to clone).
#[derive(Clone, Default)]
pub struct OutputDrain {
    pipes: Vec<Arc<Mutex<Pipe>>>,
}

impl OutputDrain {
    /// Logs every complete line the process has written so far, without waiting for more.
    pub fn drain(&self) {
        for pipe in &self.pipes {
            // Empty for now (`WouldBlock`), or failing: its lines so far are logged.
            let _ = lock(pipe).drain();
        }
    }
}

impl std::fmt::Debug for OutputDrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputDrain")
            .field("pipes", &self.pipes.len())
            .finish()
    }
}

/// The copy of a process's output: the background tasks and what they share.
pub struct ProcessOutput {
    tasks: Vec<JoinHandle<()>>,
    drain: OutputDrain,
    last_stderr: Arc<Mutex<Option<String>>>,
}

impl ProcessOutput {
    /// Starts copying the child's stdout and stderr into `log`.
    pub fn copy(child: &mut Child, log: &FunctionLog) -> io::Result<Self> {
        let last_stderr = Arc::new(Mutex::new(None));
        let mut pipes = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            pipes.push((stdout.into_owned_fd()?, Stream::Stdout, None));
        }
        if let Some(stderr) = child.stderr.take() {
            pipes.push((
                stderr.into_owned_fd()?,
                Stream::Stderr,
                Some(last_stderr.clone()),
            ));
        }
        let mut output = Self {
            tasks: Vec::new(),
            drain: OutputDrain::default(),
            last_stderr,
        };
        for (fd, stream, last_line) in pipes {
            let file = File::from(fd.try_clone()?);
            // Sets the (shared) file description non-blocking, for both.
            let readiness = pipe::Receiver::from_owned_fd(fd)?;
            let pipe = Arc::new(Mutex::new(Pipe {
                file,
                stream,
                log: log.clone(),
                unfinished: Vec::new(),
                last_line,
                ended: false,
            }));
            output.drain.pipes.push(pipe.clone());
            output.tasks.push(tokio::spawn(copy(readiness, pipe)));
        }
        Ok(output)
    }

    /// What drains the pipes on demand (for the Runtime API's report lines).
    pub fn drain(&self) -> OutputDrain {
        self.drain.clone()
    }

    /// The last non-blank line written to stderr (a panic's message), if any.
    pub fn last_stderr_line(&self) -> Option<String> {
        lock(&self.last_stderr).clone()
    }

    /// Waits until both pipes reached their end (the process and its children closed them).
    pub async fn finish(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Copies whatever the pipe holds each time it becomes readable, until its end.
async fn copy(readiness: pipe::Receiver, pipe: Arc<Mutex<Pipe>>) {
    loop {
        if readiness.readable().await.is_err() {
            break;
        }
        // `WouldBlock` (drained, by this task or by an on-demand drain) waits for more.
        match readiness.try_io(|| lock(&pipe).drain()) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Ok(()) | Err(_) => break,
        }
    }
    let mut pipe = lock(&pipe);
    pipe.ended = true;
    pipe.write_unfinished();
}
