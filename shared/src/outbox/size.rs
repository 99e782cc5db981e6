//! DynamoDB's item size rule, approximately (names plus values: strings and binaries by
//! length, numbers by digits), for the limits a commit must keep: a transaction's 4 MB and an
//! outbox item's 400 KB.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// The size of an item (or a key, or expression values).
pub(super) fn item_bytes(item: Option<&HashMap<String, AttributeValue>>) -> usize {
    item.map_or(0, |item| {
        item.iter()
            .map(|(name, value)| name.len() + value_bytes(value))
            .sum()
    })
}

pub(super) fn values_bytes(values: Option<&HashMap<String, AttributeValue>>) -> usize {
    item_bytes(values)
}

pub(super) fn expression_bytes(expression: Option<&str>) -> usize {
    expression.map_or(0, str::len)
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => text.len() + 1,
        AttributeValue::B(blob) => blob.as_ref().len() + 1,
        AttributeValue::Ss(texts) | AttributeValue::Ns(texts) => {
            texts.iter().map(|text| text.len() + 1).sum()
        }
        AttributeValue::Bs(blobs) => blobs.iter().map(|blob| blob.as_ref().len() + 1).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| value_bytes(v) + 1).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| name.len() + value_bytes(v) + 1)
                .sum::<usize>()
        }
        _ => 1,
    }
}
