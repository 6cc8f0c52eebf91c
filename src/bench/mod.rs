//! `switchyard bench`: the performance goals measured side by side in one run, because these
//! machines are too noisy for figures taken at different times to be compared.
//!
//! Scenarios (`--scenarios`, comma-separated; all by default):
//! - `gateway`: one upstream — a `switchyard runtime` answering `cache/memory/get` — reached
//!   (a) directly, (b) through bare nginx `proxy_pass`, (c) through `switchyard gateway` with an
//!   API key, a rate limit that never limits and the policy bundle on, and (d) through a Pingora
//!   proxy with no filters (`switchyard bench-proxy`: the gateway's Pingora and server settings),
//!   which splits the gateway's cost into Pingora's and the filters'; one load generator (wrk)
//!   for all, at 32 and at 1 connections, a warm-up, then req/s and p50/p99/p99.9;
//! - `inprocess`: `switchyard serve` with the same config, (e) `--dispatch http` and
//!   (f) `--dispatch in-process` (ADR 16);
//! - `memory`, `startup`: RSS of an idle `serve`, per active tenant-provider instance, and the
//!   time from spawn to the first answered `/healthz`;
//! - `policy`, `ledger`, `trace`: the existing cargo benches (`decision`, `ledger`, `trace`),
//!   run from the checkout; ledger and trace need `SWITCHYARD_BENCH_POSTGRES_URL`
//!   (`scripts/bench` starts a PostgreSQL);
//! - `integration`: the `integration` cargo bench — mapping records/s on one thread, and a
//!   full sync of 100,000 orders from the fake Shopify beside a bare paged fetch of the same
//!   pages (no server needed);
//! - `ai`: `POST /v1/chat/completions` to a fake OpenAI-compatible upstream, bare, through
//!   `serve`'s AI gateway and through LiteLLM's proxy (issue 22; see `ai.rs`).
//!
//! Every Switchyard process runs at the default log level (`info`, an access log line per
//! request), as a user runs it.
//!
//! Output: a table on stdout, `results.json`, `latency.svg` and `throughput.svg` in `--out`
//! (and `ledger.svg` with the ledger scenario, `integration.svg` with the integration one,
//! `ai.svg` with the ai one). `scripts/bench` installs nginx, wrk and LiteLLM and builds the
//! release binaries first.

mod ai;
mod goals;
mod load;
mod plot;
mod procs;
mod suites;
mod workflow;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub use load::LoadResult;

/// Every scenario, in the order they run.
const SCENARIOS: [&str; 10] = [
    "gateway",
    "inprocess",
    "memory",
    "startup",
    "policy",
    "ledger",
    "trace",
    "integration",
    "ai",
    "workflow",
];

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Comma-separated subset of: gateway, inprocess, memory, startup, policy, ledger, trace,
    /// integration, ai, workflow.
    #[arg(long, value_delimiter = ',', default_values_t = SCENARIOS.map(String::from))]
    scenarios: Vec<String>,
    /// A tiny run (1 s per load target, few tenants, 1 s ledger; no lot trace unless named):
    /// checks that everything starts, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Concurrent connections of the load generator, comma-separated: every load target runs
    /// once for each (throughput at many, added latency at the fewest).
    #[arg(long, value_delimiter = ',', default_values_t = [32, 1])]
    concurrency: Vec<u32>,
    /// Seconds of load per target, after the warm-up; also of each phase of the ledger bench
    /// and of each mapping of the integration bench.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Seconds of discarded load per target before measuring.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Tenants (each with its own cache/memory instance) for the memory figure.
    #[arg(long, default_value_t = 200)]
    tenants: u32,
    /// Where results.json and the plots go; a `work` directory inside holds the run's data.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The Rego policies the gateway runs (built into a bundle for the run).
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
    /// The OpenAI-compatible upstream (host:port) of the ai scenario, already running; by
    /// default the bench starts `switchyard-ai-fake` from beside its own binary.
    #[arg(long)]
    ai_upstream: Option<SocketAddr>,
    /// LiteLLM's `litellm` command for the ai scenario (`scripts/bench` installs it there);
    /// when it is absent LiteLLM is reported as skipped.
    #[arg(long, default_value = "target/tools/litellm-venv/bin/litellm")]
    litellm: PathBuf,
    /// The Restate server of the workflow scenario (`scripts/bench` installs it there); when
    /// it is absent the scenario is reported as skipped.
    #[arg(
        long,
        default_value = "target/tools/restate/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
    )]
    restate_server: PathBuf,
}

/// What one scenario measured, or why it did not run.
enum Outcome {
    Ran(Value),
    Skipped(String),
}

impl Outcome {
    fn into_json(self) -> Value {
        match self {
            Outcome::Ran(value) => value,
            Outcome::Skipped(why) => json!({"skipped": why}),
        }
    }
}

pub fn run(mut args: BenchArgs) -> Result<()> {
    for scenario in &args.scenarios {
        if !SCENARIOS.contains(&scenario.as_str()) {
            bail!(
                "unknown scenario {scenario:?}; known: {}",
                SCENARIOS.join(", ")
            );
        }
    }
    if args.quick {
        args.duration_secs = 1;
        args.warmup_secs = 1;
        for connections in &mut args.concurrency {
            *connections = (*connections).min(4);
        }
        args.concurrency.dedup();
        args.tenants = args.tenants.min(5);
    }
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    if args.concurrency.contains(&0) {
        bail!("--concurrency takes numbers of connections of at least 1");
    }
    let wants = |name: &str| args.scenarios.iter().any(|s| s == name);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    stop_children_on_signal(&tokio)?;
    let settings = load::Settings {
        connections: args.concurrency.clone(),
        duration: Duration::from_secs(args.duration_secs),
        warmup: Duration::from_secs(args.warmup_secs),
        // Absolute: nginx reads relative paths from its own prefix, not from here.
        work: std::path::absolute(args.out.join("work"))?,
        policies: args.policies.clone(),
    };
    let mut loads: Vec<LoadResult> = Vec::new();
    let mut results = serde_json::Map::new();
    if wants("gateway") {
        loads.extend(tokio.block_on(load::gateway(&settings))?);
    }
    if wants("inprocess") {
        loads.extend(tokio.block_on(load::serve_modes(&settings))?);
    }
    if wants("memory") || wants("startup") {
        let figures = tokio.block_on(suites::memory_and_startup(&settings, args.tenants))?;
        results.insert("memory_startup".into(), figures);
    }
    // The cargo benches run from the checkout (the current directory).
    let workspace = Path::new(".");
    if wants("policy") {
        results.insert(
            "policy".into(),
            suites::policy(workspace, &args.out)?.into_json(),
        );
    }
    if wants("ledger") {
        let outcome = suites::ledger(workspace, &args.out, args.duration_secs)?;
        results.insert("ledger".into(), outcome.into_json());
    }
    // A quick run of everything leaves out the 1,000,000-lot generation (minutes).
    let all = args.scenarios.len() == SCENARIOS.len();
    if wants("trace") && !(args.quick && all) {
        results.insert(
            "trace".into(),
            suites::trace(workspace, &args.out)?.into_json(),
        );
    }
    if wants("integration") {
        let outcome = suites::integration(workspace, &args.out, args.duration_secs, args.quick)?;
        results.insert("integration".into(), outcome.into_json());
    }
    if wants("ai") {
        let sources = ai::AiSources {
            upstream: args.ai_upstream,
            litellm: &args.litellm,
        };
        results.insert("ai".into(), tokio.block_on(ai::ai(&settings, &sources))?);
    }
    if wants("workflow") {
        let outcome = tokio.block_on(workflow::workflow(
            &settings,
            &args.restate_server,
            args.quick,
        ))?;
        results.insert("workflow".into(), outcome.into_json());
    }
    // One table block per number of connections, the targets in order within it.
    loads.sort_by_key(|load| args.concurrency.iter().position(|&c| c == load.connections));
    let mut goals = goals::goals(&loads, &args.concurrency);
    if let Some(policy) = results.get("policy") {
        goals.extend(suites::policy_goals(policy));
    }
    if let Some(ledger) = results.get("ledger") {
        goals.extend(suites::ledger_goals(ledger));
    }
    if let Some(integration) = results.get("integration") {
        goals.extend(suites::integration_goals(integration));
    }
    if let Some(figures) = results.get("ai") {
        goals.extend(ai::ai_goals(figures));
    }
    if let Some(figures) = results.get("workflow") {
        goals.extend(workflow::workflow_goals(figures));
    }
    let report = json!({
        "settings": {
            "connections": args.concurrency,
            "duration_secs": args.duration_secs,
            "warmup_secs": args.warmup_secs,
            "quick": args.quick,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "load_generator": "wrk (1 thread)",
        },
        "load": loads.iter().map(LoadResult::to_json).collect::<Vec<_>>(),
        "goals": goals,
        "other": Value::Object(results),
    });
    print_table(&report);
    let json_path = args.out.join("results.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    println!("\nresults: {}", json_path.display());
    if !loads.is_empty() {
        for path in plot::draw(&loads, &args.out)? {
            println!("plot: {}", path.display());
        }
    }
    if let Some(phases) = report["other"]["ledger"]["phases"].as_array() {
        println!("plot: {}", plot::draw_ledger(phases, &args.out)?.display());
    }
    if report["other"]["integration"]["mapping"].is_object() {
        let path = plot::draw_integration(&report["other"]["integration"], &args.out)?;
        println!("plot: {}", path.display());
    }
    if report["other"]["ai"]["runs"].is_array() {
        let path = plot::draw_ai(&report["other"]["ai"], &args.out)?;
        println!("plot: {}", path.display());
    }
    Ok(())
}

/// On SIGINT or SIGTERM, stops every process the bench started before exiting: the default
/// action would end the bench at once, without dropping (and so stopping) its children, and
/// nginx and the runtimes would stay running and listening.
fn stop_children_on_signal(tokio: &tokio::runtime::Runtime) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _context = tokio.enter();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio.spawn(async move {
        let code = tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        };
        eprintln!("bench: interrupted; stopping the processes it started");
        procs::stop_all();
        std::process::exit(code);
    });
    Ok(())
}

/// The report as Markdown tables: load targets, goals, then every other figure.
fn print_table(report: &Value) {
    let settings = &report["settings"];
    if let Some(loads) = report["load"].as_array().filter(|l| !l.is_empty()) {
        let connections: Vec<String> = settings["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
        println!(
            "\n## HTTP load: POST /providers/cache/memory/get, {} connections, {} s warm-up, {} s measured, {}, default log level",
            connections.join(" and "),
            settings["warmup_secs"],
            settings["duration_secs"],
            settings["load_generator"].as_str().unwrap_or_default()
        );
        println!(
            "| target | conn | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx/errors | CPU µs/req front | CPU µs/req runtime |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let cpu = |value: &Value| {
            value
                .as_f64()
                .map_or("–".to_owned(), |us| format!("{us:.0}"))
        };
        for load in loads {
            println!(
                "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {} | {} |",
                load["label"].as_str().unwrap_or_default(),
                load["connections"],
                load["requests_per_sec"].as_f64().unwrap_or_default(),
                load["p50_ms"].as_f64().unwrap_or_default(),
                load["p99_ms"].as_f64().unwrap_or_default(),
                load["p999_ms"].as_f64().unwrap_or_default(),
                load["errors"],
                cpu(&load["cpu_front_us_per_request"]),
                cpu(&load["cpu_runtime_us_per_request"]),
            );
        }
    }
    if let Some(figures) = report["other"].get("ai") {
        ai::print_runs(figures);
    }
    if let Some(goals) = report["goals"].as_array().filter(|g| !g.is_empty()) {
        println!("\n## Goals");
        println!("| measure | measured | goal | verdict |");
        println!("|---|---:|---:|---|");
        for goal in goals {
            println!(
                "| {} | {} | {} | {} |",
                goal["measure"].as_str().unwrap_or_default(),
                goal["measured"].as_str().unwrap_or_default(),
                goal["goal"].as_str().unwrap_or_default(),
                goal["verdict"].as_str().unwrap_or_default(),
            );
        }
    }
    let Some(other) = report["other"].as_object().filter(|o| !o.is_empty()) else {
        return;
    };
    println!("\n## Other figures");
    println!("| scenario | measure | value |");
    println!("|---|---|---:|");
    for (scenario, figures) in other {
        match figures.as_object() {
            Some(map) if map.contains_key("skipped") => {
                println!(
                    "| {scenario} | skipped | {} |",
                    map["skipped"].as_str().unwrap_or_default()
                );
            }
            Some(map) => {
                for (measure, value) in map {
                    let shown = match value {
                        Value::Number(n) if n.is_f64() => {
                            format!("{:.3}", n.as_f64().unwrap_or_default())
                        }
                        Value::Number(n) => n.to_string(),
                        Value::String(text) => text.clone(),
                        // Nested figures stay in results.json; their summary has a row of its own.
                        Value::Object(_) | Value::Array(_) => continue,
                        other => other.to_string(),
                    };
                    println!("| {scenario} | {measure} | {shown} |");
                }
            }
            None => println!("| {scenario} | | {figures} |"),
        }
    }
}
