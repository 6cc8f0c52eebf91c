//! `switchyard bench --quick` starts every process it measures (runtime, gateway, bare nginx,
//! the minimal Pingora proxy, `serve` both ways), drives them with wrk at several and at one
//! connection and prints its table and the issue-18 ratios: a smoke test of the bench command,
//! not a measurement (benchmarks are too slow and noisy for the test command).
//! Needs nginx and wrk (`ensure_build_deps --test` installs them).
//!
//! It also checks that the bench stops everything it started: bare nginx's workers used to
//! outlive every run, orphaned to PID 1.

use crate::common::BIN;

use std::path::Path;
use std::process::Command;

/// The processes that name `dir` in their command line, their working directory or an open
/// file: nginx's master and workers (workers retitle themselves `nginx: worker process` but
/// keep the error log under `dir` open), wrk (its script), the runtimes, the gateway and
/// `serve` (their logs and data dirs). `dir` is this run's own temporary directory, so
/// processes of other runs and other people's servers never match. Reading other users'
/// `/proc/<pid>/fd` (nginx's workers run as `nobody`) needs root, as the test machines run.
fn started_under(dir: &Path) -> Vec<(u32, String)> {
    let dir = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let proc = entry.path();
        let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // A zombie has no command line and is gone once its parent reaps it.
        if cmdline.is_empty() {
            continue;
        }
        let names_dir = |link: &Path| {
            std::fs::read_link(link).is_ok_and(|target| target.to_string_lossy().contains(&dir))
        };
        let open_files = std::fs::read_dir(proc.join("fd"))
            .map(|fds| fds.flatten().any(|fd| names_dir(&fd.path())))
            .unwrap_or(false);
        if cmdline.contains(&dir) || names_dir(&proc.join("cwd")) || open_files {
            found.push((pid, cmdline.trim_end().to_owned()));
        }
    }
    found
}

#[test]
fn a_quick_bench_run_prints_the_table_and_writes_results_and_plots() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(BIN)
        .args([
            "bench",
            "--quick",
            "--scenarios",
            "gateway,inprocess,memory,startup",
            "--out",
        ])
        .arg(out.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("switchyard bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    // Before any other assertion, so that a failed run is checked too.
    let left = started_under(out.path());
    for (pid, _) in &left {
        // Stopped here so that a failing test leaves nothing behind either.
        let _ = Command::new("kill")
            .args(["-s", "KILL", &pid.to_string()])
            .status();
    }
    assert!(
        left.is_empty(),
        "the bench left processes running (killed now): {left:#?}\nbench {}: {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for row in [
        "| (a) runtime direct | 4 |",
        "| (b) bare nginx proxy_pass | 1 |",
        "| (c) switchyard gateway",
        "| (d) minimal Pingora proxy, no filters | 1 |",
        "| (e) serve, gateway → runtime over loopback HTTP | 4 |",
        "| (f) serve, gateway → runtime in process | 1 |",
        "startup_to_ready_ms",
        "rss_idle_serve_mib",
    ] {
        assert!(stdout.contains(row), "no {row:?} in the table:\n{stdout}");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let loads = results["load"].as_array().unwrap();
    // Six targets, each at the quick run's 4 connections and at 1.
    let mut measured: Vec<(&str, u64)> = loads
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap(),
                l["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    measured.sort();
    let mut expected: Vec<(&str, u64)> = [
        "direct",
        "nginx",
        "gateway",
        "pingora",
        "serve_http",
        "serve_in_process",
    ]
    .into_iter()
    .flat_map(|name| [(name, 4), (name, 1)])
    .collect();
    expected.sort();
    assert_eq!(measured, expected, "{results}");
    for load in loads {
        assert!(load["requests"].as_u64().unwrap() > 0, "{load}");
        assert_eq!(load["errors"], 0, "every answer was a 200: {load}");
    }
    // The "Must show" lines, each with a figure, its goal and a verdict.
    let goals = results["goals"].as_array().unwrap();
    for (measure, goal) in [
        (
            "throughput (f) serve in-process / (b) nginx, 4 conn",
            "≥ 1.00",
        ),
        ("throughput (c) gateway / (b) nginx, 4 conn", "≥ 0.80"),
        ("throughput (c) gateway / (b) nginx, 1 conn", "≥ 0.80"),
        ("throughput (d) minimal Pingora / (b) nginx, 4 conn", "–"),
        (
            "added latency p50 (f) serve in-process − (a), 1 conn",
            "≤ 0.1 ms",
        ),
        (
            "added latency p99 (f) serve in-process − (a), 1 conn",
            "≤ 0.5 ms",
        ),
        ("added latency p50 (c) gateway − (a), 1 conn", "≤ 0.1 ms"),
        (
            "CPU µs/req in front, Pingora's own cost (d) − (b), 4 conn",
            "–",
        ),
        (
            "CPU µs/req in front, the gateway's filters (c) − (d), 4 conn",
            "–",
        ),
    ] {
        let line = goals
            .iter()
            .find(|g| g["measure"] == measure)
            .unwrap_or_else(|| panic!("no goal line {measure:?}: {goals:#?}"));
        assert_eq!(line["goal"], goal, "{line}");
        assert!(line["value"].as_f64().is_some_and(f64::is_finite), "{line}");
        assert!(
            ["met", "NOT MET", "reference"].contains(&line["verdict"].as_str().unwrap()),
            "{line}"
        );
        assert!(
            stdout.contains(measure),
            "{measure:?} not in the table:\n{stdout}"
        );
    }
    for plot in ["latency.svg", "throughput.svg"] {
        let svg = std::fs::read_to_string(out.path().join(plot)).unwrap();
        assert!(
            svg.starts_with("<svg"),
            "{plot}: {}",
            &svg[..svg.len().min(80)]
        );
    }
}

/// `switchyard bench --quick --scenarios ai` against a fake upstream in this process, with
/// LiteLLM left out on purpose (a path that does not exist: its proxy takes half a minute to
/// start, too long for the test command): the bare upstream and Switchyard's AI gateway are
/// measured flat out and paced, LiteLLM is reported as skipped (not as a figure), and the
/// issue-22 added-latency line has its goal and a verdict.
#[test]
fn a_quick_ai_bench_run_measures_the_gateway_beside_the_bare_upstream_and_reports_litellm_skipped()
{
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = tokio.block_on(switchyard_ai_fakes::FakeAi::start(
        switchyard_ai_fakes::FakeAiSettings {
            record_limit: 0,
            ..Default::default()
        },
    ));
    let out = tempfile::tempdir().unwrap();
    let no_litellm = out.path().join("no-litellm/bin/litellm");
    let run = Command::new(BIN)
        .args(["bench", "--quick", "--scenarios", "ai", "--ai-upstream"])
        .arg(fake.addr().to_string())
        .arg("--litellm")
        .arg(&no_litellm)
        .arg("--out")
        .arg(out.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("switchyard bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let left = started_under(out.path());
    for (pid, _) in &left {
        let _ = Command::new("kill")
            .args(["-s", "KILL", &pid.to_string()])
            .status();
    }
    assert!(
        left.is_empty(),
        "the bench left processes running (killed now): {left:#?}"
    );
    assert!(
        run.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for row in [
        "## AI gateway load: POST /v1/chat/completions",
        "| (a) bare fake upstream | 4 |",
        "| (b) Switchyard serve: key + policy + access log, ai/gateway alias → ai/openai → fake | 4 |",
        "| ai | litellm | skipped: no ",
    ] {
        assert!(stdout.contains(row), "no {row:?} in the table:\n{stdout}");
    }
    assert!(!stdout.contains("(c) LiteLLM"), "{stdout}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let ai = &results["other"]["ai"];
    let mut names: Vec<&str> = ai["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ai_bare",
            "ai_bare_paced",
            "ai_switchyard",
            "ai_switchyard_paced"
        ],
        "{ai}"
    );
    for run in ai["runs"].as_array().unwrap() {
        assert!(run["requests"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["errors"], 0, "every answer was a 200: {run}");
    }
    assert!(ai.get("litellm_per_sec").is_none(), "{ai}");
    // Every request of every run reached the one upstream: through the gateway too.
    let sent: u64 = ai["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["requests"].as_u64().unwrap())
        .sum();
    assert!(
        fake.calls() >= sent,
        "{} calls, {sent} measured",
        fake.calls()
    );
    let goals = results["goals"].as_array().unwrap();
    let measure = "ai: added latency p99, Switchyard − bare upstream, 200 req/s over 4 conn (fixed: LiteLLM skipped)";
    let line = goals
        .iter()
        .find(|g| g["measure"] == measure)
        .unwrap_or_else(|| panic!("no goal line {measure:?}: {goals:#?}"));
    assert_eq!(line["goal"], "≤ 1 ms", "{line}");
    assert!(
        ["met", "NOT MET"].contains(&line["verdict"].as_str().unwrap()),
        "{line}"
    );
    assert!(stdout.contains(measure), "{stdout}");
    assert!(
        !goals
            .iter()
            .any(|g| g["measure"].as_str().unwrap().contains("LiteLLM proxy")),
        "no throughput ratio without LiteLLM: {goals:#?}"
    );
    let svg = std::fs::read_to_string(out.path().join("ai.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
}

/// `switchyard bench --quick --scenarios workflow`: a Restate server and `serve` start, the
/// step probe runs through the gateway, and the table reports the durable step beside the
/// direct call against the 20 ms goal.
#[test]
fn a_quick_workflow_bench_times_durable_steps_beside_direct_calls() {
    let out = tempfile::tempdir().unwrap();
    let restate = std::env::var("SWITCHYARD_TEST_RESTATE_SERVER")
        .expect("SWITCHYARD_TEST_RESTATE_SERVER (scripts/test installs restate-server)");
    let run = Command::new(BIN)
        .args([
            "bench",
            "--quick",
            "--scenarios",
            "workflow",
            "--restate-server",
            &restate,
            "--out",
        ])
        .arg(out.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("switchyard bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("one durable step"), "{stdout}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let figures = &results["other"]["workflow"];
    assert_eq!(figures["steps"], 19, "{figures}");
    assert_eq!(figures["first_step_ms"]["instances"], 1, "{figures}");
    assert!(
        figures["durable_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{figures}"
    );
    assert!(
        figures["direct_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{figures}"
    );
}
