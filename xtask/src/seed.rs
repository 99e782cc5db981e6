//! `cargo xtask seed`: loads the stock file (`events/inventory/seed.json`, plain JSON) into
//! the inventory table of a deployed stack. A fresh stack has no stock, so every order is
//! rejected until stock is loaded.
//!
//! The table is the stack's `InventoryTable`, found by the stack's name through
//! CloudFormation; credentials and region come from the SDK's normal chain (environment,
//! `AWS_PROFILE`, SSO, instance role, ...), as for `sam deploy`. An SKU already in the table
//! keeps its stock (orders may have reserved some) unless `--overwrite` is given.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

use crate::cloud::workspace_root;
use crate::demo::samples::load_seed;

/// The template's logical id of the inventory table.
pub const INVENTORY_TABLE: &str = "InventoryTable";

/// `cargo xtask seed` arguments.
#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// The deployed stack (samconfig.toml's stack_name).
    #[arg(long, default_value = "eventkit-orders")]
    pub stack: String,
    /// The stock file: a JSON array of items, each with a `sku`.
    #[arg(long, default_value = "events/inventory/seed.json")]
    pub file: PathBuf,
    /// Replace the stock of SKUs already in the table (by default they are left as they are).
    #[arg(long)]
    pub overwrite: bool,
}

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// SKUs written.
    pub written: Vec<String>,
    /// SKUs already in the table, left as they were.
    pub kept: Vec<String>,
}

/// The stock file's items (a JSON array of plain JSON objects, each with a `sku`).
pub fn read_stock(path: &Path) -> Result<Vec<Map<String, Value>>> {
    load_seed(path)
}

/// Runs `cargo xtask seed`.
pub fn run(args: &SeedArgs) -> Result<()> {
    let file = if args.file.is_absolute() {
        args.file.clone()
    } else {
        workspace_root().join(&args.file)
    };
    let items = read_stock(&file)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = aws_config::load_from_env().await;
        if config.region().is_none() {
            bail!("no AWS region: set AWS_REGION (or a profile's region), as for `sam deploy`");
        }
        let cloudformation = aws_sdk_cloudformation::Client::new(&config);
        let table = inventory_table(&cloudformation, &args.stack).await?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let loaded = load(&dynamodb, &table, &items, args.overwrite).await?;
        println!(
            "{table} (stack {}): {} SKU(s) loaded from {}",
            args.stack,
            loaded.written.len(),
            file.display()
        );
        if !loaded.kept.is_empty() {
            println!(
                "  kept the stock of {} already there (--overwrite replaces it)",
                loaded.kept.join(", ")
            );
        }
        Ok(())
    })
}

/// The physical name of `stack`'s inventory table.
pub async fn inventory_table(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<String> {
    let described = cloudformation
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id(INVENTORY_TABLE)
        .send()
        .await
        .map_err(aws_sdk_cloudformation::Error::from)
        .with_context(|| format!("looking up {INVENTORY_TABLE} of the stack {stack}"))?;
    described
        .stack_resource_detail()
        .and_then(|detail| detail.physical_resource_id())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .with_context(|| format!("the stack {stack} has no {INVENTORY_TABLE} (yet)"))
}

/// Writes `items` into `table`: each SKU not yet there, or every one with `overwrite`.
pub async fn load(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    items: &[Map<String, Value>],
    overwrite: bool,
) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for item in items {
        let sku = item
            .get("sku")
            .and_then(Value::as_str)
            .context("every stock item has a sku")?
            .to_string();
        let attributes = item
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect();
        let mut request = dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(attributes));
        if !overwrite {
            request = request.condition_expression("attribute_not_exists(sku)");
        }
        match request.send().await {
            Ok(_) => loaded.written.push(sku),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                loaded.kept.push(sku);
            }
            Err(error) => {
                return Err(aws_sdk_dynamodb::Error::from(error))
                    .with_context(|| format!("writing {sku} into {table}"))
            }
        }
    }
    Ok(loaded)
}

/// A plain JSON value as the DynamoDB attribute it stands for.
pub fn attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(attribute).collect()),
        Value::Object(members) => AttributeValue::M(
            members
                .iter()
                .map(|(name, member)| (name.clone(), attribute(member)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use axum::routing::post;

    use super::*;

    #[test]
    fn plain_json_becomes_typed_attributes() {
        let value = serde_json::json!({"sku": "A", "available": 5, "tags": ["x"], "on": true});
        let Value::Object(members) = value else {
            unreachable!()
        };
        let converted: Vec<(String, AttributeValue)> = members
            .iter()
            .map(|(name, member)| (name.clone(), attribute(member)))
            .collect();
        assert!(converted.contains(&("sku".into(), AttributeValue::S("A".into()))));
        assert!(converted.contains(&("available".into(), AttributeValue::N("5".into()))));
        assert!(converted.contains(&(
            "tags".into(),
            AttributeValue::L(vec![AttributeValue::S("x".into())])
        )));
        assert!(converted.contains(&("on".into(), AttributeValue::Bool(true))));
    }

    /// A stand-in for CloudFormation's query API that answers DescribeStackResource.
    async fn cloudformation_stub(requests: Arc<Mutex<Vec<String>>>) -> String {
        let app = axum::Router::new().route(
            "/",
            post(move |body: String| {
                let requests = requests.clone();
                async move {
                    requests.lock().unwrap().push(body);
                    (
                        [("content-type", "text/xml")],
                        r#"<DescribeStackResourceResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStackResourceResult>
    <StackResourceDetail>
      <StackName>shop</StackName>
      <LogicalResourceId>InventoryTable</LogicalResourceId>
      <PhysicalResourceId>shop-InventoryTable-1A2B3C</PhysicalResourceId>
      <ResourceType>AWS::DynamoDB::Table</ResourceType>
      <LastUpdatedTimestamp>2026-01-01T00:00:00Z</LastUpdatedTimestamp>
      <ResourceStatus>CREATE_COMPLETE</ResourceStatus>
    </StackResourceDetail>
  </DescribeStackResourceResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</DescribeStackResourceResponse>"#,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn the_table_is_found_by_the_stacks_name() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let endpoint = cloudformation_stub(requests.clone()).await;
        let config = aws_sdk_cloudformation::Config::builder()
            .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudformation::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(endpoint)
            .build();
        let client = aws_sdk_cloudformation::Client::from_conf(config);
        assert_eq!(
            inventory_table(&client, "shop").await.unwrap(),
            "shop-InventoryTable-1A2B3C"
        );
        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), 1);
        assert!(requests[0].contains("Action=DescribeStackResource"));
        assert!(requests[0].contains("StackName=shop"));
        assert!(requests[0].contains("LogicalResourceId=InventoryTable"));
    }
}
