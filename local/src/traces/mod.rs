//! Traces, seen locally: the functions `run` starts export their spans (OpenTelemetry, OTLP
//! over HTTP) to a [`receiver`] of eventkit-local's own, which keeps them per application in
//! a [`store`]; `eventkit-local trace <id>` finds one order's (or event's, or trace's) spans,
//! lays them out as a [`waterfall`] in the terminal and draws it as a self-contained
//! [`html`] file. No collector, no Jaeger, no Docker; a user who runs one sets
//! `OTEL_EXPORTER_OTLP_ENDPOINT` and the functions export there instead.

pub mod html;
pub mod receiver;
pub mod store;
pub mod waterfall;

use std::path::Path;

use store::{read_spans, traces_dir, StoreError, StoredSpan};

/// The variable that points the functions' exporters at an OTLP endpoint.
pub const ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Every span kept for the applications of `project`: of stack `stack` only when given,
/// else of every stack that ran there. No span file yet means no spans.
pub fn load_spans(project: &Path, stack: Option<&str>) -> Result<Vec<StoredSpan>, StoreError> {
    let files: Vec<std::path::PathBuf> = match stack {
        Some(stack) => vec![store::span_file(project, stack)],
        None => {
            let dir = traces_dir(project);
            match std::fs::read_dir(&dir) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(source) => return Err(StoreError::Io { path: dir, source }),
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
                    .collect(),
            }
        }
    };
    let mut spans = Vec::new();
    for file in files.iter().filter(|file| file.is_file()) {
        spans.extend(read_spans(file)?);
    }
    Ok(spans)
}
