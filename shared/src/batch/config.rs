//! How a batch is run: per use, never global.

use std::time::Duration;

/// What happens to the rest of a FIFO batch after a record fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FifoPolicy {
    /// The later records of the failed record's message group are not run (reported failed,
    /// so SQS redelivers them in order); other groups go on.
    #[default]
    SkipGroup,
    /// No later record of the batch runs; all are reported failed.
    StopBatch,
}

/// What the batch response is when every record failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AllFailedPolicy {
    /// Report every record in `batchItemFailures` (the invocation itself succeeds).
    #[default]
    ReportAll,
    /// Fail the invocation with an error, as Powertools does by default.
    Error,
}

/// Settings for [`BatchProcessor`](super::BatchProcessor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// How many records of a standard queue run at once (FIFO: how many groups).
    pub max_concurrency: usize,
    /// FIFO behaviour after a failure.
    pub fifo: FifoPolicy,
    /// Response when every record failed.
    pub all_failed: AllFailedPolicy,
    /// Records not started when the invocation has less than this left are reported failed
    /// instead of being cut off by the timeout.
    pub deadline_margin: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 10,
            fifo: FifoPolicy::default(),
            all_failed: AllFailedPolicy::default(),
            deadline_margin: Duration::from_secs(2),
        }
    }
}

impl BatchConfig {
    /// Sets the concurrency limit (at least 1).
    pub fn with_max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = limit.max(1);
        self
    }

    /// Sets the FIFO policy.
    pub fn with_fifo(mut self, policy: FifoPolicy) -> Self {
        self.fifo = policy;
        self
    }

    /// Sets the all-failed policy.
    pub fn with_all_failed(mut self, policy: AllFailedPolicy) -> Self {
        self.all_failed = policy;
        self
    }

    /// Sets the deadline margin.
    pub fn with_deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
        self
    }
}
