//! Scheduled invocations (`Schedule` and `ScheduleV2` events). At each time the expression
//! names, the function's delivery queue receives what EventBridge (a scheduled rule) or
//! EventBridge Scheduler sends: the event's `Input` as given, else a "Scheduled Event". From
//! there it is an asynchronous invocation like any other (retries, `DeadLetterQueue`,
//! `OnFailure`).
//!
//! Expressions: `rate(N minute(s)|hour(s)|day(s))`, counted from the start of the run as
//! EventBridge counts from the rule's creation; `cron(...)` with EventBridge's six fields
//! (minutes, hours, day of month, month, day of week 1-7 = SUN-SAT, year; `?`, `L`, `W`,
//! `#`); ScheduleV2's one-time `at(yyyy-mm-ddThh:mm:ss)`. All in UTC: a
//! `ScheduleExpressionTimezone` is named at start-up as not emulated.

use std::str::FromStr;

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::MessageAttributeValue;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::payloads::PAYLOAD_AS_IS;
use crate::clients::Clients;
use crate::cloud::REGION;
use crate::resources::QueueInfo;
use crate::template::ACCOUNT_ID;

/// When a schedule fires.
#[derive(Clone, Debug)]
pub enum Expression {
    /// Every period, counted from the start.
    Rate(TimeDelta),
    /// At the times the cron fields name.
    Cron(Box<Cron>),
    /// Once.
    At(DateTime<Utc>),
}

impl FromStr for Expression {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(rate) = inner("rate(") {
            let (count, unit) = rate
                .split_once(char::is_whitespace)
                .with_context(|| format!("{text}: expected rate(N unit)"))?;
            let count: i64 = count
                .parse()
                .ok()
                .filter(|count| *count > 0)
                .with_context(|| format!("{text}: the rate's value must be a positive integer"))?;
            let period = match unit.trim() {
                "minute" | "minutes" => TimeDelta::minutes(count),
                "hour" | "hours" => TimeDelta::hours(count),
                "day" | "days" => TimeDelta::days(count),
                other => bail!("{text}: unknown unit {other:?} (minutes, hours or days)"),
            };
            Ok(Self::Rate(period))
        } else if let Some(fields) = inner("cron(") {
            if fields.split_whitespace().count() != 6 {
                bail!("{text}: EventBridge's cron has six fields (minutes hours day-of-month month day-of-week year)");
            }
            // EventBridge's fields are Quartz's without the seconds.
            let cron = CronParser::builder()
                .seconds(Seconds::Required)
                .year(Year::Required)
                .alternative_weekdays(true)
                .build()
                .parse(&format!("0 {fields}"))
                .with_context(|| format!("{text}: not a cron expression"))?;
            Ok(Self::Cron(Box::new(cron)))
        } else if let Some(at) = inner("at(") {
            let at = NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S")
                .with_context(|| format!("{text}: expected at(yyyy-mm-ddThh:mm:ss)"))?;
            Ok(Self::At(at.and_utc()))
        } else {
            bail!("{text}: expected rate(...), cron(...) or at(...)")
        }
    }
}

impl Expression {
    /// The first time after `after` the schedule fires, for a schedule that started at
    /// `start`; `None` if it never fires again.
    pub fn next_after(&self, after: DateTime<Utc>, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Rate(period) => {
                let periods = (after - start).num_milliseconds() / period.num_milliseconds();
                Some(start + *period * i32::try_from(periods + 1).ok()?)
            }
            Self::Cron(cron) => cron.find_next_occurrence(&after, false).ok(),
            Self::At(at) => (*at > after).then_some(*at),
        }
    }
}

/// Which service fires the schedule: what the default event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    /// A scheduled EventBridge rule (`Schedule`).
    Rule,
    /// EventBridge Scheduler (`ScheduleV2`).
    Scheduler,
}

/// One `Schedule` or `ScheduleV2` event of a function.
#[derive(Clone, Debug)]
pub struct ScheduleSource {
    /// The rule's or schedule's name.
    pub name: String,
    /// Rule or Scheduler.
    pub scheduler: Scheduler,
    /// When it fires.
    pub expression: Expression,
    /// The `Input`, as given (JSON text).
    pub input: Option<String>,
}

impl ScheduleSource {
    /// What the function's delivery queue receives when the schedule fires at `time`, and
    /// whether it is the payload as it is.
    pub fn delivery(&self, time: DateTime<Utc>, region: &str, account: &str) -> (String, bool) {
        if let Some(input) = &self.input {
            return (input.clone(), true);
        }
        let (source, resource) = match self.scheduler {
            Scheduler::Rule => (
                "aws.events",
                format!("arn:aws:events:{region}:{account}:rule/{}", self.name),
            ),
            Scheduler::Scheduler => (
                "aws.scheduler",
                format!(
                    "arn:aws:scheduler:{region}:{account}:schedule/default/{}",
                    self.name
                ),
            ),
        };
        let event = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": source,
            "account": account,
            "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": region,
            "resources": [resource],
            "detail": {}
        });
        (event.to_string(), false)
    }
}

/// Fires `source` into `queue` (the function's delivery queue) until `stopped`.
pub async fn run_schedule(
    clients: Clients,
    source: ScheduleSource,
    queue: QueueInfo,
    stopped: CancellationToken,
) {
    let start = Utc::now();
    let mut after = start;
    while let Some(next) = source.expression.next_after(after, start) {
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped.cancelled() => return,
        }
        let (body, as_is) = source.delivery(next, REGION, ACCOUNT_ID);
        let mut send = clients
            .sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(body);
        if as_is {
            let marked = MessageAttributeValue::builder()
                .data_type("String")
                .string_value("true")
                .build();
            if let Ok(marked) = marked {
                send = send.message_attributes(PAYLOAD_AS_IS, marked);
            }
        }
        // A send that fails is a firing lost, as when EventBridge cannot reach Lambda; the
        // next one comes at its time.
        let _ = send.send().await;
        after = next;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::event_sources::payloads::payload_as_is;
    use serde_json::Value;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(expression: &str, after: &str) -> Option<DateTime<Utc>> {
        let start = at("2026-11-30T10:00:00Z");
        Expression::from_str(expression)
            .unwrap()
            .next_after(at(after), start)
    }

    #[test]
    fn rates_count_from_the_start() {
        assert_eq!(
            next("rate(5 minutes)", "2026-11-30T10:00:00Z"),
            Some(at("2026-11-30T10:05:00Z"))
        );
        assert_eq!(
            next("rate(5 minutes)", "2026-11-30T10:07:30Z"),
            Some(at("2026-11-30T10:10:00Z"))
        );
        assert_eq!(
            next("rate(1 day)", "2026-11-30T10:00:00Z"),
            Some(at("2026-12-01T10:00:00Z"))
        );
        for bad in [
            "rate(0 minutes)",
            "rate(5 weeks)",
            "rate(five minutes)",
            "rate(5)",
        ] {
            assert!(Expression::from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_has_eventbridges_six_fields_and_sunday_is_one() {
        // 12:00 UTC Monday to Friday: 2026-11-30 is a Monday.
        assert_eq!(
            next("cron(0 12 ? * MON-FRI *)", "2026-11-30T10:00:00Z"),
            Some(at("2026-11-30T12:00:00Z"))
        );
        // Day of week 1 is Sunday, as in EventBridge (not Monday, as in Unix cron).
        assert_eq!(
            next("cron(0 8 ? * 1 *)", "2026-11-30T10:00:00Z"),
            Some(at("2026-12-06T08:00:00Z"))
        );
        // Every 15 minutes.
        assert_eq!(
            next("cron(0/15 * * * ? *)", "2026-11-30T10:01:00Z"),
            Some(at("2026-11-30T10:15:00Z"))
        );
        // The last day of the month.
        assert_eq!(
            next("cron(0 0 L * ? *)", "2026-12-01T00:00:00Z"),
            Some(at("2026-12-31T00:00:00Z"))
        );
        // A year field that has passed: never again.
        assert_eq!(next("cron(0 12 * * ? 2025)", "2026-11-30T10:00:00Z"), None);
        assert!(
            Expression::from_str("cron(0 12 * * ?)").is_err(),
            "five fields"
        );
    }

    #[test]
    fn at_fires_once() {
        assert_eq!(
            next("at(2026-12-24T18:00:00)", "2026-11-30T10:00:00Z"),
            Some(at("2026-12-24T18:00:00Z"))
        );
        assert_eq!(
            next("at(2026-12-24T18:00:00)", "2026-12-24T18:00:00Z"),
            None
        );
        assert!(Expression::from_str("at(tomorrow)").is_err());
        assert!(Expression::from_str("every(5 minutes)").is_err());
    }

    #[test]
    fn the_default_event_names_the_rule_or_schedule_and_input_goes_as_it_is() {
        let source = ScheduleSource {
            name: "nightly".into(),
            scheduler: Scheduler::Rule,
            expression: Expression::from_str("rate(1 day)").unwrap(),
            input: None,
        };
        let (body, as_is) =
            source.delivery(at("2026-11-30T10:00:00Z"), "us-east-1", "000000000000");
        assert!(!as_is);
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.events");
        assert_eq!(event["time"], "2026-11-30T10:00:00Z");
        assert_eq!(
            event["resources"][0],
            "arn:aws:events:us-east-1:000000000000:rule/nightly"
        );
        let v2 = ScheduleSource {
            scheduler: Scheduler::Scheduler,
            ..source.clone()
        };
        let (body, _) = v2.delivery(at("2026-11-30T10:00:00Z"), "us-east-1", "000000000000");
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["source"], "aws.scheduler");
        let with_input = ScheduleSource {
            input: Some(r#"{"job": "report"}"#.into()),
            ..source
        };
        let (body, as_is) = with_input.delivery(at("2026-11-30T10:00:00Z"), "us-east-1", "0");
        assert!(as_is);
        assert_eq!(payload_as_is(&body), json!({"job": "report"}));
    }
}
