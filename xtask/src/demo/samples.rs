//! The demo's inputs from `events/`: the sample orders (OrderPlaced envelopes, one per file
//! in `events/orders/`) and the stock to load first (`events/inventory/seed.json`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use eventkit::events::EventEnvelope;
use orders::{Order, OrderPlaced};
use serde_json::{Map, Value};

/// One sample order file.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The file name.
    pub file: String,
    /// The envelope as written (published as is).
    pub text: String,
    /// The envelope, its data left as JSON.
    pub envelope: EventEnvelope<Value>,
    /// The order, or why its data is not one the functions can decode.
    pub order: Result<Order, String>,
}

impl Sample {
    /// The order id, also for an order whose data does not decode.
    pub fn order_id(&self) -> String {
        self.envelope.data["orderId"]
            .as_str()
            .map_or_else(|| self.file.clone(), str::to_string)
    }
}

/// The sample orders of `dir`, in file-name order.
pub fn load_orders(dir: &Path) -> Result<Vec<Sample>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let samples = files
        .iter()
        .map(|path| load_sample(path))
        .collect::<Result<Vec<_>>>()?;
    if samples.is_empty() {
        bail!("{} has no sample orders (*.json)", dir.display());
    }
    Ok(samples)
}

fn load_sample(path: &Path) -> Result<Sample> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let envelope: EventEnvelope<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an eventkit envelope", path.display()))?;
    let order = order_of(&envelope);
    Ok(Sample {
        file: path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        text,
        envelope,
        order,
    })
}

/// The order an OrderPlaced envelope carries, in either version (1: the order's fields; 2:
/// the total as one `Money`), or why its data is not one the functions can decode.
pub fn order_of(envelope: &EventEnvelope<Value>) -> Result<Order, String> {
    let data = envelope.data.clone();
    if envelope.event_version >= 2 {
        serde_json::from_value::<OrderPlaced>(data).map(|placed| placed.order())
    } else {
        serde_json::from_value::<Order>(data)
    }
    .map_err(|e| e.to_string())
}

/// The items of the stock file: each a map of the inventory table's attributes.
pub fn load_seed(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let items: Vec<Value> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(attributes) if attributes.contains_key("sku") => Ok(attributes),
            other => bail!("{}: {other} is not an item with a sku", path.display()),
        })
        .collect()
}
