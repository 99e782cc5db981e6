//! What the pipeline spent per order: every function's DynamoDB requests and write units, and
//! its publish requests, as the fault proxies in front of DynamoDB Local and LocalStack (which
//! every function's SDK calls go through) counted them, from the first order until the
//! invariants were read (the late copies are not included). The local runtime's own polling
//! of queues and streams does not pass the proxies, as Lambda's polling is not the functions'
//! on AWS either. Write units follow DynamoDB's billing rules ([`crate::proxy::Capacity`]).
//!
//! Faults add requests (retries, redeliveries, sweeps after outages): for the price of the
//! path alone, run with the faults and duplicates off (README, "What an order costs").

use crate::proxy::{Capacity, Counts};

/// The operations that publish an event (EventBridge, SQS, SNS).
const PUBLISHES: [&str; 5] = [
    "PutEvents",
    "SendMessage",
    "SendMessageBatch",
    "Publish",
    "PublishBatch",
];

/// Requests and capacity counted over a run.
#[derive(Clone, Debug, Default)]
pub struct Cost {
    /// Distinct orders of the run.
    pub orders: usize,
    /// DynamoDB requests per operation.
    pub dynamodb: Counts,
    /// The units DynamoDB billed them.
    pub capacity: Capacity,
    /// LocalStack requests (EventBridge, SQS) per operation.
    pub messaging: Counts,
}

impl Cost {
    fn per_order(&self, count: f64) -> String {
        format!("{:.2}", count / self.orders.max(1) as f64)
    }

    /// DynamoDB requests in all.
    pub fn dynamodb_requests(&self) -> u64 {
        self.dynamodb.values().sum()
    }

    /// Publish requests in all.
    pub fn publish_requests(&self) -> u64 {
        PUBLISHES
            .iter()
            .filter_map(|operation| self.messaging.get(*operation))
            .sum()
    }

    /// The rows of the report: (what, per order), totals first, then each operation.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            (
                "DynamoDB requests".to_string(),
                self.per_order(self.dynamodb_requests() as f64),
            ),
            (
                "DynamoDB write units".to_string(),
                self.per_order(self.capacity.write_units),
            ),
            (
                "DynamoDB read units".to_string(),
                self.per_order(self.capacity.read_units),
            ),
            (
                "publish requests".to_string(),
                self.per_order(self.publish_requests() as f64),
            ),
        ];
        for (operation, count) in &self.dynamodb {
            rows.push((
                format!("  DynamoDB {operation}"),
                self.per_order(*count as f64),
            ));
        }
        for (operation, count) in &self.messaging {
            rows.push((format!("  {operation}"), self.per_order(*count as f64)));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_divided_by_the_orders_and_publishes_summed_over_the_services() {
        let cost = Cost {
            orders: 4,
            dynamodb: Counts::from([("BatchExecuteStatement".into(), 6), ("GetItem".into(), 2)]),
            capacity: Capacity {
                write_units: 10.0,
                read_units: 1.0,
            },
            messaging: Counts::from([
                ("PutEvents".into(), 3),
                ("SendMessageBatch".into(), 1),
                ("ChangeMessageVisibilityBatch".into(), 5),
            ]),
        };
        let rows = cost.rows();
        assert_eq!(rows[0], ("DynamoDB requests".into(), "2.00".into()));
        assert_eq!(rows[1], ("DynamoDB write units".into(), "2.50".into()));
        assert_eq!(rows[3], ("publish requests".into(), "1.00".into()));
        assert!(rows.contains(&("  ChangeMessageVisibilityBatch".into(), "1.25".into())));
    }
}
