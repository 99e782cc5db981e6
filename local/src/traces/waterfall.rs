//! One trace laid out as a waterfall: the spans of every trace connected to what was asked
//! for (by parent or by link: a batch consumer's trace links to its producers'), in causal
//! order with their nesting, each with its offset from the first span, its duration, the
//! wait before it and its outcome, and the hop it belongs to (a new hop each time the work
//! crosses to another service). [`render_text`](Waterfall::render_text) prints it;
//! [`html`](super::html) draws it.

use std::collections::{BTreeSet, HashMap};

use super::store::StoredSpan;

/// Attributes a trace is found by, besides its trace id: the envelope's ids (as the record
/// spans carry them) and the business ids a handler may add.
const ID_ATTRIBUTES: [&str; 8] = [
    "event_id",
    "correlation_id",
    "causation_id",
    "order_id",
    "eventId",
    "correlationId",
    "orderId",
    "messaging.message.id",
];

/// The spans of every trace connected to `query`: a trace id, or the value of one of the
/// id attributes (`event_id`, `correlation_id`, `order_id`, ...) of one of its spans. Traces
/// are connected when a span of one links to a span of the other. Empty when nothing
/// matches.
pub fn select(spans: &[StoredSpan], query: &str) -> Vec<StoredSpan> {
    let query = query.trim();
    let matches = |span: &StoredSpan| {
        span.trace_id.eq_ignore_ascii_case(query)
            || ID_ATTRIBUTES
                .iter()
                .any(|key| span.attribute(key) == Some(query))
    };
    let mut traces: BTreeSet<&str> = spans
        .iter()
        .filter(|span| matches(span))
        .map(|span| span.trace_id.as_str())
        .collect();
    loop {
        let before = traces.len();
        for span in spans {
            for link in &span.links {
                if traces.contains(span.trace_id.as_str()) {
                    traces.insert(link.trace_id.as_str());
                } else if traces.contains(link.trace_id.as_str()) {
                    traces.insert(span.trace_id.as_str());
                }
            }
        }
        if traces.len() == before {
            break;
        }
    }
    spans
        .iter()
        .filter(|span| traces.contains(span.trace_id.as_str()))
        .cloned()
        .collect()
}

/// A trace, laid out.
#[derive(Clone, Debug)]
pub struct Waterfall {
    /// Its trace ids, the first span's first.
    pub traces: Vec<String>,
    /// When its first span started (Unix nanoseconds).
    pub start_unix_nano: u64,
    /// When its last span ended (Unix nanoseconds).
    pub end_unix_nano: u64,
    /// The spans in display order: roots by start time, each followed by its children.
    pub rows: Vec<Row>,
}

/// One span of the waterfall.
#[derive(Clone, Debug)]
pub struct Row {
    /// The span.
    pub span: StoredSpan,
    /// Its nesting under its parent (0 for a root).
    pub depth: usize,
    /// Its hop: 1 for the first service's spans, one more each time the work crosses to
    /// another service (through a parent or a link).
    pub hop: usize,
    /// Its start, from the waterfall's start, in nanoseconds.
    pub offset_nano: u64,
    /// The time between what it follows and its start, in nanoseconds: across a hop, from the
    /// end of the producer's span (its queue time, retries, backoff); within a service, from
    /// its parent's start or its previous sibling's end, whichever is later. Zero when it
    /// started before that; `None` for a span that follows nothing here.
    pub wait_nano: Option<u64>,
    /// The row of its parent, when present.
    pub parent: Option<usize>,
    /// The rows of the spans it links to.
    pub links: Vec<usize>,
    /// The row it follows: its parent, else the last to end of the spans it links to.
    pub cause: Option<usize>,
}

impl Row {
    /// `ok`, or `error (<class>): <reason>`.
    pub fn outcome(&self) -> String {
        if self.span.status != "error" {
            return "ok".to_string();
        }
        let class = self
            .span
            .attribute("error.type")
            .map(|class| format!(" ({class})"))
            .unwrap_or_default();
        match self.span.status_message.as_str() {
            "" => format!("error{class}"),
            reason => format!("error{class}: {reason}"),
        }
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        self.span.status == "error"
    }
}

impl Waterfall {
    /// Lays out `spans` (the same span twice counts once).
    pub fn build(spans: Vec<StoredSpan>) -> Self {
        let mut unique: HashMap<(String, String), StoredSpan> = HashMap::new();
        for span in spans {
            unique.insert((span.trace_id.clone(), span.span_id.clone()), span);
        }
        let mut spans: Vec<StoredSpan> = unique.into_values().collect();
        spans.sort_by(|a, b| {
            (a.start_unix_nano, &a.trace_id, &a.span_id).cmp(&(
                b.start_unix_nano,
                &b.trace_id,
                &b.span_id,
            ))
        });
        let index: HashMap<(&str, &str), usize> = spans
            .iter()
            .enumerate()
            .map(|(i, span)| ((span.trace_id.as_str(), span.span_id.as_str()), i))
            .collect();
        let parent_of: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, span)| {
                let parent = span.parent_span_id.as_deref()?;
                index
                    .get(&(span.trace_id.as_str(), parent))
                    .copied()
                    .filter(|parent| *parent != i)
            })
            .collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        for (i, parent) in parent_of.iter().enumerate() {
            if let Some(parent) = parent {
                children[*parent].push(i);
            }
        }

        // Display order: depth first from the roots, each level by start time (the spans are
        // sorted so already). A span on a parent cycle (malformed input) is shown as a root.
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        let mut placed = vec![false; spans.len()];
        let roots: Vec<usize> = (0..spans.len())
            .filter(|i| parent_of[*i].is_none())
            .collect();
        let leftovers = |placed: &[bool]| (0..spans.len()).find(|i| !placed[*i]);
        let mut pending: Vec<usize> = roots.into_iter().rev().collect();
        while let Some(root) = pending.pop().or_else(|| leftovers(&placed)) {
            let mut stack = vec![(root, 0)];
            while let Some((i, depth)) = stack.pop() {
                if placed[i] {
                    continue;
                }
                placed[i] = true;
                order.push((i, depth));
                for child in children[i].iter().rev() {
                    stack.push((*child, depth + 1));
                }
            }
        }
        let row_of: HashMap<usize, usize> = order
            .iter()
            .enumerate()
            .map(|(row, (i, _))| (*i, row))
            .collect();

        let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
        let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(start);
        let mut rows: Vec<Row> = order
            .iter()
            .map(|(i, depth)| {
                let span = &spans[*i];
                let links: Vec<usize> = span
                    .links
                    .iter()
                    .filter_map(|link| index.get(&(link.trace_id.as_str(), link.span_id.as_str())))
                    .filter_map(|linked| row_of.get(linked).copied())
                    .collect();
                let parent = parent_of[*i].and_then(|parent| row_of.get(&parent).copied());
                let cause = parent.or_else(|| {
                    links
                        .iter()
                        .copied()
                        .max_by_key(|row| spans[order[*row].0].end_unix_nano)
                });
                Row {
                    span: span.clone(),
                    depth: *depth,
                    hop: 1,
                    offset_nano: span.start_unix_nano.saturating_sub(start),
                    wait_nano: None,
                    parent,
                    links,
                    cause,
                }
            })
            .collect();
        for row in 0..rows.len() {
            rows[row].hop = hop_of(&rows, row);
            rows[row].wait_nano = wait_of(&rows, row);
        }
        let mut traces: Vec<String> = Vec::new();
        for row in &rows {
            if !traces.contains(&row.span.trace_id) {
                traces.push(row.span.trace_id.clone());
            }
        }
        Self {
            traces,
            start_unix_nano: start,
            end_unix_nano: end,
            rows,
        }
    }

    /// Its length, from the first start to the last end, in nanoseconds.
    pub fn duration_nano(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// The services its spans came from, in order of first appearance.
    pub fn services(&self) -> Vec<&str> {
        let mut services: Vec<&str> = Vec::new();
        for row in &self.rows {
            if !services.contains(&row.span.service.as_str()) {
                services.push(&row.span.service);
            }
        }
        services
    }

    /// The waterfall as text for a terminal: a header, then one line per span (number, hop,
    /// service, name indented by nesting, start, duration, wait, outcome, what it follows
    /// when that is a link) ending in a bar `bar_width` characters wide.
    pub fn render_text(&self, bar_width: usize) -> String {
        let header = [
            "#", "hop", "service", "span", "start", "duration", "wait", "outcome", "follows",
        ];
        let cells: Vec<[String; 9]> = self
            .rows
            .iter()
            .enumerate()
            .map(|(number, row)| {
                [
                    (number + 1).to_string(),
                    row.hop.to_string(),
                    row.span.service.clone(),
                    format!("{}{}", "  ".repeat(row.depth), row.span.name),
                    millis(row.offset_nano),
                    millis(row.span.duration_nano()),
                    row.wait_nano.map_or_else(|| "-".to_string(), millis),
                    row.outcome(),
                    follows(row),
                ]
            })
            .collect();
        let mut widths = header.map(|title| title.chars().count());
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = format!(
            "trace {}: {} span(s), {} service(s), {}\n",
            self.describe_traces(),
            self.rows.len(),
            self.services().len(),
            millis(self.duration_nano())
        );
        let line = |cells: &[String], bar: &str| {
            let mut line: String = cells
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}  "))
                .collect();
            line.push_str(bar);
            line.trim_end().to_string() + "\n"
        };
        text.push_str(&line(&header.map(str::to_string), ""));
        for (cells, row) in cells.iter().zip(&self.rows) {
            text.push_str(&line(cells, &self.bar(row, bar_width)));
        }
        text
    }

    /// The trace ids, the first in full and how many linked traces follow.
    pub fn describe_traces(&self) -> String {
        match self.traces.as_slice() {
            [] => "(none)".to_string(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (+{} linked)", rest.len()),
        }
    }

    /// The row's bar: where in the waterfall's span it ran.
    fn bar(&self, row: &Row, width: usize) -> String {
        let total = self.duration_nano().max(1);
        let scale = |nano: u64| -> usize {
            let cells = u128::from(nano) * width as u128 / u128::from(total);
            usize::try_from(cells).unwrap_or(width).min(width)
        };
        let from = scale(row.offset_nano).min(width.saturating_sub(1));
        let to = scale(row.offset_nano + row.span.duration_nano()).max(from + 1);
        let fill = if row.failed() { '!' } else { '=' };
        let bar: String = (0..width)
            .map(|cell| {
                if (from..to).contains(&cell) {
                    fill
                } else {
                    '.'
                }
            })
            .collect();
        format!("|{bar}|")
    }
}

/// What the row follows when it is not simply its parent: `link #n`.
fn follows(row: &Row) -> String {
    match (row.parent, row.cause) {
        (None, Some(cause)) => format!("link #{}", cause + 1),
        _ => String::new(),
    }
}

/// Milliseconds, with a decimal below 100.
pub fn millis(nano: u64) -> String {
    let ms = nano as f64 / 1_000_000.0;
    if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn hop_of(rows: &[Row], row: usize) -> usize {
    // Walks the causes back (bounded: a malformed cycle ends the walk).
    let mut hop = 1;
    let mut current = row;
    for _ in 0..rows.len() {
        let Some(cause) = rows[current].cause else {
            break;
        };
        if rows[cause].span.service != rows[current].span.service {
            hop += 1;
        }
        current = cause;
    }
    hop
}

fn wait_of(rows: &[Row], row: usize) -> Option<u64> {
    let this = &rows[row];
    let cause = &rows[this.cause?];
    let start = this.span.start_unix_nano;
    let crossed = this.parent.is_none() || cause.span.service != this.span.service;
    let ready = if crossed {
        cause.span.end_unix_nano
    } else {
        // The latest end of a sibling that started before it, else the parent's start.
        rows.iter()
            .filter(|other| other.parent == this.parent && other.span.start_unix_nano < start)
            .map(|other| other.span.end_unix_nano)
            .max()
            .unwrap_or(cause.span.start_unix_nano)
            .max(cause.span.start_unix_nano)
    };
    Some(start.saturating_sub(ready))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::traces::store::SpanLink;

    const MS: u64 = 1_000_000;
    const T1: &str = "11111111111111111111111111111111";
    const T2: &str = "22222222222222222222222222222222";
    const T3: &str = "33333333333333333333333333333333";

    fn span(trace: &str, id: &str, parent: Option<&str>, service: &str, name: &str) -> StoredSpan {
        StoredSpan {
            trace_id: trace.into(),
            span_id: id.repeat(16 / id.len()),
            parent_span_id: parent.map(|parent| parent.repeat(16 / parent.len())),
            name: name.into(),
            service: service.into(),
            kind: "consumer".into(),
            start_unix_nano: 0,
            end_unix_nano: 0,
            status: "unset".into(),
            status_message: String::new(),
            attributes: BTreeMap::new(),
            links: Vec::new(),
        }
    }

    fn at(mut span: StoredSpan, start_ms: u64, end_ms: u64) -> StoredSpan {
        // Offsets from an arbitrary epoch, as real clocks give them.
        span.start_unix_nano = 1_700_000_000_000 * MS + start_ms * MS;
        span.end_unix_nano = 1_700_000_000_000 * MS + end_ms * MS;
        span
    }

    fn linked(mut span: StoredSpan, trace: &str, id: &str) -> StoredSpan {
        span.links.push(SpanLink {
            trace_id: trace.into(),
            span_id: id.repeat(16 / id.len()),
        });
        span
    }

    /// An order placed (orders), reserved in a batch of one (inventory: invocation, record
    /// that failed, two handler steps), then processed in a batch of several that links to
    /// the record (payments), and an unrelated trace.
    fn spans() -> Vec<StoredSpan> {
        let mut failed = at(span(T1, "c", Some("b"), "inventory", "OrderPlaced"), 26, 58);
        failed.status = "error".into();
        failed.status_message = "not ok".into();
        failed
            .attributes
            .insert("error.type".into(), Value::from("permanent"));
        failed
            .attributes
            .insert("event_id".into(), Value::from("e-1"));
        vec![
            // Shuffled on purpose: the layout orders them.
            linked(
                at(span(T2, "f", None, "payments", "process payments"), 70, 90),
                T1,
                "c",
            ),
            at(span(T1, "a", None, "orders", "place order"), 0, 10),
            at(span(T1, "e", Some("c"), "inventory", "charge"), 45, 55),
            at(
                span(T1, "b", Some("a"), "inventory", "process orders"),
                25,
                60,
            ),
            failed,
            at(span(T1, "d", Some("c"), "inventory", "claim"), 30, 40),
            linked(
                at(
                    span(T2, "9", Some("f"), "payments", "StockReserved"),
                    72,
                    88,
                ),
                T1,
                "c",
            ),
            at(span(T3, "8", None, "orders", "another order"), 5, 6),
        ]
    }

    fn names(waterfall: &Waterfall) -> Vec<&str> {
        waterfall
            .rows
            .iter()
            .map(|row| row.span.name.as_str())
            .collect()
    }

    #[test]
    fn a_trace_is_found_by_an_id_attribute_or_a_trace_id_with_the_traces_linked_to_it() {
        let by_event = select(&spans(), "e-1");
        assert_eq!(
            by_event.len(),
            7,
            "both linked traces, not the unrelated one"
        );
        assert!(by_event.iter().all(|span| span.trace_id != T3));
        // From the linking side too.
        assert_eq!(select(&spans(), T2).len(), 7);
        assert_eq!(select(&spans(), T3).len(), 1);
        assert!(select(&spans(), "nothing").is_empty());
    }

    #[test]
    fn rows_follow_causes_with_nesting_and_hops() {
        let waterfall = Waterfall::build(select(&spans(), "e-1"));
        assert_eq!(
            names(&waterfall),
            [
                "place order",
                "process orders",
                "OrderPlaced",
                "claim",
                "charge",
                "process payments",
                "StockReserved"
            ]
        );
        let depths: Vec<usize> = waterfall.rows.iter().map(|row| row.depth).collect();
        assert_eq!(depths, [0, 1, 2, 3, 3, 0, 1]);
        let hops: Vec<usize> = waterfall.rows.iter().map(|row| row.hop).collect();
        assert_eq!(hops, [1, 2, 2, 2, 2, 3, 3]);
        let parents: Vec<Option<usize>> = waterfall.rows.iter().map(|row| row.parent).collect();
        assert_eq!(
            parents,
            [None, Some(0), Some(1), Some(2), Some(2), None, Some(5)]
        );
        // The batch consumer links to the failed record, and follows it.
        assert_eq!(waterfall.rows[5].links, [2]);
        assert_eq!(waterfall.rows[5].cause, Some(2));
        assert_eq!(waterfall.traces, [T1, T2]);
        assert_eq!(waterfall.services(), ["orders", "inventory", "payments"]);
    }

    #[test]
    fn offsets_and_waits_are_measured_from_what_each_span_follows() {
        let waterfall = Waterfall::build(select(&spans(), "e-1"));
        let ms = |nano: u64| nano / MS;
        let offsets: Vec<u64> = waterfall.rows.iter().map(|r| ms(r.offset_nano)).collect();
        assert_eq!(offsets, [0, 25, 26, 30, 45, 70, 72]);
        let waits: Vec<Option<u64>> = waterfall
            .rows
            .iter()
            .map(|row| row.wait_nano.map(ms))
            .collect();
        assert_eq!(
            waits,
            [
                None,     // the first span follows nothing
                Some(15), // queued: the producer's span ended at 10, the consumer began at 25
                Some(1),  // from its parent's start
                Some(4),  // from its parent's start
                Some(5),  // from its previous sibling's end (40)
                Some(12), // across the link: the record ended at 58
                Some(2),  // from its parent's start
            ]
        );
        assert_eq!(ms(waterfall.duration_nano()), 90);
    }

    #[test]
    fn the_text_names_every_span_its_outcome_and_its_link() {
        let waterfall = Waterfall::build(select(&spans(), "e-1"));
        assert_eq!(waterfall.rows[2].outcome(), "error (permanent): not ok");
        assert_eq!(waterfall.rows[0].outcome(), "ok");
        let text = waterfall.render_text(30);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 7, "{text}");
        assert!(
            lines[0].starts_with(&format!(
                "trace {T1} (+1 linked): 7 span(s), 3 service(s), 90.0 ms"
            )),
            "{text}"
        );
        assert!(lines[1].starts_with("#  hop  service"), "{text}");
        let record = lines[4];
        assert!(record.contains("    OrderPlaced"), "nested twice: {record}");
        assert!(record.contains("error (permanent): not ok"), "{record}");
        assert!(record.contains('!'), "a failed span's bar: {record}");
        let payments = lines[7];
        assert!(payments.contains("link #3"), "{payments}");
        assert!(payments.contains("12.0 ms"), "its wait: {payments}");
        // Each bar is as wide as asked.
        for line in &lines[2..] {
            let bar = &line[line.find('|').unwrap()..];
            assert_eq!(bar.chars().count(), 32, "{line}");
        }
    }

    #[test]
    fn duplicated_and_cyclic_spans_are_laid_out_once() {
        let a = at(span(T1, "a", Some("b"), "x", "a"), 0, 1);
        let b = at(span(T1, "b", Some("a"), "x", "b"), 1, 2);
        let waterfall = Waterfall::build(vec![a.clone(), b, a]);
        assert_eq!(waterfall.rows.len(), 2);
        let empty = Waterfall::build(Vec::new());
        assert!(empty.rows.is_empty());
        assert_eq!(empty.describe_traces(), "(none)");
    }
}
