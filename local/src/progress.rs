//! Progress for long-running steps: a spinner with the elapsed time while a step runs, and a
//! line that stays behind saying how it ended.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A step of a long-running command, shown as a spinner until it finishes.
pub struct Step {
    bar: ProgressBar,
    label: String,
}

impl Step {
    /// Starts showing `label` with a spinner and the elapsed time.
    pub fn start(label: impl Into<String>) -> Self {
        let label = label.into();
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(label.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar, label }
    }

    /// Updates the detail shown after the label (for example the current sub-step).
    pub fn detail(&self, detail: &str) {
        self.bar.set_message(format!("{}: {detail}", self.label));
    }

    /// Finishes the step with a check mark and how long it took.
    pub fn done(self, outcome: &str) {
        let elapsed = self.bar.elapsed();
        self.bar.finish_and_clear();
        println!(
            "  ✓ {}: {outcome} ({:.1}s)",
            self.label,
            elapsed.as_secs_f64()
        );
    }

    /// Finishes the step with a cross; the caller reports the error.
    pub fn fail(self) {
        self.bar.finish_and_clear();
        println!("  ✗ {}", self.label);
    }
}
