//! Lambda's Runtime API, served to one process of a function: the function's
//! `lambda_runtime` long-polls `GET /invocation/next`, then posts the invocation's response
//! or error. Each process gets a server of its own (a fresh port), so a process that died
//! while waiting for work can never be handed an invocation meant for its successor.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::invocation::{Invocation, Outcome};
use super::logs::FunctionLog;
use super::output::OutputDrain;

/// The function's queue of invocations, shared by all its processes.
pub type InvocationQueue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>;

/// What the server tells the process's supervisor.
#[derive(Debug)]
pub enum Signal {
    /// The invocation ran past the function's timeout: stop the process.
    TimedOut(String),
    /// The runtime reported that it could not initialise.
    InitError(String),
}

/// The invocation a process is working on.
#[derive(Debug)]
struct InFlight {
    request_id: String,
    started: Instant,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// The fixed facts about the function the server serves.
#[derive(Clone, Debug)]
pub struct FunctionFacts {
    /// Its ARN (the `Lambda-Runtime-Invoked-Function-Arn` header).
    pub arn: String,
    /// Its timeout.
    pub timeout: Duration,
    /// Its memory size in MB (for the report lines).
    pub memory_mb: u32,
}

#[derive(Debug)]
struct ApiState {
    facts: FunctionFacts,
    queue: InvocationQueue,
    requeue: mpsc::UnboundedSender<Invocation>,
    in_flight: Mutex<Option<InFlight>>,
    reached_next: AtomicBool,
    signals: mpsc::UnboundedSender<Signal>,
    stopped: CancellationToken,
    log: FunctionLog,
    /// The process's output, drained before each report line (set once it is spawned).
    output: Mutex<Option<OutputDrain>>,
}

impl ApiState {
    fn in_flight(&self) -> MutexGuard<'_, Option<InFlight>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends the in-flight invocation `request_id` with `outcome`; false if it is not the
    /// one in flight (already ended, or never handed out here).
    fn finish(&self, request_id: &str, outcome: Outcome) -> bool {
        let ended = {
            let mut slot = self.in_flight();
            match slot.as_ref() {
                Some(current) if current.request_id == request_id => slot.take(),
                _ => None,
            }
        };
        let Some(ended) = ended else { return false };
        // What the function wrote for this invocation precedes its report line.
        let output = self
            .output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(output) = output {
            output.drain();
        }
        report(&self.log, &self.facts, &ended, &outcome);
        let _ = ended.reply.send(outcome);
        true
    }
}

/// The Runtime API server of one process.
#[derive(Debug)]
pub struct RuntimeApi {
    address: SocketAddr,
    state: Arc<ApiState>,
}

impl RuntimeApi {
    /// Serves the Runtime API on a free port of 127.0.0.1 until [`RuntimeApi::stop`].
    pub async fn start(
        facts: FunctionFacts,
        queue: InvocationQueue,
        requeue: mpsc::UnboundedSender<Invocation>,
        log: FunctionLog,
        signals: mpsc::UnboundedSender<Signal>,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the Runtime API")?;
        let address = listener.local_addr()?;
        let state = Arc::new(ApiState {
            facts,
            queue,
            requeue,
            in_flight: Mutex::new(None),
            reached_next: AtomicBool::new(false),
            signals,
            stopped: CancellationToken::new(),
            log,
            output: Mutex::new(None),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let stopped = state.stopped.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Ok(Self { address, state })
    }

    /// The output of the process this server serves: drained before each report line, so
    /// that the log holds an invocation's lines before its report.
    pub fn attach_output(&self, output: OutputDrain) {
        *self
            .state
            .output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(output);
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` (`host:port`).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Whether the process asked for work at least once (its init finished).
    pub fn reached_next(&self) -> bool {
        self.state.reached_next.load(Ordering::SeqCst)
    }

    /// Whether the process is working on an invocation.
    pub fn busy(&self) -> bool {
        self.state.in_flight().is_some()
    }

    /// Stops serving and fails the invocation in flight, if any, with `outcome`: the process
    /// is gone, so no answer will come.
    pub fn stop(&self, outcome: impl FnOnce() -> Outcome) {
        self.state.stopped.cancel();
        // Taken under the lock `next` stores under, after the cancel: an invocation is either
        // taken here or put back into the queue by `next`, never lost.
        let request_id = self
            .state
            .in_flight()
            .as_ref()
            .map(|f| f.request_id.clone());
        if let Some(request_id) = request_id {
            self.state.finish(&request_id, outcome());
        }
    }
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    state.reached_next.store(true, Ordering::SeqCst);
    let invocation = tokio::select! {
        invocation = async { state.queue.lock().await.recv().await } => invocation,
        () = state.stopped.cancelled() => None,
    };
    let Some(invocation) = invocation else {
        return (StatusCode::GONE, "the environment is shutting down").into_response();
    };
    let deadline = SystemTime::now() + state.facts.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    {
        let mut slot = state.in_flight();
        if state.stopped.is_cancelled() {
            drop(slot);
            // Put back for the next process; if the host is gone too, nobody waits for it.
            let _ = state.requeue.send(invocation);
            return (StatusCode::GONE, "the environment is shutting down").into_response();
        }
        *slot = Some(InFlight {
            request_id: invocation.request_id.clone(),
            started: Instant::now(),
            reply: invocation.reply,
        });
    }
    state.log.platform(
        "platform.start",
        json!({"requestId": invocation.request_id, "version": "$LATEST"}),
    );
    spawn_timeout(state.clone(), invocation.request_id.clone());
    let mut headers = HeaderMap::new();
    let mut header = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    header("lambda-runtime-aws-request-id", invocation.request_id);
    header("lambda-runtime-deadline-ms", deadline_ms.to_string());
    header(
        "lambda-runtime-invoked-function-arn",
        state.facts.arn.clone(),
    );
    header("lambda-runtime-trace-id", invocation.trace_id);
    header("content-type", "application/json".to_string());
    (StatusCode::OK, headers, invocation.payload.to_string()).into_response()
}

/// Lambda stops an invocation at the function's timeout, whatever the code is doing.
fn spawn_timeout(state: Arc<ApiState>, request_id: String) {
    tokio::spawn(async move {
        let timeout = state.facts.timeout;
        tokio::select! {
            () = tokio::time::sleep(timeout) => {}
            () = state.stopped.cancelled() => return,
        }
        if state.finish(&request_id, Outcome::TimedOut(timeout)) {
            let _ = state.signals.send(Signal::TimedOut(request_id));
        }
    });
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    let payload = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    accepted(state.finish(&request_id, Outcome::Response(payload)))
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, message) = error_body(&headers, &body);
    accepted(state.finish(
        &request_id,
        Outcome::FunctionError {
            error_type,
            message,
        },
    ))
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, message) = error_body(&headers, &body);
    let _ = state
        .signals
        .send(Signal::InitError(format!("{error_type}: {message}")));
    (StatusCode::ACCEPTED, Json(json!({"status": "OK"}))).into_response()
}

fn error_body(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = parsed["errorType"]
        .as_str()
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|value| value.to_str().ok())
        })
        .unwrap_or("Unhandled")
        .to_string();
    let message = parsed["errorMessage"].as_str().map_or_else(
        || String::from_utf8_lossy(body).into_owned(),
        str::to_string,
    );
    (error_type, message)
}

fn accepted(known: bool) -> Response {
    if known {
        (StatusCode::ACCEPTED, Json(json!({"status": "OK"}))).into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "errorType": "InvalidRequestID",
                "errorMessage": "no invocation with this request id is in flight",
            })),
        )
            .into_response()
    }
}

/// Lambda's `platform.report` line: duration and status of the invocation.
fn report(log: &FunctionLog, facts: &FunctionFacts, ended: &InFlight, outcome: &Outcome) {
    let duration_ms = ended.started.elapsed().as_secs_f64() * 1000.0;
    let status = match outcome {
        Outcome::Response(_) => "success",
        Outcome::TimedOut(_) => "timeout",
        Outcome::FunctionError { .. } | Outcome::Crashed(_) => "error",
    };
    let mut record = json!({
        "requestId": ended.request_id,
        "status": status,
        "metrics": {
            "durationMs": (duration_ms * 100.0).round() / 100.0,
            "memorySizeMB": facts.memory_mb,
        },
    });
    if !outcome.succeeded() {
        record["errorType"] = json!(outcome.error_type());
        record["errorMessage"] = json!(outcome.to_string());
    }
    log.platform("platform.report", record);
}
