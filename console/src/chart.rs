//! The provider page's live chart: request rate, error rate and mean latency, drawn as SVG
//! from samples of the provider's own metrics (`GET /providers/{d}/{n}/metrics`, which the
//! gateway scopes to the caller's tenant). And the operator's usage chart of one tenant, per
//! UTC day ([`daily`]).
//!
//! The console keeps the last [`KEEP`] samples per user and provider; each time the chart is
//! asked for (the page's script asks every two seconds) a new sample is taken. Rates are the
//! difference between two samples over the time between them.

use std::collections::VecDeque;
use std::time::Instant;

/// Samples kept per user and provider: two minutes at one sample every two seconds.
pub const KEEP: usize = 60;

/// The provider's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Instant,
    pub calls: f64,
    pub errors: f64,
    pub seconds_sum: f64,
    pub seconds_count: f64,
}

/// Reads the counters out of OpenMetrics text: every `*_calls_total` sample (errors are those
/// whose `code` is not `ok`) and the `*_call_duration_seconds` sum and count.
pub fn sample(metrics: &str, at: Instant) -> Sample {
    let mut sample = Sample {
        at,
        calls: 0.0,
        errors: 0.0,
        seconds_sum: 0.0,
        seconds_count: 0.0,
    };
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or_default();
        if name.ends_with("_calls_total") {
            sample.calls += value;
            if !series.contains("code=\"ok\"") {
                sample.errors += value;
            }
        } else if name.ends_with("_call_duration_seconds_sum") {
            sample.seconds_sum += value;
        } else if name.ends_with("_call_duration_seconds_count") {
            sample.seconds_count += value;
        }
    }
    sample
}

/// Adds `sample`, dropping the oldest beyond [`KEEP`].
pub fn push(samples: &mut VecDeque<Sample>, sample: Sample) {
    samples.push_back(sample);
    while samples.len() > KEEP {
        samples.pop_front();
    }
}

/// Per interval between samples: calls/s, errors/s and mean latency in ms.
fn rates(samples: &VecDeque<Sample>) -> Vec<[f64; 3]> {
    samples
        .iter()
        .zip(samples.iter().skip(1))
        .map(|(a, b)| {
            let seconds = b.at.duration_since(a.at).as_secs_f64().max(0.001);
            let count = b.seconds_count - a.seconds_count;
            let latency = if count > 0.0 {
                (b.seconds_sum - a.seconds_sum) / count * 1000.0
            } else {
                0.0
            };
            [
                ((b.calls - a.calls) / seconds).max(0.0),
                ((b.errors - a.errors) / seconds).max(0.0),
                latency.max(0.0),
            ]
        })
        .collect()
}

/// Three stacked line charts in one SVG, with the totals in text (and in `data-` attributes,
/// for anyone reading the chart with a program).
pub fn svg(samples: &VecDeque<Sample>) -> String {
    let last = samples.back().copied();
    let (calls, errors) = last.map_or((0.0, 0.0), |s| (s.calls, s.errors));
    let rates = rates(samples);
    let (width, band) = (480.0, 70.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {h}\" width=\"{width}\" height=\"{h}\" \
         role=\"img\" aria-label=\"{calls} calls, {errors} errors\" data-calls=\"{calls}\" data-errors=\"{errors}\" \
         font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
        h = band * 3.0 + 30.0
    );
    let series = [
        ("requests/s", "#1a5fb4"),
        ("errors/s", "#a51d2d"),
        ("mean latency ms", "#26a269"),
    ];
    for (i, (label, colour)) in series.iter().enumerate() {
        let top = i as f64 * band + 10.0;
        let values: Vec<f64> = rates.iter().map(|r| r[i]).collect();
        let max = values.iter().copied().fold(0.0_f64, f64::max);
        let now = values.last().copied().unwrap_or(0.0);
        out.push_str(&format!(
            "<text x=\"4\" y=\"{}\" fill=\"#222\">{label}: {now:.1} (max {max:.1})</text>\
             <line x1=\"0\" x2=\"{width}\" y1=\"{b}\" y2=\"{b}\" stroke=\"#bbb\"/>",
            top + 12.0,
            b = top + band - 6.0
        ));
        if values.len() > 1 {
            let step = width / (KEEP - 2) as f64;
            let scale = if max > 0.0 { (band - 24.0) / max } else { 0.0 };
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(n, v)| format!("{:.1},{:.1}", n as f64 * step, top + band - 6.0 - v * scale))
                .collect();
            out.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            ));
        }
    }
    out.push_str(&format!(
        "<text x=\"4\" y=\"{}\" fill=\"#222\">{calls} calls, {errors} errors in total</text></svg>",
        band * 3.0 + 22.0
    ));
    out
}

/// One tenant's counts on one UTC day, as `GET /admin/tenants/{t}/usage` answers them.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub calls: f64,
    pub errors: f64,
    pub tokens: f64,
}

/// One count of a day.
type Count = fn(&Day) -> f64;

/// Bars per day in one SVG: calls with their errors over them, and AI tokens; the first and
/// last day under each band, the totals in text and in `data-` attributes.
pub fn daily(days: &[Day]) -> String {
    let (width, band) = (640.0, 110.0);
    let total = |f: Count| days.iter().map(f).sum::<f64>();
    let (calls, errors, tokens) = (total(|d| d.calls), total(|d| d.errors), total(|d| d.tokens));
    let height = band * 2.0 + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"{calls} calls, {errors} errors, {tokens} AI tokens over {n} days\" \
         data-calls=\"{calls}\" data-errors=\"{errors}\" data-tokens=\"{tokens}\" \
         font-family=\"sans-serif\" font-size=\"12\"><rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
        n = days.len()
    );
    let step = width / days.len().max(1) as f64;
    let bars: [(&str, Count, Option<Count>, &str); 2] = [
        (
            "calls per day (errors in red)",
            |d| d.calls,
            Some(|d| d.errors),
            "#1a5fb4",
        ),
        ("AI tokens per day", |d| d.tokens, None, "#26a269"),
    ];
    for (i, (label, value, over, colour)) in bars.iter().enumerate() {
        let top = i as f64 * band + 10.0;
        let base = top + band - 22.0;
        let max = days.iter().map(value).fold(0.0_f64, f64::max);
        let scale = if max > 0.0 { (band - 46.0) / max } else { 0.0 };
        out.push_str(&format!(
            "<text x=\"4\" y=\"{}\" fill=\"#222\">{label} (max {max})</text>\
             <line x1=\"0\" x2=\"{width}\" y1=\"{base}\" y2=\"{base}\" stroke=\"#bbb\"/>",
            top + 12.0
        ));
        for (n, day) in days.iter().enumerate() {
            let x = n as f64 * step + step * 0.1;
            let mut bar = |v: f64, fill: &str| {
                if v > 0.0 {
                    out.push_str(&format!(
                        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{} {v}</title></rect>",
                        base - v * scale,
                        step * 0.8,
                        v * scale,
                        day.day
                    ));
                }
            };
            bar(value(day), colour);
            if let Some(over) = over {
                bar(over(day), "#a51d2d");
            }
        }
        if let (Some(first), Some(last)) = (days.first(), days.last()) {
            out.push_str(&format!(
                "<text x=\"2\" y=\"{y}\" fill=\"#222\">{}</text>\
                 <text x=\"{width}\" y=\"{y}\" fill=\"#222\" text-anchor=\"end\">{}</text>",
                first.day,
                last.day,
                y = base + 15.0
            ));
        }
    }
    out.push_str(&format!(
        "<text x=\"4\" y=\"{}\" fill=\"#222\">{calls} calls, {errors} errors, {tokens} AI tokens in total</text></svg>",
        band * 2.0 + 22.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const METRICS: &str = "# TYPE switchyard_provider_calls counter\n\
        switchyard_provider_calls_total{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"get\",code=\"ok\"} 8\n\
        switchyard_provider_calls_total{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"get\",code=\"params_invalid\"} 2\n\
        switchyard_provider_call_duration_seconds_sum{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"get\"} 0.05\n\
        switchyard_provider_call_duration_seconds_count{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"get\"} 10\n\
        # EOF\n";

    #[test]
    fn the_counters_are_read_and_rates_drawn_between_samples() {
        let start = Instant::now();
        let first = sample(METRICS, start);
        assert_eq!((first.calls, first.errors), (10.0, 2.0));
        let mut later = first;
        later.at = start + Duration::from_secs(2);
        later.calls = 30.0;
        later.seconds_sum = 0.15;
        later.seconds_count = 30.0;
        let mut samples = VecDeque::new();
        push(&mut samples, first);
        push(&mut samples, later);
        let [rate, errors, latency] = rates(&samples)[0];
        assert_eq!((rate, errors), (10.0, 0.0));
        assert!((latency - 5.0).abs() < 1e-9, "{latency}");
        let mut third = later;
        third.at = start + Duration::from_secs(4);
        push(&mut samples, third);
        let drawn = svg(&samples);
        assert!(drawn.contains("data-calls=\"30\""), "{drawn}");
        assert!(drawn.contains("<polyline"), "{drawn}");
        for _ in 0..(KEEP * 2) {
            push(&mut samples, later);
        }
        assert_eq!(samples.len(), KEEP);
    }

    #[test]
    fn days_are_drawn_as_bars_with_their_totals() {
        let day = |day: &str, calls, errors, tokens| Day {
            day: day.into(),
            calls,
            errors,
            tokens,
        };
        let drawn = daily(&[
            day("2026-03-01", 0.0, 0.0, 0.0),
            day("2026-03-02", 40.0, 4.0, 1200.0),
        ]);
        assert!(drawn.contains("data-calls=\"40\""), "{drawn}");
        assert!(drawn.contains("data-errors=\"4\""), "{drawn}");
        assert!(drawn.contains("data-tokens=\"1200\""), "{drawn}");
        // The empty day draws nothing; the other a calls bar, an errors bar and a tokens bar.
        assert_eq!(drawn.matches("<rect x=").count(), 3, "{drawn}");
        assert!(drawn.contains("<title>2026-03-02 4</title>"), "{drawn}");
        assert!(drawn.contains(">2026-03-01</text>"), "{drawn}");
        assert!(daily(&[]).contains("0 calls"));
    }
}
