//! The figures that are not HTTP load: memory and startup of `serve`, and the cargo benches
//! that already exist (policy decision, ledger beside pgbench, lot trace), run from the
//! checkout and read back from the JSON they write into the output directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use switchyard_contracts::{Scopes, TenantId};
use switchyard_runtime::PlatformStore;

use super::Outcome;
use super::goals::goal_line;
use super::load::{Settings, fixture};
use super::procs::{free_port, spawn, wait_ready};

/// Resident set size of a process, from /proc.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// `serve --dispatch in-process` from spawn to its first answered `/healthz`; its RSS idle;
/// then `tenants` tenants each make one call, which starts their own `cache/memory` instance,
/// and the growth per tenant is the cost of an active tenant-provider instance (with the
/// gateway's per-tenant state: the cached key, the rate-limit buckets).
pub async fn memory_and_startup(settings: &Settings, tenants: u32) -> Result<Value> {
    let fixture = fixture(settings, "memory").await?;
    let work = settings.work.join("memory");
    let store = PlatformStore::open(&fixture.data).await?;
    let scopes = Scopes::parse("*").map_err(anyhow::Error::msg)?;
    let mut keys = Vec::new();
    for n in 0..tenants {
        let tenant = TenantId::parse(&format!("mem-{n:05}")).map_err(anyhow::Error::msg)?;
        store.create_tenant(&tenant).await?;
        keys.push(store.create_key(&tenant, &scopes).await?.plaintext);
    }
    drop(store);
    let addr = free_port()?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut serve = spawn(
        &work,
        "serve",
        &std::env::current_exe()?,
        &[
            "--data-dir",
            &fixture.data.display().to_string(),
            "serve",
            "--listen",
            &addr.to_string(),
            "--dispatch",
            "in-process",
            "--lifecycle-bus",
            "off",
            "--config",
            &fixture.config.display().to_string(),
        ],
    )?;
    wait_ready(&mut serve, addr, &client).await?;
    let startup = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(serve.pid())?;
    for key in &keys {
        super::load::seed(&client, addr, key).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let active = rss_kib(serve.pid())?;
    let per_instance = active.saturating_sub(idle) as f64 / f64::from(tenants.max(1));
    eprintln!(
        "bench: serve ready in {:.0} ms, idle RSS {:.1} MiB, +{per_instance:.1} KiB per active tenant-provider instance",
        startup.as_secs_f64() * 1e3,
        idle as f64 / 1024.0
    );
    Ok(json!({
        "startup_to_ready_ms": startup.as_secs_f64() * 1e3,
        "rss_idle_serve_mib": idle as f64 / 1024.0,
        "rss_after_active_tenants_mib": active as f64 / 1024.0,
        "active_tenant_instances": tenants,
        "rss_per_active_instance_kib": per_instance,
    }))
}

/// Runs a cargo bench of the checkout with its figures going to `out`, then reads `file`.
fn cargo_bench(
    workspace: &Path,
    out: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    file: &str,
) -> Result<Outcome> {
    if !workspace.join("Cargo.toml").is_file() {
        return Ok(Outcome::Skipped(
            "not run from the checkout (no Cargo.toml here)".into(),
        ));
    }
    let out = std::path::absolute(out)?;
    let _ = std::fs::remove_file(out.join(file));
    eprintln!("bench: cargo bench {}", args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .arg("bench")
        .arg("--locked")
        .args(args)
        .envs(env.iter().copied())
        .env("SWITCHYARD_BENCH_OUT", &out)
        .current_dir(workspace)
        // The table owns stdout; the benches' own reports go beside cargo's progress.
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo bench {} failed: {status}", args.join(" "));
    }
    let bytes = std::fs::read(out.join(file))
        .with_context(|| format!("the bench wrote no {}", out.join(file).display()))?;
    Ok(Outcome::Ran(serde_json::from_slice(&bytes)?))
}

/// The bench of a decision through the gateway's policy step (its decision cache and decision
/// log), beside the engine's own `decision` bench.
const GATEWAY_POLICY_BENCH: &str = "gateway/benches/policy_path.rs";

/// The engine's decision bench, then (in checkouts that have it) the gateway's policy step:
/// its cache hit and miss p50/p99 join the figures as `gateway_path_{hit,miss}_{p50,p99}_us`.
pub fn policy(workspace: &Path, out: &Path) -> Result<Outcome> {
    let engine = cargo_bench(
        workspace,
        out,
        &["-p", "switchyard-policy", "--bench", "decision"],
        &[],
        "policy.json",
    )?;
    let Outcome::Ran(Value::Object(mut figures)) = engine else {
        return Ok(engine);
    };
    if workspace.join(GATEWAY_POLICY_BENCH).is_file() {
        let gateway = cargo_bench(
            workspace,
            out,
            &["-p", "switchyard-gateway", "--bench", "policy_path"],
            &[],
            "policy_path.json",
        )?;
        if let Outcome::Ran(path) = gateway {
            for case in ["hit", "miss"] {
                for percentile in ["p50_us", "p99_us"] {
                    let value = path[case][percentile].as_f64().with_context(|| {
                        format!("policy_path.json has no {case}.{percentile}: {path}")
                    })?;
                    figures.insert(format!("gateway_path_{case}_{percentile}"), json!(value));
                }
            }
            let goal = path["goal_hit_p99_us"]
                .as_f64()
                .with_context(|| format!("policy_path.json has no goal_hit_p99_us: {path}"))?;
            figures.insert("gateway_path_goal_hit_p99_us".into(), json!(goal));
        }
    }
    Ok(Outcome::Ran(Value::Object(figures)))
}

/// The goals table's lines for the policy figures, when the gateway's path was measured: the
/// hit's p99 against the goal the bench states, the miss's beside it.
pub fn policy_goals(figures: &Value) -> Vec<Value> {
    let mut lines = Vec::new();
    if let (Some(hit), Some(goal)) = (
        figures["gateway_path_hit_p99_us"].as_f64(),
        figures["gateway_path_goal_hit_p99_us"].as_f64(),
    ) {
        lines.push(goal_line(
            "policy decision through the gateway's path, cache hit p99".into(),
            format!("{hit:.2} µs"),
            Some((format!("≤ {goal} µs"), hit <= goal)),
            hit,
        ));
    }
    if let Some(miss) = figures["gateway_path_miss_p99_us"].as_f64() {
        lines.push(goal_line(
            "policy decision through the gateway's path, cache miss p99".into(),
            format!("{miss:.2} µs"),
            None,
            miss,
        ));
    }
    lines
}

fn postgres_url() -> Option<String> {
    std::env::var("SWITCHYARD_BENCH_POSTGRES_URL").ok()
}

const NO_POSTGRES: &str =
    "needs SWITCHYARD_BENCH_POSTGRES_URL (a PostgreSQL superuser URL); scripts/bench starts one";

/// The ledger beside pgbench, `secs` seconds a phase.
pub fn ledger(workspace: &Path, out: &Path, secs: u64) -> Result<Outcome> {
    if postgres_url().is_none() {
        return Ok(Outcome::Skipped(NO_POSTGRES.into()));
    }
    cargo_bench(
        workspace,
        out,
        &["--bench", "ledger"],
        &[("SWITCHYARD_BENCH_SECS", &secs.to_string())],
        "ledger.json",
    )
}

/// The goals table's lines for the ledger beside pgbench (issue 20): single postings against
/// pgbench's TPS, the hot pair against uniform accounts, and the batch figure for reference.
pub fn ledger_goals(figures: &Value) -> Vec<Value> {
    let clients = &figures["clients"];
    let mut lines = Vec::new();
    for (key, measure, goal) in [
        (
            "ratio",
            format!("ledger single postings / pgbench tpcb-like TPS, {clients} clients"),
            Some(1.0),
        ),
        (
            "hot_over_uniform",
            "ledger single postings, one hot pair / uniform accounts".to_owned(),
            Some(0.5),
        ),
        (
            "batch_over_pgbench",
            format!("ledger journals in batches / pgbench tpcb-like TPS, {clients} clients"),
            None,
        ),
    ] {
        let Some(value) = figures[key].as_f64() else {
            continue;
        };
        let goal = goal.map(|goal| (format!("≥ {goal:.2}"), value >= goal));
        lines.push(goal_line(measure, format!("{value:.2}"), goal, value));
    }
    lines
}

pub fn trace(workspace: &Path, out: &Path) -> Result<Outcome> {
    if postgres_url().is_none() {
        return Ok(Outcome::Skipped(NO_POSTGRES.into()));
    }
    cargo_bench(
        workspace,
        out,
        &["-p", "switchyard-inventory", "--bench", "trace"],
        &[],
        "trace.json",
    )
}

/// The integration bench (issue 21): mapping records/s on one thread, and a full sync of
/// 100,000 orders from the fake Shopify beside a bare paged fetch of the same pages. Needs no
/// server: the fake runs in the bench, the destination is the tenant's `db/sqlite`. A quick
/// run syncs 10,000 orders.
pub fn integration(workspace: &Path, out: &Path, secs: u64, quick: bool) -> Result<Outcome> {
    let records = if quick { "10000" } else { "100000" };
    cargo_bench(
        workspace,
        out,
        &["--bench", "integration"],
        &[
            ("SWITCHYARD_BENCH_SECS", &secs.to_string()),
            ("SWITCHYARD_BENCH_SYNC_RECORDS", records),
        ],
        "integration.json",
    )
}

/// The goals table's lines for the integration figures: the fast path's records/s against
/// 500,000, the sync's share of the bare fetch against 0.5, and the jq mappings for reference.
pub fn integration_goals(figures: &Value) -> Vec<Value> {
    let mut lines = Vec::new();
    let per_sec = |key: &str| figures[key].as_f64();
    for (key, measure, goal) in [
        (
            "mapping_paths_per_sec",
            "integration mapping, 10 plain paths (fast path), records/s on one thread",
            Some(500_000.0),
        ),
        (
            "mapping_paths_through_jq_per_sec",
            "integration mapping, the same 10 paths through jaq, records/s on one thread",
            None,
        ),
        (
            "mapping_jq_functions_per_sec",
            "integration mapping, 6 paths + 4 jq functions, records/s on one thread",
            None,
        ),
    ] {
        if let Some(value) = per_sec(key) {
            let goal = goal.map(|goal: f64| (format!("≥ {goal:.0}"), value >= goal));
            lines.push(goal_line(
                measure.into(),
                format!("{value:.0}"),
                goal,
                value,
            ));
        }
    }
    if let Some(ratio) = per_sec("sync_ratio") {
        let records = &figures["sync"]["records"];
        lines.push(goal_line(
            format!("integration full sync / bare paged fetch, {records} orders, records/s"),
            format!("{ratio:.2}"),
            Some(("≥ 0.50".into(), ratio >= 0.5)),
            ratio,
        ));
    }
    lines
}
