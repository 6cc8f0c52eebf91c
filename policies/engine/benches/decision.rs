//! Decision latency of the product policies: `cargo bench -p switchyard-policy --bench decision`.
//!
//! Builds the bundle from `policies/`, warms up, then times single decisions on realistic inputs
//! and prints percentiles. A plain `main` keeps the crate free of a benchmark framework.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_policy::{Bundle, PolicyEngine, build_bundle};

const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let started = Instant::now();
    let bundle = Bundle::load(build_bundle(&source, "bench", None)?, None)?;
    let engine = PolicyEngine::new(bundle)?;
    println!(
        "bundle built, loaded, self-tested and prepared in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let cases = [
        ("clerk db/sqlite/query", clerk_query(), true),
        ("approver ledger post_journal", approver_posting(), true),
        ("clerk db/sqlite/execute (deny)", denied_execute(), false),
    ];
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>12}",
        "input", "p50 µs", "p99 µs", "p99.9 µs", "decisions/s"
    );
    let mut report = serde_json::Map::new();
    for (name, input, expected) in cases {
        let decision = engine.decide(&input)?;
        if decision.allow != expected {
            return Err(format!("{name}: unexpected decision {decision:?}").into());
        }
        for _ in 0..WARMUP {
            engine.decide(&input)?;
        }
        let mut samples = Vec::with_capacity(ITERATIONS);
        let total = Instant::now();
        for _ in 0..ITERATIONS {
            let start = Instant::now();
            std::hint::black_box(engine.decide(std::hint::black_box(&input))?);
            samples.push(start.elapsed());
        }
        let per_second = ITERATIONS as f64 / total.elapsed().as_secs_f64();
        samples.sort_unstable();
        println!(
            "{:<32} {:>10.1} {:>10.1} {:>10.1} {:>12.0}",
            name,
            micros(percentile(&samples, 0.50)),
            micros(percentile(&samples, 0.99)),
            micros(percentile(&samples, 0.999)),
            per_second
        );
        report.insert(
            format!("{name}: p50/p99 µs"),
            json!(format!(
                "{:.1} / {:.1}",
                micros(percentile(&samples, 0.50)),
                micros(percentile(&samples, 0.99))
            )),
        );
    }
    // `switchyard bench` names its output directory; run alone, the workspace's target/bench.
    let out = std::env::var_os("SWITCHYARD_BENCH_OUT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("policy.json"),
        serde_json::to_vec_pretty(&Value::Object(report))?,
    )?;
    Ok(())
}

fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn request(roles: &[&str], domain: &str, provider: &str, action: &str, resource: Value) -> Value {
    json!({
        "tenant": "acme",
        "subject": "oidc:ann",
        "roles": roles,
        "scopes": [],
        "operation": "invoke",
        "domain": domain,
        "provider": provider,
        "action": action,
        "resource": resource,
        "request": {
            "method": "POST",
            "path": format!("/providers/{domain}/{provider}/{action}"),
            "request_id": "0190a8e4-7c1e-7b35-9f7e-1c2d3e4f5a6b"
        },
        "target_tenant": "acme"
    })
}

fn clerk_query() -> Value {
    request(
        &["clerk"],
        "db",
        "sqlite",
        "query",
        json!({"sql": "select id, name from customers where id = ?", "params": [42], "limit": 50}),
    )
}

fn approver_posting() -> Value {
    request(
        &["approver"],
        "ledger",
        "service",
        "post_journal",
        json!({
            "journal": "GJ",
            "date": "2025-03-31",
            "lines": [
                {"account": "1200", "debit": "12500.00"},
                {"account": "4000", "credit": "12500.00"}
            ]
        }),
    )
}

fn denied_execute() -> Value {
    request(
        &["clerk"],
        "db",
        "sqlite",
        "execute",
        json!({"sql": "delete from customers", "params": []}),
    )
}
