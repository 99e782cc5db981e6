//! Reading `infra/template.yaml` itself, so the local pipeline is built from the same
//! declarations as the deployed stack and the two cannot drift.
//!
//! CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...) are turned into their
//! long forms (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`) while the YAML becomes JSON, so the
//! rest of the module sees one shape. [`Resolver`](super::resolver::Resolver) then evaluates
//! the intrinsic functions against the resources created so far.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

/// LocalStack's account id.
pub const ACCOUNT_ID: &str = "000000000000";

/// The template files SAM looks for when none is named, in the order it looks.
pub const TEMPLATE_FILES: [&str; 3] = ["template.yaml", "template.yml", "template.json"];

/// No template where one was looked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "no SAM template in {} (looked for {}); pass --template PATH",
    folder.display(),
    TEMPLATE_FILES.join(", ")
)]
pub struct TemplateNotFound {
    /// The folder looked in.
    pub folder: PathBuf,
}

/// The folder of the template at `path` (`.` for a bare file name): where its `CodeUri`s
/// start.
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

/// The application's template in `folder`, found as SAM finds it when `--template` is not
/// given: the first of [`TEMPLATE_FILES`] that exists.
pub fn find_template(folder: &Path) -> Result<PathBuf, TemplateNotFound> {
    TEMPLATE_FILES
        .iter()
        .map(|name| folder.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| TemplateNotFound {
            folder: folder.to_path_buf(),
        })
}

/// A parsed template: parameters, conditions, the `Globals.Function` section and the
/// resources.
#[derive(Clone, Debug)]
pub struct Template {
    /// Parameter name to its default value (if any).
    pub parameters: BTreeMap<String, Option<String>>,
    /// Condition name to its (unevaluated) condition function.
    pub conditions: BTreeMap<String, Value>,
    /// SAM's `Globals.Function`, merged into every `AWS::Serverless::Function`.
    pub function_globals: Value,
    /// The resources, by logical id.
    pub resources: Vec<Resource>,
    /// The `Outputs` section, by key.
    pub outputs: Vec<Output>,
}

/// One output of the template (`Outputs`), its value still unresolved.
#[derive(Clone, Debug)]
pub struct Output {
    /// Its key.
    pub key: String,
    /// Its `Description`, if any.
    pub description: Option<String>,
    /// Its `Value`, intrinsic functions unresolved.
    pub value: Value,
    /// The condition that decides whether it exists (`Condition`), if any.
    pub condition: Option<String>,
}

/// One resource of the template.
#[derive(Clone, Debug)]
pub struct Resource {
    /// Its logical id.
    pub logical_id: String,
    /// Its type, e.g. `AWS::SQS::Queue`.
    pub kind: String,
    /// Its properties, intrinsic functions still unresolved.
    pub properties: Value,
    /// Its `Metadata` (SAM build properties live there).
    pub metadata: Value,
    /// The condition that decides whether it exists (`Condition`), if any.
    pub condition: Option<String>,
}

impl Template {
    /// Reads and parses the template at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses a template's YAML text.
    pub fn parse(text: &str) -> Result<Self> {
        let yaml: Yaml = serde_norway::from_str(text)?;
        let document = to_json(yaml)?;
        let parameters = document["Parameters"]
            .as_object()
            .map(|parameters| {
                parameters
                    .iter()
                    .map(|(name, spec)| (name.clone(), spec.get("Default").map(scalar_text)))
                    .collect()
            })
            .unwrap_or_default();
        let Some(resources) = document["Resources"].as_object() else {
            bail!("the template has no Resources");
        };
        let resources = resources
            .iter()
            .map(|(logical_id, resource)| {
                let kind = resource["Type"]
                    .as_str()
                    .with_context(|| format!("resource {logical_id} has no Type"))?;
                Ok(Resource {
                    logical_id: logical_id.clone(),
                    kind: kind.to_string(),
                    properties: resource
                        .get("Properties")
                        .cloned()
                        .unwrap_or(Value::Object(Map::new())),
                    metadata: resource.get("Metadata").cloned().unwrap_or(Value::Null),
                    condition: resource
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            })
            .collect::<Result<_>>()?;
        let conditions = document["Conditions"]
            .as_object()
            .map(|conditions| {
                conditions
                    .iter()
                    .map(|(name, condition)| (name.clone(), condition.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let outputs = document["Outputs"]
            .as_object()
            .map(|outputs| {
                outputs
                    .iter()
                    .map(|(key, output)| Output {
                        key: key.clone(),
                        description: output["Description"].as_str().map(str::to_string),
                        value: output["Value"].clone(),
                        condition: output["Condition"].as_str().map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            parameters,
            conditions,
            function_globals: document["Globals"]["Function"].clone(),
            resources,
            outputs,
        })
    }

    /// The resource named `logical_id`.
    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.logical_id == logical_id)
    }

    /// The resources whose type is one of `kinds`, ordered so that each comes after every
    /// resource it references.
    pub fn in_dependency_order(&self, kinds: &[&str]) -> Result<Vec<&Resource>> {
        let wanted: Vec<&Resource> = self
            .resources
            .iter()
            .filter(|r| kinds.contains(&r.kind.as_str()))
            .collect();
        let names: BTreeSet<&str> = wanted.iter().map(|r| r.logical_id.as_str()).collect();
        let mut ordered: Vec<&Resource> = Vec::new();
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        while ordered.len() < wanted.len() {
            let before = ordered.len();
            for resource in &wanted {
                if placed.contains(resource.logical_id.as_str()) {
                    continue;
                }
                let ready = references(&resource.properties)
                    .iter()
                    .all(|name| !names.contains(name.as_str()) || placed.contains(name.as_str()));
                if ready {
                    placed.insert(&resource.logical_id);
                    ordered.push(resource);
                }
            }
            if ordered.len() == before {
                let stuck: Vec<&str> = names.difference(&placed).copied().collect();
                bail!("circular references between {}", stuck.join(", "));
            }
        }
        Ok(ordered)
    }
}

/// The logical ids (and parameter names) an unresolved value refers to.
pub fn references(value: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) if map.len() == 1 => {
            if let Some(Value::String(name)) = map.get("Ref") {
                found.insert(name.clone());
            } else if let Some(Value::Array(parts)) = map.get("Fn::GetAtt") {
                if let Some(Value::String(name)) = parts.first() {
                    found.insert(name.clone());
                }
            } else if let Some(sub) = map.get("Fn::Sub") {
                let text = match sub {
                    Value::Array(parts) => parts.first().and_then(Value::as_str).unwrap_or(""),
                    other => other.as_str().unwrap_or(""),
                };
                for name in sub_variables(text) {
                    let logical = name.split('.').next().unwrap_or(&name).to_string();
                    found.insert(logical);
                }
            }
            map.values().for_each(|v| collect_references(v, found));
        }
        Value::Object(map) => map.values().for_each(|v| collect_references(v, found)),
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// The `${...}` variables of a `Fn::Sub` string (`${!Literal}` escapes excluded).
fn sub_variables(text: &str) -> Vec<String> {
    let mut variables = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            variables.push(name.trim().to_string());
        }
        rest = &after[end + 1..];
    }
    variables
}

/// A scalar's text (numbers and booleans as CloudFormation passes them: as strings).
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// YAML to JSON, short-form intrinsic tags to their long forms.
fn to_json(yaml: Yaml) -> Result<Value> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => serde_json::to_value(number)?,
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_>>()?)
        }
        Yaml::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, member) in mapping {
                let key = match key {
                    Yaml::String(text) => text,
                    other => serde_norway::to_string(&other)?.trim().to_string(),
                };
                map.insert(key, to_json(member)?);
            }
            Value::Object(map)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let argument = to_json(tagged.value)?;
            let argument = match (name, argument) {
                // `!GetAtt Resource.Attribute` is the short form of a two-item list.
                ("GetAtt", Value::String(text)) => Value::Array(
                    text.splitn(2, '.')
                        .map(|part| Value::String(part.to_string()))
                        .collect(),
                ),
                (_, argument) => argument,
            };
            let function = if name == "Ref" || name == "Condition" {
                name.to_string()
            } else {
                format!("Fn::{name}")
            };
            Value::Object(Map::from_iter([(function, argument)]))
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::resolver::{Attributes, Resolver};

    const TEMPLATE: &str = r#"
Parameters:
  LogLevel:
    Type: String
    Default: INFO
Globals:
  Function:
    Timeout: 15
Resources:
  Dlq:
    Type: AWS::SQS::Queue
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 5
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-orders
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: { Ref: Bus }
      Description: !Sub "rule of ${Bus} at ${Queue.Arn} ${!Literal}"
      Tags: !Join [",", [a, !Ref LogLevel]]
"#;

    #[test]
    fn a_template_is_found_as_sam_finds_it() {
        let folder = std::env::temp_dir().join(format!("templates-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&folder).unwrap();
        let missing = find_template(&folder).unwrap_err().to_string();
        for name in TEMPLATE_FILES {
            assert!(missing.contains(name), "{missing}");
        }
        std::fs::write(folder.join("template.json"), "{}").unwrap();
        assert_eq!(
            find_template(&folder).unwrap(),
            folder.join("template.json")
        );
        std::fs::write(folder.join("template.yml"), "").unwrap();
        assert_eq!(find_template(&folder).unwrap(), folder.join("template.yml"));
        std::fs::write(folder.join("template.yaml"), "").unwrap();
        assert_eq!(
            find_template(&folder).unwrap(),
            folder.join("template.yaml")
        );
        // A folder by one of the names is not a template.
        let nested = folder.join("nested");
        std::fs::create_dir_all(nested.join("template.yaml")).unwrap();
        std::fs::write(nested.join("template.yml"), "").unwrap();
        assert_eq!(find_template(&nested).unwrap(), nested.join("template.yml"));
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn short_and_long_forms_resolve_alike_in_dependency_order() {
        let template = Template::parse(TEMPLATE).unwrap();
        assert_eq!(template.parameters["LogLevel"].as_deref(), Some("INFO"));
        assert_eq!(template.function_globals["Timeout"], json!(15));
        let order: Vec<&str> = template
            .in_dependency_order(&[
                "AWS::SQS::Queue",
                "AWS::Events::EventBus",
                "AWS::Events::Rule",
            ])
            .unwrap()
            .iter()
            .map(|r| r.logical_id.as_str())
            .collect();
        let position = |name: &str| order.iter().position(|n| *n == name).unwrap();
        assert_eq!(order.len(), 4);
        assert!(position("Dlq") < position("Queue"), "{order:?}");
        assert!(position("Queue") < position("Rule"), "{order:?}");
        assert!(position("Bus") < position("Rule"), "{order:?}");

        let parameters = HashMap::from([("LogLevel".to_string(), "DEBUG".to_string())]);
        let mut resolver = Resolver::new("stack", "us-east-1", parameters);
        let queue_attributes = |arn: &str| Attributes {
            reference: format!("http://q/{arn}"),
            attributes: HashMap::from([("Arn".to_string(), arn.to_string())]),
        };
        resolver.record("Dlq", queue_attributes("arn:dlq"));
        resolver.record("Queue", queue_attributes("arn:queue"));
        let queue = template.resource("Queue").unwrap();
        assert_eq!(
            resolver.resolve(&queue.properties).unwrap()["RedrivePolicy"]["deadLetterTargetArn"],
            "arn:dlq"
        );
        let bus = template.resource("Bus").unwrap();
        let name = resolver.resolve(&bus.properties["Name"]).unwrap();
        assert_eq!(name, "stack-orders");
        resolver.record(
            "Bus",
            Attributes {
                reference: "stack-orders".into(),
                ..Attributes::default()
            },
        );
        let rule = resolver
            .resolve(&template.resource("Rule").unwrap().properties)
            .unwrap();
        assert_eq!(rule["EventBusName"], "stack-orders");
        assert_eq!(
            rule["Description"],
            "rule of stack-orders at arn:queue ${Literal}"
        );
        assert_eq!(rule["Tags"], "a,DEBUG");
    }

    const CONDITIONAL: &str = r#"
Parameters:
  Key:
    Type: String
    Default: aws-managed
  Email:
    Type: String
    Default: ""
  Principals:
    Type: CommaDelimitedList
    Default: ""
Conditions:
  Managed: !Equals [!Ref Key, customer-managed]
  HasEmail: !Not [!Equals [!Ref Email, ""]]
  HasPrincipals: !Not [!Equals [!Join ["", !Ref Principals], ""]]
  Either: !Or [!Condition Managed, !Condition HasEmail]
  Both: !And [!Condition Managed, !Condition HasPrincipals]
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      KmsMasterKeyId: !If [Managed, key-arn, !Ref AWS::NoValue]
      Tags:
        - !If [HasEmail, {Key: email, Value: !Ref Email}, !Ref AWS::NoValue]
        - Key: last
          Value: !Select [2, !Split ["/", "rule/bus/name"]]
  Subscription:
    Type: AWS::SNS::Subscription
    Condition: HasEmail
"#;

    #[test]
    fn conditions_decide_fn_if_and_novalue_removes_what_it_stands_for() {
        let template = Template::parse(CONDITIONAL).unwrap();
        assert_eq!(
            template
                .resource("Subscription")
                .unwrap()
                .condition
                .as_deref(),
            Some("HasEmail")
        );
        let resolver = |parameters: &[(&str, &str)]| {
            let parameters = template
                .parameters
                .iter()
                .filter_map(|(name, default)| Some((name.clone(), default.clone()?)))
                .chain(
                    parameters
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                )
                .collect();
            Resolver::new("stack", "us-east-1", parameters)
                .with_conditions(template.conditions.clone())
        };
        let topic = &template.resource("Topic").unwrap().properties;

        let defaults = resolver(&[]);
        for (condition, holds) in [
            ("Managed", false),
            ("HasEmail", false),
            ("HasPrincipals", false),
            ("Either", false),
            ("Both", false),
        ] {
            assert_eq!(defaults.condition(condition).unwrap(), holds, "{condition}");
        }
        assert_eq!(
            defaults.resolve(topic).unwrap(),
            json!({"Tags": [{"Key": "last", "Value": "name"}]})
        );

        let set = resolver(&[
            ("Key", "customer-managed"),
            ("Email", "ops@example.com"),
            ("Principals", "111111111111,222222222222"),
        ]);
        assert!(set.condition("Either").unwrap() && set.condition("Both").unwrap());
        assert_eq!(
            set.resolve(topic).unwrap(),
            json!({
                "KmsMasterKeyId": "key-arn",
                "Tags": [
                    {"Key": "email", "Value": "ops@example.com"},
                    {"Key": "last", "Value": "name"}
                ]
            })
        );
        assert!(set.condition("Missing").is_err());
    }

    #[test]
    fn an_unknown_reference_is_an_error_naming_it() {
        let resolver = Resolver::new("stack", "us-east-1", HashMap::new());
        let error = resolver
            .resolve(&json!({"Fn::GetAtt": ["Missing", "Arn"]}))
            .unwrap_err();
        assert!(error.to_string().contains("Missing.Arn"), "{error}");
    }
}
