//! SVG plots of the load results (plotters' SVG backend: text is left to the SVG viewer, so
//! no font files are needed).

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use serde_json::Value;

use super::LoadResult;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Draws one panel: the targets measured at one number of connections.
type Panel = fn(&[&LoadResult], u32, &Area) -> Result<()>;

/// `latency.svg` (latency by percentile, one line per target) and `throughput.svg` (req/s),
/// each with one panel per number of connections, top to bottom in the order they ran.
pub fn draw(loads: &[LoadResult], out: &Path) -> Result<Vec<PathBuf>> {
    let mut levels: Vec<u32> = Vec::new();
    for load in loads {
        if !levels.contains(&load.connections) {
            levels.push(load.connections);
        }
    }
    let panels = |path: &Path, draw: Panel| {
        let height = 540 * u32::try_from(levels.len()).unwrap_or(1);
        let root = SVGBackend::new(path, (960, height)).into_drawing_area();
        root.fill(&WHITE)?;
        for (area, &connections) in root.split_evenly((levels.len(), 1)).iter().zip(&levels) {
            let shown: Vec<&LoadResult> = loads
                .iter()
                .filter(|l| l.connections == connections)
                .collect();
            draw(&shown, connections, area)?;
        }
        root.present()?;
        anyhow::Ok(())
    };
    let latency = out.join("latency.svg");
    let throughput = out.join("throughput.svg");
    panels(&latency, draw_latency)?;
    panels(&throughput, draw_throughput)?;
    Ok(vec![latency, throughput])
}

/// Percentiles on the usual "number of nines" axis: 50 → 0.3, 99 → 2, 99.9 → 3, 99.99 → 4.
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-5).log10()
}

fn draw_latency(loads: &[&LoadResult], connections: u32, root: &Area) -> Result<()> {
    // The 100th percentile is one outlier: the axis ends at 99.99 so the body stays readable.
    let shown = |l: &LoadResult| -> Vec<(f64, f64)> {
        l.percentiles
            .iter()
            .filter(|(p, _)| *p < 100.0)
            .map(|(p, ms)| (nines(*p), *ms))
            .collect()
    };
    let top = loads
        .iter()
        .flat_map(|l| shown(l).into_iter().map(|(_, ms)| ms))
        .fold(0.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Latency by percentile: POST /providers/cache/memory/get, {connections} connections"
            ),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.0f64..4.0f64, 0.0f64..top.max(0.01))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(5)
        .x_label_formatter(&|x| {
            format!("{:.4}", 100.0 * (1.0 - 10f64.powf(-x)))
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        })
        .draw()?;
    for (i, load) in loads.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(shown(load), color.stroke_width(2)))?
            .label(load.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn draw_throughput(loads: &[&LoadResult], connections: u32, root: &Area) -> Result<()> {
    let top = loads
        .iter()
        .map(|l| l.requests_per_sec)
        .fold(0.0f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Throughput (requests per second), {connections} connections"),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(0.0f64..loads.len() as f64, 0.0f64..top.max(1.0))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(loads.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < loads.len() {
                loads[i].name.to_owned()
            } else {
                String::new()
            }
        })
        .y_desc("req/s")
        .draw()?;
    chart.draw_series(loads.iter().enumerate().map(|(i, load)| {
        let x = i as f64;
        Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, load.requests_per_sec)],
            Palette99::pick(i).filled(),
        )
    }))?;
    chart.draw_series(loads.iter().enumerate().map(|(i, load)| {
        Text::new(
            format!("{:.0}", load.requests_per_sec),
            (i as f64 + 0.35, load.requests_per_sec + top * 0.02),
            ("sans-serif", 16),
        )
    }))?;
    Ok(())
}

/// `ledger.svg`: pgbench's transactions and the ledger's journals per second, one bar per
/// phase of the ledger bench (a phase it skipped has no bar).
pub fn draw_ledger(phases: &[Value], out: &Path) -> Result<PathBuf> {
    let bars: Vec<(&str, f64)> = phases
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?, p["per_sec"].as_f64()?)))
        .collect();
    let path = out.join("ledger.svg");
    draw_to(&path, 1, |areas| {
        draw_bars(
            "PostgreSQL: pgbench tpcb-like transactions and ledger journals per second",
            "per second",
            &bars,
            &areas[0],
        )
    })?;
    Ok(path)
}

/// `integration.svg`: records/s of each mapping (one thread) in the top panel, the bare fetch
/// and the sync in the bottom one (the sync panel is left out when the sync did not run).
pub fn draw_integration(figures: &Value, out: &Path) -> Result<PathBuf> {
    let mapping: Vec<(&str, f64)> = figures["mapping"]["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v["name"].as_str()?, v["per_sec"].as_f64()?)))
        .collect();
    let sync = &figures["sync"];
    let transfer: Vec<(&str, f64)> = [
        ("bare paged fetch", sync["bare_fetch_per_sec"].as_f64()),
        ("sync to db/sqlite", sync["sync"]["per_sec"].as_f64()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    let path = out.join("integration.svg");
    let panels = if transfer.is_empty() { 1 } else { 2 };
    draw_to(&path, panels, |areas| {
        draw_bars(
            "Integration mapping, 10 fields of a Shopify-like order, one thread",
            "records per second",
            &mapping,
            &areas[0],
        )?;
        if let Some(area) = areas.get(1) {
            draw_bars(
                &format!(
                    "{} orders from the fake Shopify: bare fetch and full sync",
                    sync["records"]
                ),
                "records per second",
                &transfer,
                area,
            )?;
        }
        Ok(())
    })?;
    Ok(path)
}

/// `ai.svg`: the latency each proxy adds to the bare upstream at the paced rate (p50 and p99,
/// in µs) in the top panel, each target's most req/s in the bottom one (LiteLLM's bars are
/// left out when it was skipped).
pub fn draw_ai(figures: &Value, out: &Path) -> Result<PathBuf> {
    let pick = |bars: &[(&'static str, &str)], scale: f64| -> Vec<(&'static str, f64)> {
        bars.iter()
            .filter_map(|(name, key)| Some((*name, figures[*key].as_f64()? * scale)))
            .collect()
    };
    let added = pick(
        &[
            ("Switchyard p50", "switchyard_added_p50_ms"),
            ("Switchyard p99", "switchyard_added_p99_ms"),
            ("LiteLLM p50", "litellm_added_p50_ms"),
            ("LiteLLM p99", "litellm_added_p99_ms"),
        ],
        1e3,
    );
    let throughput = pick(
        &[
            ("bare upstream", "bare_per_sec"),
            ("Switchyard", "switchyard_per_sec"),
            ("LiteLLM", "litellm_per_sec"),
        ],
        1.0,
    );
    let path = out.join("ai.svg");
    draw_to(&path, 2, |areas| {
        draw_bars(
            &format!(
                "POST /v1/chat/completions: latency added to the bare upstream at {:.0} req/s",
                figures["paced_per_sec"].as_f64().unwrap_or_default()
            ),
            "µs",
            &added,
            &areas[0],
        )?;
        draw_bars(
            &format!(
                "POST /v1/chat/completions: req/s at {} connections",
                figures["most_connections"]
            ),
            "requests per second",
            &throughput,
            &areas[1],
        )
    })?;
    Ok(path)
}

/// An SVG at `path` of `panels` panels 960 x 540 each, top to bottom, drawn by `draw`.
fn draw_to(path: &Path, panels: u32, draw: impl FnOnce(&[Area]) -> Result<()>) -> Result<()> {
    let root = SVGBackend::new(path, (960, 540 * panels)).into_drawing_area();
    root.fill(&WHITE)?;
    draw(&root.split_evenly((panels as usize, 1)))?;
    root.present()?;
    Ok(())
}

fn draw_bars(caption: &str, y_desc: &str, bars: &[(&str, f64)], area: &Area) -> Result<()> {
    let top = bars.iter().map(|(_, v)| *v).fold(0.0f64, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(0.0f64..bars.len() as f64, 0.0f64..top.max(1.0))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < bars.len() {
                bars[i].0.to_owned()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, value))| {
        let x = i as f64;
        Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, *value)],
            Palette99::pick(i).filled(),
        )
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, value))| {
        Text::new(
            format!("{value:.0}"),
            (i as f64 + 0.35, value + top * 0.02),
            ("sans-serif", 16),
        )
    }))?;
    Ok(())
}
