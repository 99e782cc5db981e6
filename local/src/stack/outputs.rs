//! The template's `Outputs` resolved against the created stack, as `sam deploy` prints them
//! (queue URLs, topic ARNs, ...): what a user copies into a command or an environment.

use serde::{Deserialize, Serialize};

use crate::resolver::Resolver;
use crate::template::Output;

/// One output of the stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackOutput {
    /// Its key in the template.
    pub key: String,
    /// Its description, if the template gives one.
    #[serde(default)]
    pub description: Option<String>,
    /// Its value, or why it has none here (it names a resource that is not emulated, say).
    pub value: Result<String, String>,
}

/// The outputs of `declared` whose condition holds, resolved by `resolver`.
pub fn resolve(declared: &[Output], resolver: &Resolver) -> Vec<StackOutput> {
    declared
        .iter()
        .filter(|output| {
            output
                .condition
                .as_deref()
                .is_none_or(|condition| resolver.condition(condition).unwrap_or(false))
        })
        .map(|output| StackOutput {
            key: output.key.clone(),
            description: output.description.clone(),
            value: resolver
                .resolve_string(&output.value)
                .map_err(|error| format!("not resolved locally: {error:#}")),
        })
        .collect()
}

/// The outputs as `sam deploy` lays them out: a block of `Key`, `Description` and `Value`
/// lines per output, indented.
pub fn describe(outputs: &[StackOutput]) -> Vec<String> {
    let mut lines = Vec::new();
    for output in outputs {
        lines.push(format!("  Key          {}", output.key));
        if let Some(description) = &output.description {
            lines.push(format!("  Description  {description}"));
        }
        match &output.value {
            Ok(value) => lines.push(format!("  Value        {value}")),
            Err(why) => lines.push(format!("  Value        ({why})")),
        }
        lines.push(String::new());
    }
    lines.pop();
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::resolver::Attributes;

    #[test]
    fn outputs_resolve_against_the_stack_and_say_why_when_they_cannot() {
        let mut resolver = Resolver::new("s", "us-east-1", HashMap::new());
        resolver.record(
            "Orders",
            Attributes {
                reference: "http://q/s-Orders".into(),
                attributes: [("Arn".to_string(), "arn:q".to_string())].into(),
            },
        );
        let declared = vec![
            Output {
                key: "OrdersUrl".into(),
                description: Some("Where orders go".into()),
                value: json!({"Ref": "Orders"}),
                condition: None,
            },
            Output {
                key: "ApiUrl".into(),
                description: None,
                value: json!({"Fn::GetAtt": ["ServerlessRestApi", "Arn"]}),
                condition: None,
            },
        ];
        let outputs = resolve(&declared, &resolver);
        assert_eq!(outputs[0].value, Ok("http://q/s-Orders".into()));
        assert!(outputs[1].value.is_err());
        let lines = describe(&outputs);
        assert_eq!(lines[0], "  Key          OrdersUrl");
        assert_eq!(lines[1], "  Description  Where orders go");
        assert_eq!(lines[2], "  Value        http://q/s-Orders");
        assert!(
            lines[5].starts_with("  Value        (not resolved locally: "),
            "{lines:?}"
        );
    }
}
