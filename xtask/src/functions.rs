//! The pipeline's functions as the developer commands build them (`cargo xtask chaos | demo
//! | dev` and the end-to-end tests): the binaries `infra/template.yaml` names, built by cargo
//! for this machine with each function's `faults` feature, so that the chaos run can arm
//! crash points (eventkit's `faults`). One feature set for every local run, so that one run's
//! binaries serve the next instead of being rebuilt in each set by turns; a run that does not
//! set `EVENTKIT_CRASH_POINTS` gets functions that behave as deployed ones. Deploy builds
//! (`sam build`) use the packages' defaults, without it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use eventkit::redelivery::RecordBackoff;

use crate::local_lambda::build::{build_binaries, function_binaries};
use crate::local_lambda::stack::Stack;
use crate::local_lambda::template::Template;

/// The cargo features every local build of the functions enables.
pub const LOCAL_FEATURES: [&str; 1] = ["faults"];

/// [`LOCAL_FEATURES`], as `cargo build --features` takes them.
pub fn local_features() -> Vec<String> {
    LOCAL_FEATURES.map(String::from).to_vec()
}

/// Builds the functions `template` declares, cargo's output going to `log`; returns the
/// folder of their binaries.
pub async fn build(template: &Template, release: bool, log: &Path) -> Result<PathBuf> {
    build_binaries(
        &function_binaries(template),
        release,
        &local_features(),
        log,
    )
    .await
}

/// The visibility timeout of the SQS consumers' queues in infra/template.yaml: what a local
/// run's `--visibility-timeout` stands for.
pub const TEMPLATE_VISIBILITY_TIMEOUT: u32 = 100;

/// Puts the SQS consumers' per-record backoff on a local run's time scale: when the
/// template's 100 s visibility timeout is `visibility` s, the default backoff (base 60 s, cap
/// 2 h) shrinks by the same ratio, through `EVENTKIT_RECORD_BACKOFF` on every function (the
/// ones without SQS sources never read it). Without it a local run would wait AWS's hours.
pub fn scale_record_backoff(stack: &mut Stack, visibility: u32) {
    let scale = f64::from(visibility) / f64::from(TEMPLATE_VISIBILITY_TIMEOUT);
    shrink_record_backoff(stack, scale);
}

/// Shrinks the SQS consumers' per-record backoff by `scale` (0.02: one second of the run
/// stands for 50 on AWS), whatever the run's visibility timeout: the chaos run's long
/// outages stand for hours this way.
pub fn shrink_record_backoff(stack: &mut Stack, scale: f64) {
    let Some(backoff) = RecordBackoff::default().backoff() else {
        return;
    };
    let value = format!(
        "{},{}",
        backoff.base().as_secs_f64() * scale,
        backoff.cap().as_secs_f64() * scale
    );
    set_everywhere(stack, orders::wiring::RECORD_BACKOFF, &value);
}

/// Shrinks the circuit breakers' probe interval by `scale`, as the backoff, through
/// `EVENTKIT_BREAKERS` on every function (the ones without breakers never read it).
pub fn shrink_breakers(stack: &mut Stack, scale: f64) {
    use eventkit::breaker::BreakerConfig;
    let value = format!(
        "{},{}",
        (BreakerConfig::DEFAULT_PROBE_INTERVAL.as_secs_f64() * scale).max(0.5),
        (BreakerConfig::DEFAULT_MAX_PROBE_INTERVAL.as_secs_f64() * scale).max(1.0)
    );
    set_everywhere(stack, orders::wiring::BREAKERS, &value);
}

/// Per-record backoff and circuit breakers off: every failed record comes back after its
/// queue's visibility timeout, and every record calls its dependencies whatever they did.
pub fn switch_resilience_off(stack: &mut Stack) {
    set_everywhere(stack, orders::wiring::RECORD_BACKOFF, "off");
    set_everywhere(stack, orders::wiring::BREAKERS, "off");
}

fn set_everywhere(stack: &mut Stack, variable: &str, value: &str) {
    for function in stack.functions.values_mut() {
        function
            .spec
            .environment
            .insert(variable.into(), value.to_string());
    }
}
