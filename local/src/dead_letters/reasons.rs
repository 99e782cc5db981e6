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

/// The longest line of a function's own output quoted as a reason: a longer one naming the
/// message is a dump (of the whole batch, say), not what the function said about it.
const QUOTED: usize = 300;

/// Why `message_id` failed, from the logs `functions` lists (logical id and log file): the
/// last time the local event source kept it in its queue (named in `batchItemFailures`, or
/// the invocation failed), with the function's own last short line about it; else that line
/// alone.
pub fn reason_in_logs(functions: &[(String, PathBuf)], message_id: &str) -> Option<LoggedReason> {
    let mut kept: Option<LoggedReason> = None;
    let mut said: Option<LoggedReason> = None;
    for (function, log) in functions {
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        let naming = || text.lines().rev().filter(|line| line.contains(message_id));
        if let Some(text) = naming().find_map(|line| kept_in_queue(line, message_id)) {
            kept = Some(LoggedReason {
                function: function.clone(),
                text,
            });
        }
        let own = naming()
            .filter_map(reason_of_line)
            .find(|text| text.len() <= QUOTED);
        if let Some(text) = own {
            said = Some(LoggedReason {
                function: function.clone(),
                text,
            });
        }
    }
    match (kept, said) {
        (Some(kept), Some(said)) if said.function == kept.function => Some(LoggedReason {
            text: format!("{}; it logged: {}", kept.text, said.text),
            ..kept
        }),
        (Some(kept), _) => Some(kept),
        (None, said) => said.map(|said| LoggedReason {
            text: format!("logged: {}", said.text),
            ..said
        }),
    }
}

/// What a `platform.recordsKept` line says of `message_id`: why the invocation left it in
/// its queue, which invocation, and which receive it was.
fn kept_in_queue(line: &str, message_id: &str) -> Option<String> {
    let json: Value = serde_json::from_str(line).ok()?;
    if json["type"] != "platform.recordsKept" {
        return None;
    }
    let record = &json["record"];
    let kept = record["records"]
        .as_array()?
        .iter()
        .find(|kept| kept["messageId"] == message_id)?;
    let mut text = format!(
        "{} (invocation {}",
        record["why"].as_str().unwrap_or("kept in its queue"),
        record["requestId"].as_str().unwrap_or("unknown"),
    );
    if let Some(receive) = kept["receiveCount"].as_str().filter(|r| !r.is_empty()) {
        text.push_str(&format!(", receive {receive}"));
    }
    if let Some(queue) = record["queue"].as_str() {
        text.push_str(&format!(" from {queue}"));
    }
    text.push(')');
    Some(text)
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
                text: "logged: record m-1 failed: quantity 0".into()
            })
        );
        assert_eq!(reason_in_logs(&functions, "m-3"), None);
        std::fs::remove_file(log).unwrap();
    }

    #[test]
    fn a_record_named_in_batch_item_failures_says_so_rather_than_quoting_a_dump() {
        let log = std::env::temp_dir().join(format!("reason-{}.log", uuid::Uuid::new_v4()));
        let dump = format!(
            "batch: [{{\"messageId\": \"m-1\", \"body\": \"{}\"}}]",
            "x".repeat(4000)
        );
        let kept = |request: &str, receive: &str| {
            serde_json::json!({"type": "platform.recordsKept", "record": {
                "requestId": request, "queue": "s-Orders", "why": "named it in batchItemFailures",
                "records": [{"messageId": "m-1", "receiveCount": receive}]}})
            .to_string()
        };
        std::fs::write(
            &log,
            format!(
                "message m-1: rejected, quantity 0\n{dump}\n{}\n{dump}\n{}\n",
                kept("r-1", "1"),
                kept("r-2", "2")
            ),
        )
        .unwrap();
        let functions = vec![("Consumer".to_string(), log.clone())];
        assert_eq!(
            reason_in_logs(&functions, "m-1").unwrap().text,
            "named it in batchItemFailures (invocation r-2, receive 2 from s-Orders); it logged: \
             message m-1: rejected, quantity 0"
        );
        std::fs::remove_file(log).unwrap();
    }
}
