//! The capacity units DynamoDB bills a request, read from the request's body, so the bench
//! can say what each idempotency path costs in write and read units beside its requests.
//!
//! DynamoDB Local reports no faithful figure of its own (it leaves `ConsumedCapacity` out of
//! `BatchExecuteStatement` and bills a transactional write once, not twice), so the units
//! are counted by DynamoDB's documented rules (on-demand and provisioned alike):
//! - a write action costs one write unit per started kilobyte of the item, two inside
//!   `TransactWriteItems`; an action whose condition fails is billed all the same, so every
//!   action sent counts. The size is known for a put (the item is in the request). An update
//!   is billed by the larger of the item's sizes before and after it, which the request does
//!   not show: it is counted by what it writes (the key and the values it sets: an update's
//!   `ExpressionAttributeValues`, a PartiQL statement's parameters), a lower bound that is
//!   close for a completion, which writes most of its record (the result, and the events
//!   riding on it). A delete is counted as one kilobyte, a lower bound too;
//! - a read costs one read unit per item (up to 4 KB) read strongly consistent, half of one
//!   eventually consistent, two inside `TransactGetItems`; a key found missing is billed
//!   the minimum all the same.

use serde_json::Value;

/// Capacity units billed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Capacity {
    /// Write units.
    pub write_units: f64,
    /// Read units.
    pub read_units: f64,
}

impl std::ops::Add for Capacity {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            write_units: self.write_units + other.write_units,
            read_units: self.read_units + other.read_units,
        }
    }
}

impl std::ops::Sub for Capacity {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        Self {
            write_units: self.write_units - other.write_units,
            read_units: self.read_units - other.read_units,
        }
    }
}

/// The units a DynamoDB request of `operation` with the JSON `body` is billed; nothing for
/// an operation that reads or writes no item (or a body that is not JSON).
pub fn of_request(operation: &str, body: &[u8]) -> Capacity {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Capacity::default();
    };
    let write = |units: f64| Capacity {
        write_units: units,
        read_units: 0.0,
    };
    let read = |units: f64| Capacity {
        write_units: 0.0,
        read_units: units,
    };
    let items = |value: &Value| value.as_array().map_or(0, Vec::len) as f64;
    match operation {
        "PutItem" => write(put_units(&body["Item"])),
        "UpdateItem" => write(update_units(&body)),
        "DeleteItem" => write(1.0),
        "GetItem" => read(read_unit(consistent(&body))),
        "BatchWriteItem" => write(
            tables(&body["RequestItems"])
                .flat_map(|requests| requests.as_array().into_iter().flatten())
                .map(|request| match request.get("PutRequest") {
                    Some(put) => put_units(&put["Item"]),
                    None => 1.0,
                })
                .sum(),
        ),
        "BatchGetItem" => read(
            tables(&body["RequestItems"])
                .map(|table| items(&table["Keys"]) * read_unit(consistent(table)))
                .sum(),
        ),
        "TransactWriteItems" => write(
            body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|action| {
                    if let Some(put) = action.get("Put") {
                        2.0 * put_units(&put["Item"])
                    } else if let Some(update) = action.get("Update") {
                        2.0 * update_units(update)
                    } else {
                        2.0
                    }
                })
                .sum(),
        ),
        "TransactGetItems" => read(2.0 * items(&body["TransactItems"])),
        "ExecuteStatement" => statement(&body),
        "BatchExecuteStatement" => body["Statements"]
            .as_array()
            .into_iter()
            .flatten()
            .map(statement)
            .fold(Capacity::default(), |sum, units| sum + units),
        _ => Capacity::default(),
    }
}

/// One PartiQL statement: an `INSERT` or `UPDATE` a write unit per started kilobyte of its
/// parameters (what it writes, the key included), a `DELETE` one write unit, a `SELECT` of one
/// item a read.
fn statement(statement: &Value) -> Capacity {
    let text = statement["Statement"].as_str().unwrap_or_default();
    let verb = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match verb.as_str() {
        "INSERT" | "UPDATE" => Capacity {
            write_units: kilobytes(values_size(&statement["Parameters"])),
            read_units: 0.0,
        },
        "DELETE" => Capacity {
            write_units: 1.0,
            read_units: 0.0,
        },
        "SELECT" => Capacity {
            write_units: 0.0,
            read_units: read_unit(consistent(statement)),
        },
        _ => Capacity::default(),
    }
}

fn tables(request_items: &Value) -> impl Iterator<Item = &Value> {
    request_items
        .as_object()
        .into_iter()
        .flat_map(|tables| tables.values())
}

fn consistent(request: &Value) -> bool {
    request["ConsistentRead"].as_bool().unwrap_or(false)
}

fn read_unit(consistent: bool) -> f64 {
    if consistent {
        1.0
    } else {
        0.5
    }
}

/// Write units of putting `item` (in the low-level JSON form): one per started kilobyte.
fn put_units(item: &Value) -> f64 {
    let bytes = item.as_object().map_or(0, |item| {
        item.iter()
            .map(|(name, value)| name.len() + size(value))
            .sum()
    });
    kilobytes(bytes)
}

/// Write units of an update (`UpdateItem`'s body, or a transaction's `Update` action), by
/// what it writes: its key, and the values and attribute names it sets.
fn update_units(update: &Value) -> f64 {
    let key = update["Key"].as_object().map_or(0, |key| {
        key.iter()
            .map(|(name, value)| name.len() + size(value))
            .sum()
    });
    let names = update["ExpressionAttributeNames"]
        .as_object()
        .map_or(0, |names| {
            names
                .values()
                .map(|name| name.as_str().map_or(0, str::len))
                .sum()
        });
    let values = update["ExpressionAttributeValues"]
        .as_object()
        .map_or(0, |values| values.values().map(size).sum());
    kilobytes(key + names + values)
}

/// The sizes of a list of attribute values (a PartiQL statement's parameters).
fn values_size(values: &Value) -> usize {
    values.as_array().into_iter().flatten().map(size).sum()
}

/// One unit per started kilobyte, at least one.
fn kilobytes(bytes: usize) -> f64 {
    (bytes.max(1) as f64 / 1024.0).ceil()
}

/// An attribute value's size by DynamoDB's rules (strings and binaries their length,
/// numbers about one byte per two digits plus one, containers three bytes plus their
/// elements', one byte per element).
fn size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|value| value.iter().next()) else {
        return 0;
    };
    let text = || inner.as_str().unwrap_or_default();
    let list = || inner.as_array().into_iter().flatten();
    match kind.as_str() {
        "S" => text().len(),
        // Base64 in the request: three bytes for every four characters.
        "B" => text().len() * 3 / 4,
        "N" => text().len().div_ceil(2) + 1,
        "BOOL" | "NULL" => 1,
        "SS" | "BS" => list()
            .map(|element| element.as_str().map_or(0, str::len))
            .sum(),
        "NS" => list()
            .map(|element| element.as_str().map_or(0, |n| n.len().div_ceil(2) + 1))
            .sum(),
        "L" => 3 + list().map(|element| 1 + size(element)).sum::<usize>(),
        "M" => {
            3 + inner.as_object().map_or(0, |map| {
                map.iter()
                    .map(|(name, element)| 1 + name.len() + size(element))
                    .sum()
            })
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn units(operation: &str, body: Value) -> Capacity {
        of_request(operation, body.to_string().as_bytes())
    }

    fn writes(units: f64) -> Capacity {
        Capacity {
            write_units: units,
            read_units: 0.0,
        }
    }

    fn reads(units: f64) -> Capacity {
        Capacity {
            write_units: 0.0,
            read_units: units,
        }
    }

    #[test]
    fn a_put_costs_a_unit_per_started_kilobyte() {
        let small = json!({"Item": {"id": {"S": "a"}, "n": {"N": "12"}}});
        assert_eq!(units("PutItem", small), writes(1.0));
        let big = json!({"Item": {"id": {"S": "a"}, "body": {"S": "x".repeat(1500)}}});
        assert_eq!(units("PutItem", big), writes(2.0));
        assert_eq!(units("UpdateItem", json!({"Key": {}})), writes(1.0));
        assert_eq!(units("DeleteItem", json!({"Key": {}})), writes(1.0));
    }

    #[test]
    fn an_update_costs_what_it_writes() {
        let update = json!({
            "Key": {"id": {"S": "a"}},
            "ExpressionAttributeNames": {"#o": "outbox"},
            "ExpressionAttributeValues": {":o": {"L": [{"S": "x".repeat(1500)}]}, ":s": {"S": "COMPLETED"}},
        });
        assert_eq!(units("UpdateItem", update.clone()), writes(2.0));
        let body = json!({"TransactItems": [{"Update": update}]});
        assert_eq!(units("TransactWriteItems", body), writes(4.0));
        let body = json!({"Statements": [{
            "Statement": "UPDATE \"t\" SET \"outbox\" = ? WHERE \"id\" = ?",
            "Parameters": [{"S": "x".repeat(2100)}, {"S": "a"}],
        }]});
        assert_eq!(units("BatchExecuteStatement", body), writes(3.0));
    }

    #[test]
    fn a_transaction_costs_every_action_twice() {
        let body = json!({"TransactItems": [
            {"Update": {"Key": {"id": {"S": "a"}}}},
            {"Put": {"Item": {"id": {"S": "b"}, "body": {"S": "x".repeat(1100)}}}},
            {"ConditionCheck": {"Key": {"id": {"S": "c"}}}},
        ]});
        assert_eq!(units("TransactWriteItems", body), writes(2.0 + 4.0 + 2.0));
        let body = json!({"TransactItems": [{"Get": {}}, {"Get": {}}]});
        assert_eq!(units("TransactGetItems", body), reads(4.0));
    }

    #[test]
    fn partiql_statements_count_one_by_one() {
        let body = json!({"Statements": [
            {"Statement": "INSERT INTO \"t\" VALUE {'id': ?}"},
            {"Statement": "update \"t\" SET a = ? WHERE id = ?"},
            {"Statement": "DELETE FROM \"t\" WHERE id = ?"},
            {"Statement": "SELECT * FROM \"t\" WHERE id = ?", "ConsistentRead": true},
            {"Statement": "SELECT * FROM \"t\" WHERE id = ?"},
        ]});
        let expected = Capacity {
            write_units: 3.0,
            read_units: 1.5,
        };
        assert_eq!(units("BatchExecuteStatement", body), expected);
        let body = json!({"Statement": "INSERT INTO \"t\" VALUE {'id': ?}"});
        assert_eq!(units("ExecuteStatement", body), writes(1.0));
    }

    #[test]
    fn reads_cost_half_a_unit_unless_consistent() {
        assert_eq!(units("GetItem", json!({"Key": {}})), reads(0.5));
        assert_eq!(
            units("GetItem", json!({"Key": {}, "ConsistentRead": true})),
            reads(1.0)
        );
        let body = json!({"RequestItems": {
            "a": {"Keys": [{}, {}, {}], "ConsistentRead": true},
            "b": {"Keys": [{}]},
        }});
        assert_eq!(units("BatchGetItem", body), reads(3.5));
    }

    #[test]
    fn batch_writes_count_each_request() {
        let body = json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"id": {"S": "a"}}}},
            {"DeleteRequest": {"Key": {"id": {"S": "b"}}}},
        ]}});
        assert_eq!(units("BatchWriteItem", body), writes(2.0));
    }

    #[test]
    fn what_is_no_item_costs_nothing() {
        assert_eq!(units("DescribeTable", json!({})), Capacity::default());
        assert_eq!(of_request("PutItem", b"not json"), Capacity::default());
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(size(&json!({"S": "abc"})), 3);
        assert_eq!(size(&json!({"N": "1234"})), 3);
        assert_eq!(size(&json!({"BOOL": true})), 1);
        assert_eq!(size(&json!({"M": {"ab": {"S": "xyz"}}})), 3 + 1 + 2 + 3);
        assert_eq!(size(&json!({"L": [{"S": "a"}, {"N": "1"}]})), 3 + 2 + 3);
    }
}
