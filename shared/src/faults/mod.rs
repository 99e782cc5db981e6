//! Crash injection for reliability runs (`cargo xtask chaos`): the process dies on purpose at
//! the places where dying tests an exactly-once promise, the way a Lambda execution
//! environment dies on a timeout or an out-of-memory kill.
//!
//! Compiled in only with the crate's `faults` feature, as fail-rs compiles its fail points
//! only with `failpoints`. Without it [`crash_point`] does nothing and [`CRASH_POINTS_VAR`] is
//! never read: a deployed function whose environment somehow carries the variable still
//! processes every record. The chaos run and the tests build the functions with it (each
//! function crate passes its own `faults` feature through); deploy builds (`sam build`)
//! never do, and the infra checks fail if the template sets the variable or its build
//! properties turn the feature on.
//!
//! With the feature, the variable lists points with the probability of crashing each time a
//! record passes one; unset, each point costs one check of a value read once per process:
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

#[cfg(feature = "faults")]
mod plan;

/// The environment variable that turns crash injection on (read only with the `faults`
/// feature).
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
}

/// Crashes the process here with the probability [`CRASH_POINTS_VAR`] gives `point`: never
/// when it is unset, and never without the `faults` feature, where this is an empty function
/// the compiler removes. `record_id` goes into the crash's log line, so a run can tell which
/// record was hit and follow what recovered it.
#[inline]
pub fn crash_point(point: CrashPoint, record_id: &str) {
    #[cfg(feature = "faults")]
    plan::crash_point(point, record_id);
    #[cfg(not(feature = "faults"))]
    let _ = (point, record_id);
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Output};

    use super::*;

    /// Set for the child process of [`passes_every_point_armed_at_certainty`] only.
    const CHILD_VAR: &str = "EVENTKIT_FAULTS_TEST_CHILD";
    /// What the child prints once it has passed every point alive.
    const SURVIVED: &str = "passed every crash point alive";

    /// Runs in a child process (see [`child`]): every point armed at probability 1.
    #[test]
    #[ignore = "run in a child process by the feature's tests below"]
    fn passes_every_point_armed_at_certainty() {
        if std::env::var_os(CHILD_VAR).is_none() {
            return;
        }
        for point in CrashPoint::ALL {
            crash_point(point, "r-1");
        }
        println!("{SURVIVED}");
    }

    /// This test binary again, running only the test above, with every point armed.
    fn child() -> Output {
        let exe = std::env::current_exe().unwrap();
        let armed = CrashPoint::ALL.map(|point| format!("{}:1", point.name()));
        Command::new(exe)
            .args([
                "faults::tests::passes_every_point_armed_at_certainty",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_VAR, "1")
            .env(CRASH_POINTS_VAR, armed.join(","))
            .output()
            .unwrap()
    }

    #[cfg(not(feature = "faults"))]
    #[test]
    fn without_the_feature_a_set_variable_does_nothing() {
        let output = child();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(SURVIVED),
            "{}: {stdout}",
            output.status
        );
    }

    #[cfg(feature = "faults")]
    #[test]
    fn with_the_feature_a_set_variable_arms_the_points() {
        let output = child();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains(SURVIVED), "{stdout}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            const SIGABRT: i32 = 6;
            assert_eq!(output.status.signal(), Some(SIGABRT), "{}", output.status);
        }
        #[cfg(not(unix))]
        assert!(!output.status.success(), "{}", output.status);
    }
}
