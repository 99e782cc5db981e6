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
    TRACE_ID
        .try_with(Clone::clone)
        .ok()
        .flatten()
        .or_else(|| std::env::var("_X_AMZN_TRACE_ID").ok())
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scoped_trace_id_is_current_inside_and_only_inside() {
        let inside = with_trace_id(Some("Root=1-abc".into()), async { current_trace_id() }).await;
        assert_eq!(inside.as_deref(), Some("Root=1-abc"));
        let nested_none = with_trace_id(None, async { current_trace_id() }).await;
        assert_eq!(nested_none, std::env::var("_X_AMZN_TRACE_ID").ok());
    }
}
