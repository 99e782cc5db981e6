//! The results as tables: one set of rows, printed to the terminal with comfy-table and
//! written as Markdown into `BENCHMARKS.md` (see `document.rs` for the rest of the file).

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::summary::{FunctionStarts, Measured, Which};
use super::targets::{megabytes, Field, Target};

/// A table: a header and rows of cells.
pub struct Grid {
    /// Column titles.
    pub header: Vec<String>,
    /// The cells, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Grid {
    /// The table for the terminal.
    pub fn terminal(&self) -> Table {
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        table.set_header(self.header.clone());
        for row in &self.rows {
            table.add_row(row.clone());
        }
        table
    }

    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        out += &line(&vec!["---".to_string(); self.header.len()]);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// Whether more of a quantity is better (rates) or worse (costs).
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// eventkit against both peers: values and ratios ("×3.2": eventkit 3.2 times better).
pub fn comparison(field: &Field, delay_ms: f64) -> Grid {
    let mut header = vec![
        "per event".to_string(),
        "eventkit".into(),
        field.per_record.contender.label().into(),
    ];
    header.extend(field.peers.iter().map(|p| p.contender.label().to_string()));
    header.extend(
        field
            .peers
            .iter()
            .map(|p| format!("eventkit vs {}", p.contender.label())),
    );
    let mut rows = Vec::new();
    let mut row = |name: String, better: Better, value: &dyn Fn(&Measured) -> f64, decimals| {
        let ours = value(field.eventkit);
        let mut cells = vec![
            name,
            number(ours, decimals),
            number(value(field.per_record), decimals),
        ];
        cells.extend(field.peers.iter().map(|p| number(value(p), decimals)));
        cells.extend(field.peers.iter().map(|p| {
            let ratio = match better {
                Better::Higher => ours / value(p),
                Better::Lower => value(p) / ours,
            };
            format!("×{}", number(ratio, if ratio < 10.0 { 2 } else { 0 }))
        }));
        rows.push(cells);
    };
    for which in Which::BOTH {
        let phase = which.label();
        row(
            format!("records/s, {phase}"),
            Better::Higher,
            &|m| m.records_per_second(which),
            0,
        );
    }
    for which in Which::BOTH {
        let phase = which.label();
        row(
            format!("DynamoDB requests/record, {phase}"),
            Better::Lower,
            &|m| m.requests_per_record(which),
            2,
        );
    }
    for which in Which::BOTH {
        let phase = which.label();
        row(
            format!("client CPU µs/record, {phase}"),
            Better::Lower,
            &|m| m.cpu_us_per_record(which),
            0,
        );
    }
    row(
        "peak RSS, MB".into(),
        Better::Lower,
        &|m| m.peak_rss_bytes() as f64 / (1024.0 * 1024.0),
        1,
    );
    for which in Which::BOTH {
        let phase = which.label();
        row(
            format!("batch latency ms with {delay_ms:.0} ms round trips, {phase}"),
            Better::Lower,
            &|m| m.latency_ms(which),
            1,
        );
    }
    for which in Which::BOTH {
        let phase = which.label();
        row(
            format!("DynamoDB Local CPU µs/record, {phase}"),
            Better::Lower,
            &|m| m.server_cpu_us_per_record(which).unwrap_or(f64::NAN),
            0,
        );
    }
    Grid { header, rows }
}

/// Each eventkit mode against the raw baseline of its own requests (DynamoDB Local's
/// ceiling for them).
pub fn ceiling(field: &Field) -> Grid {
    let header = [
        "per event",
        "raw batched",
        "eventkit",
        "eventkit ÷ raw batched",
        "raw per record",
        "eventkit, per record",
        "per record ÷ raw per record",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    let mut row = |name: String, value: &dyn Fn(&Measured) -> f64, decimals| {
        let share = |ours: f64, raw: f64| format!("{:.0}%", ours / raw * 100.0);
        let (raw_batched, ours) = (value(field.raw_batched), value(field.eventkit));
        let (raw, per_record) = (value(field.raw), value(field.per_record));
        rows.push(vec![
            name,
            number(raw_batched, decimals),
            number(ours, decimals),
            share(ours, raw_batched),
            number(raw, decimals),
            number(per_record, decimals),
            share(per_record, raw),
        ]);
    };
    for which in Which::BOTH {
        let phase = which.label();
        row(
            format!("records/s, {phase}"),
            &|m| m.records_per_second(which),
            0,
        );
        row(
            format!("DynamoDB requests/s, {phase}"),
            &|m| m.request_rate(which),
            0,
        );
        row(
            format!("client CPU µs/record, {phase}"),
            &|m| m.cpu_us_per_record(which),
            0,
        );
        row(
            format!("DynamoDB Local CPU µs/record, {phase}"),
            &|m| m.server_cpu_us_per_record(which).unwrap_or(f64::NAN),
            0,
        );
    }
    Grid { header, rows }
}

/// The DynamoDB requests each contender made per record, by operation.
pub fn operations(measured: &[Measured]) -> Grid {
    let header = ["contender", "new record", "duplicate record"]
        .map(String::from)
        .to_vec();
    let rows = measured
        .iter()
        .map(|m| {
            vec![
                m.contender.label().to_string(),
                m.requests_by_operation(Which::New),
                m.requests_by_operation(Which::Duplicate),
            ]
        })
        .collect();
    Grid { header, rows }
}

/// What each contender's path costs DynamoDB per record: requests and the capacity units
/// they are billed.
pub fn costs(measured: &[Measured]) -> Grid {
    let mut header = vec!["contender".to_string()];
    for which in Which::BOTH {
        let phase = which.label();
        header.extend([
            format!("requests, {phase}"),
            format!("write units, {phase}"),
            format!("read units, {phase}"),
        ]);
    }
    let rows = measured
        .iter()
        .map(|m| {
            let mut cells = vec![m.contender.label().to_string()];
            for which in Which::BOTH {
                cells.extend([
                    number(m.requests_per_record(which), 2),
                    number(m.write_units_per_record(which), 2),
                    number(m.read_units_per_record(which), 2),
                ]);
            }
            cells
        })
        .collect();
    Grid { header, rows }
}

/// Cold starts and binary sizes of the function binaries.
pub fn functions(functions: &[FunctionStarts]) -> Grid {
    let header = [
        "function",
        "cold start, median",
        "cold start, slowest",
        "RSS at first event",
        "arm64 bootstrap (deployed)",
        "x86_64 binary (started here)",
    ]
    .map(String::from)
    .to_vec();
    let rows = functions
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                format!("{:.1} ms", f.median_ms()),
                format!("{:.1} ms", f.max_ms()),
                megabytes(f.peak_rss_bytes()),
                megabytes(f.arm64_bootstrap_bytes),
                megabytes(f.binary_bytes),
            ]
        })
        .collect();
    Grid { header, rows }
}

/// The targets and whether they are met.
pub fn targets(targets: &[Target]) -> Grid {
    let header = ["target", "measured", "met"].map(String::from).to_vec();
    let rows = targets
        .iter()
        .map(|t| {
            vec![
                t.goal.to_string(),
                t.measured.clone(),
                if t.met { "yes" } else { "**no**" }.to_string(),
            ]
        })
        .collect();
    Grid { header, rows }
}

/// `--only`'s table: each contender's client CPU and rate per phase, and its CPU as a
/// ratio of the first contender's, measured in the same rounds.
pub fn quick(measured: &[Measured]) -> Grid {
    let mut header = vec!["contender".to_string()];
    for which in Which::BOTH {
        let phase = which.label();
        header.push(format!("client CPU µs/record, {phase}"));
        header.push(format!("of which system, {phase}"));
        header.push(format!("× first, {phase}"));
        header.push(format!("records/s, {phase}"));
    }
    let first = measured.first();
    let rows = measured
        .iter()
        .map(|contender| {
            let mut row = vec![contender.contender.label().to_string()];
            for which in Which::BOTH {
                let cpu = contender.cpu_us_per_record(which);
                let ratio = first.map_or(f64::NAN, |first| cpu / first.cpu_us_per_record(which));
                row.push(number(cpu, 0));
                row.push(
                    contender
                        .system_cpu_us_per_record(which)
                        .map_or_else(|| "n/a".to_string(), |system| number(system, 0)),
                );
                row.push(format!("{ratio:.2}"));
                row.push(number(contender.records_per_second(which), 0));
            }
            row
        })
        .collect();
    Grid { header, rows }
}

/// `--instructions`' table: each contender's instructions per record and their ratio to
/// the first contender's.
pub fn instructions(counted: &[super::summary::Counted]) -> Grid {
    let header = [
        "contender",
        "instructions/record, new and duplicate",
        "× first",
    ]
    .map(String::from)
    .to_vec();
    let first = counted.first().map(|first| first.per_record);
    let rows = counted
        .iter()
        .map(|contender| {
            let ratio = first.map_or(f64::NAN, |first| contender.per_record / first);
            vec![
                contender.contender.label().to_string(),
                number(contender.per_record, 0),
                format!("{ratio:.3}"),
            ]
        })
        .collect();
    Grid { header, rows }
}

/// A number with thousands separators and `decimals` decimals; `n/a` for NaN.
pub fn number(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    let text = format!("{value:.decimals$}");
    let (integer, fraction) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = integer
        .strip_prefix('-')
        .map_or(("", integer), |digits| ("-", digits));
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(number(1234567.891, 1), "1,234,567.9");
        assert_eq!(number(999.0, 0), "999");
        assert_eq!(number(-1234.0, 0), "-1,234");
        assert_eq!(number(f64::NAN, 0), "n/a");
    }

    #[test]
    fn markdown_tables_have_a_separator_row() {
        let grid = Grid {
            header: vec!["a".into(), "b".into()],
            rows: vec![vec!["1".into(), "2".into()]],
        };
        assert_eq!(grid.markdown(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }
}
