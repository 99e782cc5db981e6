//! Cold start of the function binaries: the time from spawning the process to its first
//! `GET /2018-06-01/runtime/invocation/next`, the moment it is ready for an event. A bare
//! listener plays the Runtime API (it only has to notice that request), and the process gets
//! the environment Lambda gives a function.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use super::procfs;
use xtask::cloud::REGION;

/// The first request of a ready function.
const NEXT_INVOCATION: &str = "GET /2018-06-01/runtime/invocation/next";

/// How long a function may take to ask for its first event.
const TIMEOUT: Duration = Duration::from_secs(20);

/// One start.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// From spawn to the first `invocation/next`.
    pub ready_after: Duration,
    /// The process's peak resident set size at that moment.
    pub peak_rss_bytes: u64,
}

/// Starts `binary` `runs` times, one after another, and times each start; with
/// `otlp_endpoint`, with span export on (its exporter built at init), as a traced function
/// starts.
pub async fn measure(
    binary: &Path,
    function: &str,
    dynamodb_endpoint: &str,
    runs: usize,
    otlp_endpoint: Option<&str>,
) -> Result<Vec<Start>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    let mut starts = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TZ", ":UTC")
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_SESSION_TOKEN", "test")
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
            .env("IDEMPOTENCY_TABLE", "idempotency")
            .env("INVENTORY_TABLE", "inventory")
            .env("NOTIFICATIONS_TABLE", "notifications")
            .env("ANALYTICS_TABLE", "analytics")
            .env("LEDGER_TABLE", "ledger")
            .env("ORDERS_BUS_NAME", "orders")
            .envs(otlp_endpoint.map(|endpoint| ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the function exited at once")?;
        let ready = tokio::time::timeout(TIMEOUT, async {
            tokio::select! {
                ready = wait_for_next(&listener) => ready,
                status = child.wait() => bail!("it exited ({}) before asking for an event", status?),
            }
        })
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("it did not ask for an event within {TIMEOUT:?}")));
        // The request's connection stays open until the RSS is read: closing it would make
        // the function fail its `next` call and exit, perhaps before /proc is read.
        let measured = match ready {
            Ok((ready, _connection)) => {
                procfs::peak_rss_bytes(pid).map(|peak| (ready.duration_since(spawned), peak))
            }
            Err(error) => Err(error),
        };
        let _ = child.start_kill();
        let output = child.wait_with_output().await?;
        let (ready_after, peak_rss_bytes) = measured.with_context(|| {
            format!(
                "{function}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
        starts.push(Start {
            ready_after,
            peak_rss_bytes,
        });
    }
    Ok(starts)
}

/// The moment a connection's first request is `invocation/next`, and that connection.
async fn wait_for_next(listener: &TcpListener) -> Result<(Instant, BufReader<TcpStream>)> {
    loop {
        let (stream, _) = listener.accept().await?;
        let mut line = String::new();
        let mut connection = BufReader::new(stream);
        connection.read_line(&mut line).await?;
        if line.starts_with(NEXT_INVOCATION) {
            return Ok((Instant::now(), connection));
        }
    }
}
