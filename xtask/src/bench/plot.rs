//! The plot in `BENCHMARKS.md`: four panels of grouped bars (new and duplicate records per
//! contender) drawn as SVG with plotters.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::summary::{Measured, Which};

const NEW: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
const DUPLICATE: RGBColor = RGBColor(0xe0, 0x8e, 0x2b);

/// One panel: a title, whether its axis is logarithmic, and a value pair per contender.
struct Panel<'a> {
    title: String,
    log: bool,
    bars: Vec<(&'a str, [f64; 2])>,
}

/// Writes the plot of `measured` to `path`.
pub fn write(path: &Path, measured: &[Measured], delay_ms: f64) -> Result<()> {
    let bars = |value: &dyn Fn(&Measured, Which) -> f64| {
        measured
            .iter()
            .map(|m| (short_label(m), Which::BOTH.map(|which| value(m, which))))
            .collect::<Vec<_>>()
    };
    let panels = [
        Panel {
            title: "records per second (higher is better)".into(),
            log: false,
            bars: bars(&|m, w| m.records_per_second(w)),
        },
        Panel {
            title: "client CPU µs per record (log scale, lower is better)".into(),
            log: true,
            bars: bars(&|m, w| m.cpu_us_per_record(w)),
        },
        Panel {
            title: format!("batch latency ms, {delay_ms:.0} ms round trips (lower is better)"),
            log: false,
            bars: bars(&|m, w| m.latency_ms(w)),
        },
        Panel {
            title: "peak RSS MB (lower is better)".into(),
            log: false,
            bars: bars(&|m, _| m.peak_rss_bytes() as f64 / (1024.0 * 1024.0)),
        },
    ];
    let root = SVGBackend::new(path, (1400, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (legend, body) = root.split_vertically(36);
    draw_legend(&legend)?;
    for (area, panel) in body.split_evenly((2, 2)).iter().zip(&panels) {
        draw_panel(area, &root, panel)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

fn short_label(measured: &Measured) -> &'static str {
    use super::runner::Contender;
    match measured.contender {
        Contender::RawBatched => "raw batch",
        Contender::Raw => "raw 1-by-1",
        Contender::Eventkit => "eventkit",
        Contender::EventkitPerRecord => "eventkit 1-by-1",
        Contender::EventkitTraced => "eventkit traced",
        Contender::EventkitTransactional => "eventkit outbox",
        Contender::EventkitOutboxItems => "eventkit items",
        Contender::EventkitEmits => "eventkit emits",
        Contender::Python => "Powertools Py",
        Contender::Node => "Powertools TS",
    }
}

fn draw_legend(area: &DrawingArea<SVGBackend, Shift>) -> Result<()> {
    let style = ("sans-serif", 16).into_font();
    for (index, (label, color)) in [("new records", NEW), ("duplicate records", DUPLICATE)]
        .into_iter()
        .enumerate()
    {
        let x = 380 + index as i32 * 200;
        area.draw(&Rectangle::new([(x, 12), (x + 16, 28)], color.filled()))
            .map_err(plot_error)?;
        area.draw(&Text::new(label, (x + 22, 13), style.clone()))
            .map_err(plot_error)?;
    }
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    root: &DrawingArea<SVGBackend, Shift>,
    panel: &Panel,
) -> Result<()> {
    // A log panel plots log10 of each value on a linear axis labelled with the powers of 10.
    let scale = |value: f64| {
        if panel.log {
            value.max(1.0).log10()
        } else {
            value
        }
    };
    let top = panel
        .bars
        .iter()
        .flat_map(|(_, values)| *values)
        .filter(|v| v.is_finite())
        .map(scale)
        .fold(0.0, f64::max);
    let top = if panel.log {
        top.ceil() + 0.5
    } else {
        top * 1.2
    }
    .max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..panel.bars.len() as f64, 0.0..top)
        .map_err(plot_error)?;
    let log = panel.log;
    let axis_label = move |y: &f64| {
        if log {
            compact(10f64.powf(*y))
        } else {
            compact(*y)
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .disable_x_axis()
        .y_label_formatter(&axis_label);
    if log {
        mesh.y_labels(top.floor() as usize + 1);
    }
    mesh.draw().map_err(plot_error)?;
    let label_style = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    let value_style = ("sans-serif", 11)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    for (index, (label, values)) in panel.bars.iter().enumerate() {
        let x = index as f64;
        for (offset, value, color) in [(0.15, values[0], NEW), (0.5, values[1], DUPLICATE)] {
            if !value.is_finite() || value <= 0.0 {
                continue;
            }
            let (left, right) = (x + offset, x + offset + 0.35);
            chart
                .draw_series([Rectangle::new(
                    [(left, 0.0), (right, scale(value))],
                    color.filled(),
                )])
                .map_err(plot_error)?;
            let (px, py) = chart.backend_coord(&((left + right) / 2.0, scale(value)));
            root.draw(&Text::new(
                compact(value),
                (px, py - 2),
                value_style.clone(),
            ))
            .map_err(plot_error)?;
        }
        let (px, py) = chart.backend_coord(&(x + 0.5, 0.0));
        root.draw(&Text::new(*label, (px, py + 6), label_style.clone()))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// A short value label: 12.3k, 456, 7.8.
fn compact(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 1000.0 {
        format!("{:.1}k", value / 1000.0)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn plot_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("drawing the plot: {error}")
}
