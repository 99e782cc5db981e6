//! Why a dead-lettered message failed: what its attributes say, else what the function
//! logged about its message id.

use std::path::PathBuf;

use aws_sdk_sqs::types::Message;
use serde_json::Value;

/// Why a dead-lettered message failed, as the message itself says: the attributes Lambda
/// gives what its asynchronous invocation dead-letters (`ErrorMessage`, `ErrorCode`) and
/// those EventBridge gives what a rule's target dead-letters (`ERROR_MESSAGE`,
/// `ERROR_CODE`). A queue's redrive adds nothing: then the function's log says why.
pub fn reason_in_attributes(message: &Message) -> Option<String> {
    let attribute = |name: &str| {
        message
            .message_attributes()?
            .get(name)?
            .string_value()
            .map(str::to_string)
    };
    let text = attribute("ErrorMessage").or_else(|| attribute("ERROR_MESSAGE"))?;
    match attribute("ErrorCode").or_else(|| attribute("ERROR_CODE")) {
        Some(code) => Some(format!("{text} (code {code})")),
        None => Some(text),
    }
}

/// A line of a function's log about a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedReason {
    /// The function (logical id) whose log has it.
    pub function: String,
    /// The line's message (a JSON log event's `message`, plus its `error` when it has one),
    /// or the whole line.
    pub text: String,
}

/// The last line of the functions' own output (not the platform's) that names
/// `message_id`: what a function logs about a record it fails, in the logs
/// `functions` lists (logical id and log file).
pub fn reason_in_logs(functions: &[(String, PathBuf)], message_id: &str) -> Option<LoggedReason> {
    let mut last: Option<LoggedReason> = None;
    for (function, log) in functions {
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        let found = text
            .lines()
            .rev()
            .filter(|line| line.contains(message_id))
            .find_map(reason_of_line);
        if let Some(text) = found {
            last = Some(LoggedReason {
                function: function.clone(),
                text,
            });
        }
    }
    last
}

/// What a log line says, or `None` for the platform's own lines (the local Lambda's
/// `{"type": "platform.…"}`, Lambda's `START` / `END` / `REPORT` / `INIT_START` lines).
pub fn reason_of_line(line: &str) -> Option<String> {
    let line = line.trim_end();
    if [
        "START RequestId",
        "END RequestId",
        "REPORT RequestId",
        "INIT_START",
    ]
    .iter()
    .any(|platform| line.starts_with(platform))
    {
        return None;
    }
    let json: Option<Value> = serde_json::from_str(line).ok();
    match json {
        Some(json) if json["type"].as_str().is_some_and(is_platform) => None,
        Some(json) if json["message"].is_string() => {
            let mut text = json["message"].as_str().unwrap_or_default().to_string();
            if let Some(error) = json["error"].as_str() {
                text.push_str(&format!(": {error}"));
            }
            Some(text)
        }
        _ => Some(line.to_string()),
    }
}

fn is_platform(kind: &str) -> bool {
    kind.starts_with("platform.")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_sdk_sqs::types::MessageAttributeValue;

    use super::*;

    fn message(id: &str, body: &str) -> Message {
        Message::builder().message_id(id).body(body).build()
    }

    #[test]
    fn a_reason_comes_from_the_attributes_or_from_the_functions_own_log_lines() {
        let attributed = Message::builder()
            .message_id("m")
            .message_attributes(
                "ErrorMessage",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("boom")
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(reason_in_attributes(&attributed).as_deref(), Some("boom"));
        assert_eq!(reason_in_attributes(&message("m", "x")), None);

        let log = std::env::temp_dir().join(format!("reason-{}.log", uuid::Uuid::new_v4()));
        std::fs::write(
            &log,
            "message m-1: first try failed\n\
             {\"type\":\"platform.start\",\"record\":{\"id\":\"m-1\"}}\n\
             {\"message\":\"record m-1 failed\",\"error\":\"quantity 0\"}\n\
             message m-2: fine\n",
        )
        .unwrap();
        let functions = vec![("Consumer".to_string(), log.clone())];
        assert_eq!(
            reason_in_logs(&functions, "m-1"),
            Some(LoggedReason {
                function: "Consumer".into(),
                text: "record m-1 failed: quantity 0".into()
            })
        );
        assert_eq!(reason_in_logs(&functions, "m-3"), None);
        std::fs::remove_file(log).unwrap();
    }
}
