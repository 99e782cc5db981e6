//! The crash plan read from [`CRASH_POINTS_VAR`], and the crash itself: compiled only with
//! the `faults` feature.

use std::sync::OnceLock;

use super::{CrashPoint, CRASH_POINTS_VAR};

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
                let point = point_named(name.trim())?;
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

fn point_named(name: &str) -> Option<CrashPoint> {
    CrashPoint::ALL
        .into_iter()
        .find(|point| point.name() == name)
}

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let plan = std::env::var(CRASH_POINTS_VAR)
            .map(|spec| Plan::parse(&spec))
            .unwrap_or_default();
        if !plan.chances.is_empty() {
            // Said once per process: a function that crashes on purpose says so.
            tracing::warn!(chances = ?plan.chances, "crash points armed ({CRASH_POINTS_VAR})");
        }
        plan
    })
}

/// See [`super::crash_point`].
pub(super) fn crash_point(point: CrashPoint, record_id: &str) {
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
            assert_eq!(point_named(point.name()), Some(point));
        }
    }
}
