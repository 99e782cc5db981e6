//! The waterfall as one self-contained HTML file: an inline SVG (no script, no stylesheet or
//! font fetched), one row per span with its bar on a shared time axis, failed spans in red,
//! links drawn from the producer's bar to the consumer's, and each bar's details in its
//! tooltip. Opens in any browser, offline, and can be attached to an issue as it is.

use std::fmt::Write;

use super::waterfall::{millis, Row, Waterfall};

const ROW_HEIGHT: usize = 24;
const LABEL_WIDTH: usize = 460;
const CHART_WIDTH: usize = 640;
const TOP: usize = 40;

/// Colours of the services' bars, in order of first appearance.
const PALETTE: [&str; 6] = [
    "#4c78a8", "#72b7b2", "#54a24b", "#b279a2", "#9d755d", "#f58518",
];

/// The page, titled with `title` (what was asked for).
pub fn render(waterfall: &Waterfall, title: &str) -> String {
    let height = TOP + ROW_HEIGHT * waterfall.rows.len() + 30;
    let width = LABEL_WIDTH + CHART_WIDTH + 20;
    let services = waterfall.services();
    let total = waterfall.duration_nano().max(1);
    let x_of = |nano: u64| LABEL_WIDTH as f64 + (nano as f64 / total as f64) * CHART_WIDTH as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="12">"#
    );
    let _ = write!(
        svg,
        r##"<text x="4" y="16" font-weight="bold">{}</text><text x="{LABEL_WIDTH}" y="32" fill="#666">0 ms</text><text x="{}" y="32" fill="#666" text-anchor="end">{}</text>"##,
        escape(&format!(
            "trace {}: {} span(s), {} service(s)",
            waterfall.describe_traces(),
            waterfall.rows.len(),
            services.len()
        )),
        LABEL_WIDTH + CHART_WIDTH,
        escape(&millis(waterfall.duration_nano())),
    );
    for (number, row) in waterfall.rows.iter().enumerate() {
        let y = TOP + number * ROW_HEIGHT;
        if number % 2 == 0 {
            let _ = write!(
                svg,
                r##"<rect x="0" y="{y}" width="{width}" height="{ROW_HEIGHT}" fill="#f4f4f4"/>"##
            );
        }
        let label = format!(
            "{:>2} hop {} {} {}{}",
            number + 1,
            row.hop,
            row.span.service,
            "  ".repeat(row.depth),
            row.span.name
        );
        let _ = write!(
            svg,
            r#"<text x="4" y="{}" xml:space="preserve">{}</text>"#,
            y + 16,
            escape(&label)
        );
        let x = x_of(row.offset_nano);
        let bar_width = (x_of(row.offset_nano + row.span.duration_nano()) - x).max(2.0);
        let colour = if row.failed() {
            "#d62728"
        } else {
            let service = services
                .iter()
                .position(|service| *service == row.span.service)
                .unwrap_or(0);
            PALETTE[service % PALETTE.len()]
        };
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{}" width="{bar_width:.1}" height="{}" rx="2" fill="{colour}"><title>{}</title></rect>"#,
            y + 5,
            ROW_HEIGHT - 10,
            escape(&tooltip(row))
        );
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" fill="#333">{}</text>"##,
            (x + bar_width + 4.0).min((LABEL_WIDTH + CHART_WIDTH) as f64 - 60.0),
            y + 16,
            escape(&millis(row.span.duration_nano()))
        );
        for linked in &row.links {
            let Some(producer) = waterfall.rows.get(*linked) else {
                continue;
            };
            let from_x = x_of(producer.offset_nano + producer.span.duration_nano());
            let from_y = TOP + linked * ROW_HEIGHT + ROW_HEIGHT / 2;
            let _ = write!(
                svg,
                r##"<path d="M{from_x:.1},{from_y} L{x:.1},{}" stroke="#888" stroke-dasharray="4 3" fill="none"><title>link</title></path>"##,
                y + ROW_HEIGHT / 2
            );
        }
    }
    svg.push_str("</svg>");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<p style=\"font-family:monospace\">{}</p>\n{svg}\n</body></html>\n",
        escape(&format!("trace {title}")),
        escape(&format!(
            "eventkit-local trace {title}: hover a bar for its details; dashed lines are links \
             (a batch consumer to its producers)"
        )),
    )
}

/// A bar's details: name, service, times, outcome and attributes.
fn tooltip(row: &Row) -> String {
    let mut text = format!(
        "{} ({})\nstart +{}, duration {}, wait {}\n{}\ntrace {} span {}",
        row.span.name,
        row.span.service,
        millis(row.offset_nano),
        millis(row.span.duration_nano()),
        row.wait_nano.map_or_else(|| "-".to_string(), millis),
        row.outcome(),
        row.span.trace_id,
        row.span.span_id,
    );
    for (key, value) in &row.span.attributes {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        let _ = write!(text, "\n{key} = {value}");
    }
    text
}

/// Text made safe inside an element or an attribute.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::traces::store::{SpanLink, StoredSpan};

    fn span(id: &str, parent: Option<&str>, name: &str, start: u64, end: u64) -> StoredSpan {
        StoredSpan {
            trace_id: "ab".repeat(16),
            span_id: id.repeat(8),
            parent_span_id: parent.map(|parent| parent.repeat(8)),
            name: name.into(),
            service: "inventory".into(),
            kind: "consumer".into(),
            start_unix_nano: start,
            end_unix_nano: end,
            status: "unset".into(),
            status_message: String::new(),
            attributes: BTreeMap::new(),
            links: Vec::new(),
        }
    }

    #[test]
    fn the_page_is_self_contained_with_a_bar_per_span_and_escaped_text() {
        let mut failed = span("02", Some("01"), "<Order> & \"co\"", 2_000_000, 8_000_000);
        failed.status = "error".into();
        let mut linked = span("03", None, "process payments", 9_000_000, 10_000_000);
        linked.trace_id = "cd".repeat(16);
        linked.links.push(SpanLink {
            trace_id: "ab".repeat(16),
            span_id: "02".repeat(8),
        });
        let waterfall = Waterfall::build(vec![
            span("01", None, "process orders", 0, 9_000_000),
            failed,
            linked,
        ]);
        let page = render(&waterfall, "e-1");
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert_eq!(page.matches("<svg").count(), 1);
        assert_eq!(
            page.matches("<title>").count(),
            1 + 3 + 1,
            "page, bars, link"
        );
        assert!(!page.contains("src=") && !page.contains("href=") && !page.contains("<script"));
        assert!(page.contains("&lt;Order&gt; &amp; &quot;co&quot;"));
        assert!(!page.contains("<Order>"));
        assert!(page.contains("#d62728"), "the failed span is red");
        assert!(page.contains("stroke-dasharray"), "the link is drawn");
    }
}
