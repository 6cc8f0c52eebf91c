//! `switchyard bench --quick` starts every process it measures (runtime, gateway, bare nginx,
//! `serve` both ways), drives them with wrk and prints its table: a smoke test of the bench
//! command, not a measurement (benchmarks are too slow and noisy for the test command).
//! Needs nginx and wrk (`ensure_build_deps --test` installs them).

use crate::common::BIN;

use std::process::Command;

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
    assert!(
        run.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for row in [
        "| (a) runtime direct |",
        "| (b) bare nginx proxy_pass |",
        "| (c) switchyard gateway",
        "| serve, gateway → runtime in process |",
        "throughput (c)/(b)",
        "added latency p50 (c)−(a)",
        "startup_to_ready_ms",
        "rss_idle_serve_mib",
    ] {
        assert!(stdout.contains(row), "no {row:?} in the table:\n{stdout}");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let loads = results["load"].as_array().unwrap();
    assert_eq!(loads.len(), 5, "{results}");
    for load in loads {
        assert!(load["requests"].as_u64().unwrap() > 0, "{load}");
        assert_eq!(load["errors"], 0, "every answer was a 200: {load}");
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
