//! A policy decision through the gateway's path: `cargo bench -p switchyard-gateway --bench policy_path`.
//!
//! Times `filters::policy::Policy::decide` — the decision cache, the decision id, the masked
//! input on a miss and the hand-off to the decision log writer (the real one, writing to a
//! SQLite platform store beside the measurement) — on inputs shaped as the
//! gateway builds them (`policy_input` in the gateway's lib.rs), for three cases:
//! - hit: the same caller and call again, with a new request id and subject each time (the
//!   policy reads neither), so every decision after the first comes from the cache;
//! - miss: ledger postings with a distinct amount each, so every decision is evaluated (on its
//!   projection) and its input logged;
//! - uncached: the same calls as "hit" with the cache off, i.e. plain Rego on the whole input.
//!
//! Writes `policy_path.json` where `switchyard bench` reads it (`SWITCHYARD_BENCH_OUT`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::services::background::BackgroundService;
use serde_json::{Value, json};
use switchyard_gateway::filters::decision_log::DecisionLogWriter;
use switchyard_gateway::filters::policy::{Policy, PolicyConfig};
use switchyard_platform_store::PlatformStore;

const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;
/// The goal for a cache hit through this path.
const GOAL_HIT_P99_US: f64 = 5.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let bundle = dir.path().join("bundle.tar.gz");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    std::fs::write(
        &bundle,
        switchyard_policy::build_bundle(&source, "bench", None)?,
    )?;
    let cached = start(&dir.path().join("cached"), &bundle, None).await?;
    let uncached = start(&dir.path().join("uncached"), &bundle, Some(0)).await?;

    let hit = time(&cached, developer_get).await?;
    let miss = time(&cached, approver_posting).await?;
    let plain = time(&uncached, developer_get).await?;
    let lookup = time_lookup(&cached, developer_get)?;
    println!(
        "{:<44} {:>9} {:>9} {:>10}",
        "policy decision through the gateway's path", "p50 µs", "p99 µs", "p99.9 µs"
    );
    let mut report = serde_json::Map::new();
    for (name, samples) in [
        ("hit", &hit),
        ("miss", &miss),
        ("uncached (plain Rego)", &plain),
        ("lookup (the cache alone, no id or log)", &lookup),
    ] {
        let (p50, p99, p999) = (
            micros(percentile(samples, 0.50)),
            micros(percentile(samples, 0.99)),
            micros(percentile(samples, 0.999)),
        );
        println!("{name:<44} {p50:>9.2} {p99:>9.2} {p999:>10.2}");
        report.insert(
            name.split(' ').next().unwrap_or(name).to_owned(),
            json!({"p50_us": p50, "p99_us": p99, "p999_us": p999, "decisions": samples.len()}),
        );
    }
    report.insert("goal_hit_p99_us".into(), json!(GOAL_HIT_P99_US));
    let out = std::env::var_os("SWITCHYARD_BENCH_OUT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("policy_path.json"),
        serde_json::to_vec_pretty(&Value::Object(report))?,
    )?;
    Ok(())
}

/// The gateway's policy step with its decision log writer, as `switchyard gateway` runs them
/// (the platform store in SQLite under `dir`).
async fn start(
    dir: &Path,
    bundle: &Path,
    cache_entries: Option<u64>,
) -> Result<Arc<Policy>, String> {
    let mut config = json!({"bundle": bundle});
    if let Some(entries) = cache_entries {
        config["decision_cache_entries"] = json!(entries);
    }
    let config: PolicyConfig = serde_json::from_value(config).map_err(|e| e.to_string())?;
    let (policy, log) = Policy::start(&config).await.map_err(|e| e.to_string())?;
    let writer = DecisionLogWriter {
        store: PlatformStore::open(dir).await.map_err(|e| e.to_string())?,
        queue: log,
    };
    // Pingora runs each background service on a runtime of its own; so does this writer, or
    // its turns would land inside the timed decisions of the measuring thread.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the decision log writer");
        runtime.block_on(async move {
            let (_keep_running, shutdown) = tokio::sync::watch::channel(false);
            writer.start(shutdown).await;
        });
    });
    Ok(policy)
}

/// Times `ITERATIONS` decisions of `input(i)` (built beforehand, as the gateway has built its
/// input before it asks), after `WARMUP` untimed ones; every one must be allowed.
async fn time(policy: &Policy, input: impl Fn(usize) -> Value) -> Result<Vec<Duration>, String> {
    let inputs: Vec<Value> = (0..WARMUP + ITERATIONS).map(&input).collect();
    let mut samples = Vec::with_capacity(ITERATIONS);
    for (i, input) in inputs.into_iter().enumerate() {
        let started = Instant::now();
        let verdict = policy
            .decide(std::hint::black_box(input), "acme", "oidc:ann")
            .await
            .map_err(|e| format!("{e:?}"))?;
        let elapsed = started.elapsed();
        if !verdict.allow {
            return Err(format!("unexpected verdict: {:?}", verdict.reasons));
        }
        if i >= WARMUP {
            samples.push(elapsed);
        }
    }
    samples.sort_unstable();
    Ok(samples)
}

/// The hit case's decisions from the running engine's cache alone: what the step costs
/// without the decision id and the log record, to tell the cache from what surrounds it.
fn time_lookup(policy: &Policy, input: impl Fn(usize) -> Value) -> Result<Vec<Duration>, String> {
    let engine = policy.current();
    let inputs: Vec<Value> = (0..WARMUP + ITERATIONS).map(&input).collect();
    let mut samples = Vec::with_capacity(ITERATIONS);
    for (i, input) in inputs.iter().enumerate() {
        let started = Instant::now();
        let decided = engine
            .decide_cached(std::hint::black_box(input))
            .map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        if !decided.decision.allow {
            return Err(format!("unexpected decision: {:?}", decided.decision));
        }
        if i >= WARMUP {
            samples.push(elapsed);
        }
    }
    samples.sort_unstable();
    Ok(samples)
}

fn request(i: usize, roles: &[&str], target: (&str, &str, &str), resource: Value) -> Value {
    let (domain, provider, action) = target;
    json!({
        "tenant": "acme",
        "subject": format!("key:{}", i % 97),
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
            "request_id": format!("0190a8e4-7c1e-7b35-9f7e-{i:012x}")
        },
        "target_tenant": "acme"
    })
}

fn developer_get(i: usize) -> Value {
    request(
        i,
        &["developer"],
        ("cache", "memory", "get"),
        json!({"key": format!("k{i}")}),
    )
}

fn approver_posting(i: usize) -> Value {
    request(
        i,
        &["approver"],
        ("ledger", "service", "post_journal"),
        json!({"amount": 20_000 + i, "memo": "bench"}),
    )
}

fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
