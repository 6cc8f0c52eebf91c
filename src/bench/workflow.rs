//! Scenario `workflow`: what a durable step costs. A Restate server and `serve` (policy on,
//! default log level) run the `StepProbe` workflow, launched through the gateway: each of its
//! steps is one `cache/memory get` journaled by Restate, timed beside the same call made
//! directly from the same flow. The goal (issue 25) is ≤ 20 ms p99 per durable step.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::Outcome;
use super::goals::goal_line;
use super::load::{Settings, fixture};
use super::procs::{Stop, free_port, spawn_with, wait_ready, wait_ready_at};

/// Steps per probe instance, and instances run one after another.
const STEPS: u32 = 200;
const RUNS: u32 = 5;

pub async fn workflow(settings: &Settings, restate_server: &Path, quick: bool) -> Result<Outcome> {
    if !restate_server.exists() {
        return Ok(Outcome::Skipped(format!(
            "no restate-server at {} (scripts/bench installs it)",
            restate_server.display()
        )));
    }
    let fixture = fixture(settings, "workflow").await?;
    let work = settings.work.join("workflow");
    let client = reqwest::Client::new();
    let (ingress, admin, node) = (free_port()?, free_port()?, free_port()?);
    let restate_dir = work.join("restate");
    let mut restate = spawn_with(
        &work,
        "restate",
        restate_server,
        &[
            "--base-dir",
            &restate_dir.display().to_string(),
            "--no-logo",
        ],
        &[
            ("RESTATE_LISTEN_MODE", "tcp"),
            ("RESTATE_BIND_IP", "127.0.0.1"),
            ("RESTATE_BIND_PORT", &node.port().to_string()),
            ("RESTATE_ADMIN__BIND_ADDRESS", &admin.to_string()),
            ("RESTATE_INGRESS__BIND_ADDRESS", &ingress.to_string()),
        ],
        Stop::Kill,
    )?;
    wait_ready_at(
        &mut restate,
        &format!("http://{admin}/health"),
        &client,
        Duration::from_secs(60),
    )
    .await?;
    let (addr, endpoint) = (free_port()?, free_port()?);
    let mut serve = spawn_with(
        &work,
        "serve",
        &std::env::current_exe()?,
        &[
            "--data-dir",
            &fixture.data.display().to_string(),
            "serve",
            "--listen",
            &addr.to_string(),
            "--lifecycle-bus",
            "off",
            "--config",
            &fixture.config.display().to_string(),
        ],
        &[
            (
                "SWITCHYARD_RESTATE_INGRESS_URL",
                &format!("http://{ingress}"),
            ),
            ("SWITCHYARD_RESTATE_ADMIN_URL", &format!("http://{admin}")),
            ("SWITCHYARD_RESTATE_ENDPOINT_LISTEN", &endpoint.to_string()),
        ],
        Stop::Kill,
    )?;
    wait_ready(&mut serve, addr, &client).await?;
    wait_ready_at(
        &mut serve,
        &format!("http://{admin}/services/StepProbe"),
        &client,
        Duration::from_secs(60),
    )
    .await?;

    let call = |action: &'static str, params: Value| {
        let client = client.clone();
        let key = fixture.api_key.clone();
        async move {
            let answer: Value = client
                .post(format!("http://{addr}/providers/workflow/restate/{action}"))
                .bearer_auth(key)
                .json(&json!({ "params": params }))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(answer)
        }
    };
    let (steps, runs) = if quick { (20, 1) } else { (STEPS, RUNS) };
    let (mut durable, mut direct, mut first) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let id = format!("probe-{run}");
        let launched = call(
            "launch",
            json!({"workflow": "StepProbe", "id": id, "input": {"steps": steps}}),
        )
        .await?;
        if launched["data"]["started"] != true {
            bail!("StepProbe did not start: {launched}");
        }
        // Polled rarely, and not before the probe can be done: every `query` is an SQL query
        // and a handler call on the same two cores, which would show in the probe's times.
        tokio::time::sleep(Duration::from_millis(u64::from(steps) * 3)).await;
        let deadline = Instant::now() + Duration::from_secs(300);
        let output = loop {
            let queried = call("query", json!({"workflow": "StepProbe", "id": id})).await?;
            match queried["data"]["status"].as_str() {
                Some("completed") => break queried["data"]["output"].clone(),
                Some("failed" | "cancelled") => bail!("StepProbe ended: {queried}"),
                _ if Instant::now() > deadline => bail!("StepProbe never ended: {queried}"),
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let read = |key: &str| -> Vec<u64> {
            output[key]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default()
        };
        // The first instance warms the journal and the connections up. An instance's first
        // step is reported on its own: it costs more than the others (see docs/performance.md).
        if run > 0 || runs == 1 {
            let mut steps = read("durable_us");
            if !steps.is_empty() {
                first.push(steps.remove(0));
            }
            durable.extend(steps);
            direct.extend(read("direct_us"));
        }
    }
    drop(serve);
    drop(restate);
    let (durable, direct) = (percentiles(durable), percentiles(direct));
    let first_max = first.iter().max().map_or(0.0, |&us| us as f64 / 1000.0);
    Ok(Outcome::Ran(json!({
        "steps": durable.0,
        "first_step_ms": {"instances": first.len(), "max": first_max},
        "durable_ms": {"p50": durable.1, "p99": durable.2},
        "direct_ms": {"p50": direct.1, "p99": direct.2},
        "ratio_p50": durable.1 / direct.1.max(0.001),
        "ratio_p99": durable.2 / direct.2.max(0.001),
    })))
}

/// (count, p50 ms, p99 ms) of microsecond samples.
fn percentiles(mut samples: Vec<u64>) -> (usize, f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
        samples.get(index).map_or(0.0, |&us| us as f64 / 1000.0)
    };
    (samples.len(), at(0.50), at(0.99))
}

/// The goal lines of the scenario.
pub fn workflow_goals(figures: &Value) -> Vec<Value> {
    let (Some(p50), Some(p99), Some(direct_p99)) = (
        figures["durable_ms"]["p50"].as_f64(),
        figures["durable_ms"]["p99"].as_f64(),
        figures["direct_ms"]["p99"].as_f64(),
    ) else {
        return Vec::new();
    };
    vec![
        goal_line(
            "workflow: one durable step (Restate-journaled cache get), p99 ms".into(),
            format!("{p99:.2} (p50 {p50:.2})"),
            Some(("≤ 20".into(), p99 <= 20.0)),
            p99,
        ),
        goal_line(
            "workflow: an instance's first durable step, max ms".into(),
            format!(
                "{:.2}",
                figures["first_step_ms"]["max"].as_f64().unwrap_or_default()
            ),
            None,
            figures["first_step_ms"]["max"].as_f64().unwrap_or_default(),
        ),
        goal_line(
            "workflow: the same call made directly from the flow, p99 ms".into(),
            format!("{direct_p99:.3}"),
            None,
            direct_p99,
        ),
        goal_line(
            "workflow: durable ÷ direct, p99".into(),
            format!("{:.1}", figures["ratio_p99"].as_f64().unwrap_or_default()),
            None,
            figures["ratio_p99"].as_f64().unwrap_or_default(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let (n, p50, p99) = percentiles((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!((n, p50, p99), (100, 50.0, 99.0));
        assert_eq!(percentiles(vec![]), (0, 0.0, 0.0));
    }
}
