//! The X-Ray trace id of the invocation being processed, so that events published while
//! handling a record carry it (`traceId` in the envelope) and one trace links the services.
//!
//! The runtime wrappers set it per invocation from `Context::xray_trace_id` in a task-local
//! rather than reading `_X_AMZN_TRACE_ID`: lambda_runtime sets that variable only when it
//! runs one invocation at a time, and a process-wide variable is wrong under concurrency.

use std::future::Future;

tokio::task_local! {
    static TRACE_ID: Option<String>;
}

/// Runs `future` with `trace_id` as the current trace id.
pub async fn with_trace_id<F: Future>(trace_id: Option<String>, future: F) -> F::Output {
    TRACE_ID.scope(trace_id, future).await
}

/// The current invocation's X-Ray trace id: the one set by [`with_trace_id`], else the
/// `_X_AMZN_TRACE_ID` environment variable Lambda's runtime sets, else none.
pub fn current_trace_id() -> Option<String> {
    trace_id_or(|| std::env::var("_X_AMZN_TRACE_ID").ok())
}

/// The scoped trace id, else the one `from_environment` reads; blank means none. Split from
/// [`current_trace_id`] so that tests can give the environment's value without setting a
/// process-wide variable other tests read.
fn trace_id_or(from_environment: impl FnOnce() -> Option<String>) -> Option<String> {
    TRACE_ID
        .try_with(Clone::clone)
        .ok()
        .flatten()
        .or_else(from_environment)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_env() -> Option<String> {
        Some("Root=1-env".into())
    }

    #[tokio::test]
    async fn the_scoped_trace_id_is_current_inside_and_only_inside() {
        // Outside any scope: the environment's, or none.
        assert_eq!(trace_id_or(from_env).as_deref(), Some("Root=1-env"));
        assert_eq!(trace_id_or(|| None), None);

        // Inside: the scoped id wins over the environment's.
        let inside = with_trace_id(Some("Root=1-abc".into()), async {
            (trace_id_or(from_env), trace_id_or(|| None))
        })
        .await;
        assert_eq!(inside.0.as_deref(), Some("Root=1-abc"));
        assert_eq!(inside.1.as_deref(), Some("Root=1-abc"));

        // A scope without an id falls back to the environment; a blank one is none.
        let unset = with_trace_id(None, async { trace_id_or(from_env) }).await;
        assert_eq!(unset.as_deref(), Some("Root=1-env"));
        let blank = with_trace_id(Some(String::new()), async { trace_id_or(|| None) }).await;
        assert_eq!(blank, None);

        // After the scope ended, its id is gone.
        assert_eq!(trace_id_or(|| None), None);
    }

    #[tokio::test]
    async fn concurrent_invocations_each_see_their_own_id() {
        let (tx_a, rx_a) = tokio::sync::oneshot::channel::<()>();
        let (tx_b, rx_b) = tokio::sync::oneshot::channel::<()>();
        // Each waits for the other to be inside its scope before reading, so both scopes are
        // live at once on one thread.
        let a = with_trace_id(Some("Root=1-a".into()), async {
            let _ = tx_a.send(());
            let _ = rx_b.await;
            trace_id_or(|| None)
        });
        let b = with_trace_id(Some("Root=1-b".into()), async {
            let _ = tx_b.send(());
            let _ = rx_a.await;
            trace_id_or(|| None)
        });
        let (a, b) = tokio::join!(a, b);
        assert_eq!(
            (a.as_deref(), b.as_deref()),
            (Some("Root=1-a"), Some("Root=1-b"))
        );
    }
}
