//! `Schedule` and `ScheduleV2` events through the CLI, on a plain lambda_runtime function
//! (tests/apps' schedule probe): a scheduled rule every minute with its own `Input`, an
//! EventBridge Scheduler schedule every minute with the default "Scheduled Event", and a
//! disabled schedule that never fires. What the template's schedules cannot do locally (a
//! time zone) is named at start-up.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

/// The payloads the probe printed (`invoked with <json>`).
fn payloads(app: App) -> Vec<Value> {
    let log = root()
        .join("tests/apps/templates/.local-cloud/logs")
        .join(app.stack)
        .join("ScheduleProbe.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once("invoked with ").map(|(_, json)| json))
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect()
}

#[test]
fn schedules_fire_with_their_input_or_the_scheduled_event_and_disabled_ones_never() {
    cloud_env();
    let stack = format!("cron-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let app = App {
        template: "tests/apps/templates/schedules.yaml",
        stack: &stack,
    };
    let running = Running::start(app, &["--no-watch"]);
    let started = running.text();
    assert!(
        started.contains("ScheduleProbe.Events.EveryMinuteV2.ScheduleExpressionTimezone"),
        "{started}"
    );

    // Both fire within a minute: the cron at the next minute, the rate a minute after the
    // start. (That they fire again is the expressions' unit tests' business.)
    wait_until("each schedule to fire", Duration::from_secs(90), || {
        let seen = payloads(app);
        let input = seen.iter().filter(|p| p["job"] == "report").count();
        let scheduled = seen
            .iter()
            .filter(|p| p["detail-type"] == "Scheduled Event")
            .count();
        input >= 1 && scheduled >= 1
    });
    let seen = payloads(app);
    let scheduled: Vec<&Value> = seen
        .iter()
        .filter(|p| p["detail-type"] == "Scheduled Event")
        .collect();
    for event in &scheduled {
        assert_eq!(event["source"], "aws.scheduler", "{event}");
        let resource = event["resources"][0].as_str().unwrap_or_default();
        assert!(resource.starts_with("arn:aws:scheduler:"), "{event}");
    }
    // The rule's input is the whole payload.
    let reports: Vec<&Value> = seen.iter().filter(|p| p["job"] == "report").collect();
    for report in &reports {
        assert_eq!(*report, &serde_json::json!({"job": "report"}));
    }
    assert!(
        seen.iter().all(|p| p["job"] != "never"),
        "the disabled schedule fired: {seen:?}"
    );
    assert_eq!(
        seen.len(),
        reports.len() + scheduled.len(),
        "nothing else invoked it: {seen:?}"
    );
    running.stop();
}
