//! CloudFormation's intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`,
//! `Fn::Select`) evaluated against the parameters, the pseudo parameters and the resources
//! created so far; anything else is an error naming it, never a silently wrong value.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use super::template::{scalar_text, ACCOUNT_ID};

/// What a created resource answers to `Ref` and `Fn::GetAtt`.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    /// The value of `!Ref`.
    pub reference: String,
    /// The values of `!GetAtt Resource.<name>`.
    pub attributes: HashMap<String, String>,
}

/// Evaluates intrinsic functions against the parameters, the pseudo parameters and the
/// resources created so far.
#[derive(Clone, Debug)]
pub struct Resolver {
    pseudo: HashMap<String, String>,
    parameters: HashMap<String, String>,
    resources: HashMap<String, Attributes>,
}

impl Resolver {
    /// A resolver for a stack named `stack_name` in `region`, with the parameters' values.
    pub fn new(stack_name: &str, region: &str, parameters: HashMap<String, String>) -> Self {
        let pseudo = [
            ("AWS::StackName", stack_name.to_string()),
            ("AWS::Region", region.to_string()),
            ("AWS::AccountId", ACCOUNT_ID.to_string()),
            ("AWS::Partition", "aws".to_string()),
            ("AWS::URLSuffix", "amazonaws.com".to_string()),
            (
                "AWS::StackId",
                format!("arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local"),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        Self {
            pseudo,
            parameters,
            resources: HashMap::new(),
        }
    }

    /// Records what a created resource answers to `Ref` and `GetAtt`.
    pub fn record(&mut self, logical_id: &str, attributes: Attributes) {
        self.resources.insert(logical_id.to_string(), attributes);
    }

    /// What `logical_id` was recorded with, if it was created.
    pub fn attributes(&self, logical_id: &str) -> Option<&Attributes> {
        self.resources.get(logical_id)
    }

    /// `value` with every intrinsic function evaluated.
    pub fn resolve(&self, value: &Value) -> Result<Value> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let Some((function, argument)) = map.iter().next() else {
                    return Ok(value.clone());
                };
                match function.as_str() {
                    "Ref" => Ok(Value::String(self.reference(argument)?)),
                    "Fn::GetAtt" => Ok(Value::String(self.get_att(argument)?)),
                    "Fn::Sub" => Ok(Value::String(self.sub(argument)?)),
                    "Fn::Join" => self.join(argument),
                    "Fn::Select" => self.select(argument),
                    other if other.starts_with("Fn::") || other == "Condition" => {
                        bail!("{other} is not supported by the local pipeline")
                    }
                    _ => self.resolve_members(map),
                }
            }
            Value::Object(map) => self.resolve_members(map),
            Value::Array(items) => items
                .iter()
                .map(|item| self.resolve(item))
                .collect::<Result<_>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    /// `value` resolved and required to be a string.
    pub fn resolve_string(&self, value: &Value) -> Result<String> {
        match self.resolve(value)? {
            Value::String(text) => Ok(text),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            other => bail!("expected a string, found {other}"),
        }
    }

    fn resolve_members(&self, map: &Map<String, Value>) -> Result<Value> {
        map.iter()
            .map(|(key, member)| Ok((key.clone(), self.resolve(member)?)))
            .collect::<Result<Map<_, _>>>()
            .map(Value::Object)
    }

    fn reference(&self, argument: &Value) -> Result<String> {
        let name = argument.as_str().context("Ref takes a name")?;
        self.variable(name)
    }

    fn variable(&self, name: &str) -> Result<String> {
        if let Some(value) = self.pseudo.get(name).or_else(|| self.parameters.get(name)) {
            return Ok(value.clone());
        }
        if let Some((logical_id, attribute)) = name.split_once('.') {
            return self.attribute(logical_id, attribute);
        }
        self.resources
            .get(name)
            .map(|resource| resource.reference.clone())
            .with_context(|| format!("Ref {name}: no such parameter or created resource"))
    }

    fn get_att(&self, argument: &Value) -> Result<String> {
        let parts: Vec<String> = match argument {
            Value::Array(parts) => parts
                .iter()
                .map(|part| self.resolve_string(part))
                .collect::<Result<_>>()?,
            Value::String(text) => text.splitn(2, '.').map(str::to_string).collect(),
            other => bail!("Fn::GetAtt takes [Resource, Attribute], found {other}"),
        };
        match parts.as_slice() {
            [logical_id, attribute] => self.attribute(logical_id, attribute),
            _ => bail!("Fn::GetAtt takes [Resource, Attribute], found {argument}"),
        }
    }

    fn attribute(&self, logical_id: &str, attribute: &str) -> Result<String> {
        let resource = self
            .resources
            .get(logical_id)
            .with_context(|| format!("GetAtt {logical_id}.{attribute}: not created"))?;
        resource
            .attributes
            .get(attribute)
            .cloned()
            .with_context(|| format!("GetAtt {logical_id}.{attribute}: no such attribute"))
    }

    fn sub(&self, argument: &Value) -> Result<String> {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), Map::new()),
            Value::Array(parts) => (
                parts
                    .first()
                    .and_then(Value::as_str)
                    .context("Fn::Sub takes a string")?,
                parts
                    .get(1)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            ),
            other => bail!("Fn::Sub takes a string, found {other}"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .with_context(|| format!("unclosed ${{ in Fn::Sub {text:?}"))?;
            let name = after[..end].trim();
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(local) = variables.get(name) {
                out.push_str(&self.resolve_string(local)?);
            } else {
                out.push_str(&self.variable(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn join(&self, argument: &Value) -> Result<Value> {
        let (Some(separator), Some(items)) = (
            argument.get(0).and_then(Value::as_str),
            argument
                .get(1)
                .map(|items| self.resolve(items))
                .transpose()?,
        ) else {
            bail!("Fn::Join takes [separator, [values]]");
        };
        let parts: Vec<String> = items
            .as_array()
            .context("Fn::Join takes a list of values")?
            .iter()
            .map(scalar_text)
            .collect();
        Ok(Value::String(parts.join(separator)))
    }

    fn select(&self, argument: &Value) -> Result<Value> {
        let index: usize = self
            .resolve_string(argument.get(0).context("Fn::Select takes [index, list]")?)?
            .parse()?;
        let items = self.resolve(argument.get(1).context("Fn::Select takes [index, list]")?)?;
        items
            .get(index)
            .cloned()
            .with_context(|| format!("Fn::Select: no item {index}"))
    }
}
