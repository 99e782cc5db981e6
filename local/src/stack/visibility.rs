//! A queue's visibility timeout against the timeout of the function that consumes it. AWS
//! refuses an SQS event source mapping whose queue hides a received message for less time
//! than the function may run: the message would come back, and be handed to another
//! invocation, while the first still works on it. A template that asks for that is refused
//! here too; `--visibility-timeout` (the local time scale) only earns a warning, since it
//! is asked for on purpose.

use std::time::Duration;

use serde_json::Value;

use crate::template::scalar_text;

/// SQS's default visibility timeout, for a queue that declares none.
const DEFAULT_SECONDS: u32 = 30;

/// A queue's visibility timeout and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visibility {
    /// The timeout, in seconds.
    pub seconds: u32,
    /// Whether `--visibility-timeout` set it (else the template, or SQS's default).
    pub from_flag: bool,
}

impl Visibility {
    /// The timeout a queue with `properties` gets, `flag` (`--visibility-timeout`) first.
    pub fn of(properties: &Value, flag: Option<u32>) -> Self {
        match flag {
            Some(seconds) => Self {
                seconds,
                from_flag: true,
            },
            None => Self {
                seconds: scalar_text(&properties["VisibilityTimeout"])
                    .parse()
                    .unwrap_or(DEFAULT_SECONDS),
                from_flag: false,
            },
        }
    }
}

/// The template declares a queue that hides its messages for less time than the function
/// consuming it may run: AWS refuses the event source mapping.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{function}.Events.{event}: {queue}'s VisibilityTimeout ({seconds} s) is less than \
     {function}'s Timeout ({timeout} s), and AWS refuses such an event source mapping; raise \
     the VisibilityTimeout (AWS advises six times the function's timeout) or lower the Timeout"
)]
pub struct VisibilityBelowTimeout {
    /// The function (logical id).
    pub function: String,
    /// Its SQS event's name.
    pub event: String,
    /// The queue (logical id).
    pub queue: String,
    /// The queue's visibility timeout, in seconds.
    pub seconds: u32,
    /// The function's timeout, in seconds.
    pub timeout: u64,
}

/// Checks that `function`'s SQS event `event` on `queue` (with `visibility`) fits the
/// function's `timeout`: an error when the template is at fault, a warning to show when
/// `--visibility-timeout` is.
pub fn check(
    function: &str,
    event: &str,
    queue: &str,
    visibility: Visibility,
    timeout: Duration,
) -> Result<Option<String>, VisibilityBelowTimeout> {
    let timeout = timeout.as_secs();
    if u64::from(visibility.seconds) >= timeout {
        return Ok(None);
    }
    if visibility.from_flag {
        return Ok(Some(format!(
            "--visibility-timeout {} is less than {function}'s Timeout ({timeout} s), which \
             AWS refuses for {queue}'s event source mapping: a record whose invocation runs \
             longer comes back to the queue while it runs (and may be received twice)",
            visibility.seconds
        )));
    }
    Err(VisibilityBelowTimeout {
        function: function.into(),
        event: event.into(),
        queue: queue.into(),
        seconds: visibility.seconds,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn a_visibility_below_the_functions_timeout_is_refused_from_the_template_and_warned_from_the_flag(
    ) {
        let ten = Duration::from_secs(10);
        let declared = Visibility::of(&json!({"VisibilityTimeout": 5}), None);
        let error = check("Consumer", "Orders", "OrdersQueue", declared, ten).unwrap_err();
        assert_eq!(error.seconds, 5);
        assert!(
            error.to_string().contains(
                "OrdersQueue's VisibilityTimeout (5 s) is less than Consumer's Timeout (10 s)"
            ),
            "{error}"
        );
        // SQS's default of 30 s covers a 10 s function; a flag below it only warns.
        assert_eq!(
            check("C", "E", "Q", Visibility::of(&json!({}), None), ten),
            Ok(None)
        );
        let flagged = Visibility::of(&json!({"VisibilityTimeout": 60}), Some(1));
        let warning = check("C", "E", "Q", flagged, ten).unwrap().unwrap();
        assert!(warning.starts_with("--visibility-timeout 1 is less than C's Timeout (10 s)"));
        assert_eq!(
            check("C", "E", "Q", Visibility::of(&json!({}), Some(10)), ten),
            Ok(None)
        );
    }
}
