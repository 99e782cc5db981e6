//! The outbox sweeper: on a schedule, publishes the events committed to the outbox that the
//! stream's relay did not get published (a bus down for longer than the stream's retries),
//! under their staged ids, and reports the outbox's backlog as an EMF metric that the
//! template's alarm watches (eventkit's `outbox::Sweeper`, nothing of its own).
//!
//! `SWEEP_GRACE_SECONDS` sets how long an event is left to the stream first (default five
//! minutes); the chaos run shortens it with its time scale.
// The service's future (idempotency store behind a breaker, transactional layer, batch
// processing) nests deeper than rustc's default limit (128) in release builds.
#![recursion_limit = "256"]

use std::time::Duration;

use eventkit::outbox::{Sweeper, DEFAULT_GRACE};
use lambda_runtime::{service_fn, LambdaEvent};
use orders::wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    eventkit::telemetry::init_logging();
    let config = aws_config::load_from_env().await;
    let relay = wiring::relay(&config)?;
    let grace = std::env::var("SWEEP_GRACE_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .map_or(DEFAULT_GRACE, Duration::from_secs);
    let sweeper = Sweeper::new(relay).with_grace(grace);
    let service = wiring::service_name();
    let sweeper = &sweeper;
    let service = service.as_str();
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            // Boxed: the sweep's future is deep (paginated queries in a loop of shards), and
            // inlined into the runtime's it outgrows the compiler's type depth limit.
            let sweep = Box::pin(sweeper.sweep()).await?;
            println!("{}", sweep.backlog.to_emf(service));
            eventkit::tracing::info!(
                published = sweep.published,
                failed = sweep.failed,
                unpublished = sweep.backlog.unpublished,
                oldest_age_secs = sweep.backlog.oldest_age_secs,
                "outbox swept"
            );
            Ok::<_, lambda_runtime::Error>(sweep)
        },
    ))
    .await
}
