//! CloudFormation's intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`,
//! `Fn::Select`, `Fn::Split`, `Fn::If` with the template's conditions, `AWS::NoValue`)
//! evaluated against the parameters, the pseudo parameters and the resources created so far;
//! anything else is an error naming it, never a silently wrong value.

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
    conditions: HashMap<String, Value>,
    resources: HashMap<String, Attributes>,
}

/// `Ref AWS::NoValue`: the property (or list item) it stands for is removed.
const NO_VALUE: &str = "AWS::NoValue";

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
            conditions: HashMap::new(),
            resources: HashMap::new(),
        }
    }

    /// The template's conditions (`Conditions`), evaluated when a resource or `Fn::If` asks.
    pub fn with_conditions(
        mut self,
        conditions: impl IntoIterator<Item = (String, Value)>,
    ) -> Self {
        self.conditions.extend(conditions);
        self
    }

    /// Whether the condition `name` holds.
    pub fn condition(&self, name: &str) -> Result<bool> {
        let condition = self
            .conditions
            .get(name)
            .with_context(|| format!("no condition {name} in the template"))?;
        self.evaluate(condition)
            .with_context(|| format!("evaluating condition {name}"))
    }

    /// A condition function: `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`.
    fn evaluate(&self, condition: &Value) -> Result<bool> {
        let Some((function, argument)) = condition
            .as_object()
            .and_then(|map| (map.len() == 1).then(|| map.iter().next()).flatten())
        else {
            bail!("{condition} is not a condition function");
        };
        let operands = || {
            argument
                .as_array()
                .with_context(|| format!("{function} takes a list, found {argument}"))
        };
        match function.as_str() {
            "Condition" => self.condition(argument.as_str().context("Condition takes a name")?),
            "Fn::Equals" => match operands()?.as_slice() {
                [left, right] => Ok(self.resolve_string(left)? == self.resolve_string(right)?),
                _ => bail!("Fn::Equals takes two values, found {argument}"),
            },
            "Fn::Not" => match operands()?.as_slice() {
                [inner] => Ok(!self.evaluate(inner)?),
                _ => bail!("Fn::Not takes one condition, found {argument}"),
            },
            "Fn::And" => operands()?
                .iter()
                .try_fold(true, |all, inner| Ok(all && self.evaluate(inner)?)),
            "Fn::Or" => operands()?
                .iter()
                .try_fold(false, |any, inner| Ok(any || self.evaluate(inner)?)),
            other => bail!("{other} is not a condition function"),
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

    /// `value` with every intrinsic function evaluated (`AWS::NoValue` as a whole gives null).
    pub fn resolve(&self, value: &Value) -> Result<Value> {
        Ok(self.resolve_present(value)?.unwrap_or(Value::Null))
    }

    /// `value` evaluated; `None` when it is `AWS::NoValue` (so the property goes).
    fn resolve_present(&self, value: &Value) -> Result<Option<Value>> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let Some((function, argument)) = map.iter().next() else {
                    return Ok(Some(value.clone()));
                };
                match function.as_str() {
                    "Ref" if argument == NO_VALUE => Ok(None),
                    "Ref" => Ok(Some(Value::String(self.reference(argument)?))),
                    "Fn::GetAtt" => Ok(Some(Value::String(self.get_att(argument)?))),
                    "Fn::Sub" => Ok(Some(Value::String(self.sub(argument)?))),
                    "Fn::Join" => self.join(argument).map(Some),
                    "Fn::Select" => self.select(argument).map(Some),
                    "Fn::Split" => self.split(argument).map(Some),
                    "Fn::If" => self.choose(argument),
                    other if other.starts_with("Fn::") || other == "Condition" => {
                        bail!("{other} is not supported by the local pipeline")
                    }
                    _ => self.resolve_members(map).map(Some),
                }
            }
            Value::Object(map) => self.resolve_members(map).map(Some),
            Value::Array(items) => {
                let mut resolved = Vec::with_capacity(items.len());
                for item in items {
                    resolved.extend(self.resolve_present(item)?);
                }
                Ok(Some(Value::Array(resolved)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// `Fn::If [condition, then, else]`.
    fn choose(&self, argument: &Value) -> Result<Option<Value>> {
        let Some([condition, then, otherwise]) = argument.as_array().map(Vec::as_slice) else {
            bail!("Fn::If takes [condition, value if true, value if false], found {argument}");
        };
        let name = condition.as_str().context("Fn::If names a condition")?;
        let chosen = if self.condition(name)? {
            then
        } else {
            otherwise
        };
        self.resolve_present(chosen)
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
        let mut resolved = Map::new();
        for (key, member) in map {
            if let Some(value) = self.resolve_present(member)? {
                resolved.insert(key.clone(), value);
            }
        }
        Ok(Value::Object(resolved))
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
        let parts: Vec<String> = match items {
            Value::Array(items) => items.iter().map(scalar_text).collect(),
            // A CommaDelimitedList parameter: its value is the list's text.
            Value::String(list) => list.split(',').map(str::to_string).collect(),
            other => bail!("Fn::Join takes a list of values, found {other}"),
        };
        Ok(Value::String(parts.join(separator)))
    }

    fn split(&self, argument: &Value) -> Result<Value> {
        let (Some(separator), Some(text)) =
            (argument.get(0).and_then(Value::as_str), argument.get(1))
        else {
            bail!("Fn::Split takes [separator, text]");
        };
        let text = self.resolve_string(text)?;
        Ok(Value::Array(
            text.split(separator)
                .map(|part| Value::String(part.to_string()))
                .collect(),
        ))
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
