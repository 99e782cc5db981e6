//! What happened to a function's invocations and processes: counted by its execution
//! environments (the supervisor), read through the host.

use std::sync::atomic::AtomicU64;

/// What happened to a function's invocations and processes.
#[derive(Debug, Default)]
pub struct HostStats {
    /// Invocations that ended, successfully or not.
    pub invocations: AtomicU64,
    /// Invocations that ended with a function error, a crash or a timeout.
    pub errors: AtomicU64,
    /// Processes that crashed (exited on their own, or failed to initialise).
    pub crashes: AtomicU64,
    /// Invocations stopped at the timeout.
    pub timeouts: AtomicU64,
    /// Processes started again after one ended.
    pub restarts: AtomicU64,
}

/// A snapshot of [`HostStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostCounts {
    /// Invocations that ended.
    pub invocations: u64,
    /// Invocations that failed.
    pub errors: u64,
    /// Processes that crashed.
    pub crashes: u64,
    /// Invocations stopped at the timeout.
    pub timeouts: u64,
    /// Process restarts.
    pub restarts: u64,
}
