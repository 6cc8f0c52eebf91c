//! The goals table of the HTTP load: each "Must show" figure of issue 18 computed from the
//! targets measured in one run, with its goal and verdict.

use serde_json::{Value, json};

use super::load::LoadResult;

/// A line of the goals table: what was measured against what, the goal (`None` for a figure
/// shown for reference beside the goals) and whether it was met.
pub fn goal_line(
    measure: String,
    measured: String,
    goal: Option<(String, bool)>,
    value: f64,
) -> Value {
    let (goal, verdict) = match goal {
        Some((goal, true)) => (goal, "met".to_owned()),
        Some((goal, false)) => (goal, "NOT MET".to_owned()),
        None => ("–".to_owned(), "reference".to_owned()),
    };
    json!({"measure": measure, "measured": measured, "goal": goal, "verdict": verdict, "value": value})
}

/// The goals of issue 18, from the targets measured in this run: throughput against bare
/// nginx at every number of connections, the latency added over the runtime reached directly
/// at the fewest, and where the CPU goes at the most (Pingora's own cost, the filters' cost).
pub fn goals(loads: &[LoadResult], connections: &[u32]) -> Vec<Value> {
    let find = |name: &str, connections: u32| {
        loads
            .iter()
            .find(|l| l.name == name && l.connections == connections)
    };
    let mut goals = Vec::new();
    for &c in connections {
        for (name, what, goal) in [
            (
                "serve_in_process",
                "(f) serve in-process / (b) nginx",
                Some(1.0),
            ),
            ("gateway", "(c) gateway / (b) nginx", Some(0.8)),
            ("pingora", "(d) minimal Pingora / (b) nginx", None),
        ] {
            let (Some(of), Some(nginx)) = (find(name, c), find("nginx", c)) else {
                continue;
            };
            let ratio = of.requests_per_sec / nginx.requests_per_sec;
            goals.push(goal_line(
                format!("throughput {what}, {c} conn"),
                format!("{ratio:.2}"),
                goal.map(|goal: f64| (format!("≥ {goal:.2}"), ratio >= goal)),
                ratio,
            ));
        }
    }
    if let Some(&fewest) = connections.iter().min() {
        for (name, what, has_goal) in [
            ("serve_in_process", "(f) serve in-process − (a)", true),
            ("gateway", "(c) gateway − (a)", true),
            ("pingora", "(d) minimal Pingora − (a)", false),
        ] {
            let (Some(of), Some(direct)) = (find(name, fewest), find("direct", fewest)) else {
                continue;
            };
            for (percentile, goal_ms) in [(50.0, 0.1), (99.0, 0.5)] {
                let added = of.at(percentile) - direct.at(percentile);
                goals.push(goal_line(
                    format!("added latency p{percentile} {what}, {fewest} conn"),
                    format!("{added:.3} ms"),
                    has_goal.then(|| (format!("≤ {goal_ms} ms"), added <= goal_ms)),
                    added,
                ));
            }
        }
    }
    if let Some(&most) = connections.iter().max() {
        let cpu = |name: &str| find(name, most).and_then(|l| l.cpu_front_us);
        for (of, to, what) in [
            ("pingora", "nginx", "Pingora's own cost (d) − (b)"),
            ("gateway", "pingora", "the gateway's filters (c) − (d)"),
        ] {
            if let (Some(of), Some(to)) = (cpu(of), cpu(to)) {
                goals.push(goal_line(
                    format!("CPU µs/req in front, {what}, {most} conn"),
                    format!("{:+.1} µs ({of:.1} − {to:.1})", of - to),
                    None,
                    of - to,
                ));
            }
        }
    }
    goals
}
