//! Crash injection for reliability runs (`cargo xtask chaos`): the process dies on purpose at
//! the places where dying tests an exactly-once promise, the way a Lambda execution
//! environment dies on a timeout or an out-of-memory kill.
//!
//! Off unless the environment variable [`CRASH_POINTS_VAR`] is set; a deployment never sets
//! it, and then each point costs one check of a value read once per process. Its value lists
//! points with the probability of crashing each time a record passes one:
//!
//! ```text
//! EVENTKIT_CRASH_POINTS=before-completion:0.02,after-completion:0.02,after-publish:0.05
//! ```
//!
//! A crash logs one line (`outcome = "crash_injected"`, the point, the record) and aborts
//! the process: no destructor, no flush of anything but that line, no answer to the
//! runtime. What recovers the record is then up to Lambda's retries and the idempotency
//! layer, which is what the run measures. AWS Fault Injection Service's Lambda actions are
//! configured the same way, from outside the code.

use std::sync::OnceLock;

/// The environment variable that turns crash injection on.
pub const CRASH_POINTS_VAR: &str = "EVENTKIT_CRASH_POINTS";

/// A place where a crash tests the exactly-once promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrashPoint {
    /// The handler ran (its side effects outside DynamoDB happened, a charge at the
    /// provider say) and its completion, or its unit of work, is not written yet.
    BeforeCompletion,
    /// The completion (with the unit of work's writes and events) is written, and the
    /// invocation has not answered yet: the event source will deliver the record again.
    AfterCompletion,
    /// The relay published an outbox event and has not marked it published: the stream
    /// record comes again and the event is published a second time, under the same id.
    AfterPublish,
}

impl CrashPoint {
    /// Every point, in the order a record passes them.
    pub const ALL: [CrashPoint; 3] = [
        CrashPoint::BeforeCompletion,
        CrashPoint::AfterCompletion,
        CrashPoint::AfterPublish,
    ];

    /// The point's name in [`CRASH_POINTS_VAR`] and in the crash's log line.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::BeforeCompletion => "before-completion",
            CrashPoint::AfterCompletion => "after-completion",
            CrashPoint::AfterPublish => "after-publish",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|point| point.name() == name)
    }
}

/// The configured probability per point.
#[derive(Debug, Default)]
struct Plan {
    chances: Vec<(CrashPoint, f64)>,
}

impl Plan {
    /// Reads `before-completion:0.02,after-publish:0.05`; an entry it cannot read is
    /// reported once and left out, so a typo never crashes a function at start.
    fn parse(spec: &str) -> Self {
        let mut chances = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once(':').and_then(|(name, chance)| {
                let chance: f64 = chance.trim().parse().ok()?;
                let point = CrashPoint::parse(name.trim())?;
                (0.0..=1.0).contains(&chance).then_some((point, chance))
            });
            match parsed {
                Some(point) => chances.push(point),
                None => tracing::warn!(
                    entry,
                    "{CRASH_POINTS_VAR}: not `<point>:<probability 0..1>`; ignored"
                ),
            }
        }
        Self { chances }
    }

    fn chance(&self, point: CrashPoint) -> f64 {
        self.chances
            .iter()
            .find(|(p, _)| *p == point)
            .map_or(0.0, |(_, chance)| *chance)
    }
}

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        std::env::var(CRASH_POINTS_VAR)
            .map(|spec| Plan::parse(&spec))
            .unwrap_or_default()
    })
}

/// Crashes the process here with the configured probability for `point` (never when
/// [`CRASH_POINTS_VAR`] is unset). `record_id` goes into the crash's log line, so a run can
/// tell which record was hit and follow what recovered it.
pub fn crash_point(point: CrashPoint, record_id: &str) {
    let chance = plan().chance(point);
    if chance > 0.0 && fastrand::f64() < chance {
        tracing::error!(
            outcome = "crash_injected",
            crash_point = point.name(),
            record_id,
            "crash injected ({CRASH_POINTS_VAR})"
        );
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_each_point_and_leaves_out_what_it_cannot_read() {
        let plan = Plan::parse(
            "before-completion:0.25, after-publish:1, after-completion:2, nowhere:0.5, junk",
        );
        assert_eq!(plan.chance(CrashPoint::BeforeCompletion), 0.25);
        assert_eq!(plan.chance(CrashPoint::AfterPublish), 1.0);
        // Out of range: left out, so never.
        assert_eq!(plan.chance(CrashPoint::AfterCompletion), 0.0);
        assert_eq!(plan.chances.len(), 2);
    }

    #[test]
    fn every_point_has_a_name_that_parses_back() {
        for point in CrashPoint::ALL {
            assert_eq!(CrashPoint::parse(point.name()), Some(point));
        }
    }
}
