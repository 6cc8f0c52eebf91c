//! The `ai` scenario (issue 22): `POST /v1/chat/completions` (not streamed, a small fixed
//! body) to one fake OpenAI-compatible upstream (`switchyard-ai-fake`), driven by the same wrk
//! in one run (a) bare, (b) through Switchyard's AI gateway — `serve` with an API key, the
//! policy bundle, the default log level and the tenant's `ai/gateway` alias over its
//! `ai/openai` — and (c) through LiteLLM's proxy (its own venv, a master key, the same alias,
//! no database), each target:
//! - at the most connections of `--concurrency`: its most req/s;
//! - paced to one fixed rate for all three, half of LiteLLM's most req/s (so its proxy is not
//!   saturated), over [`PACED_CONNECTIONS`] connections: the latency each proxy adds to the
//!   bare upstream's at the same load.
//!
//! LiteLLM runs with one uvicorn worker per core, as its docs advise, on the cores `serve`
//! uses. Its proxy measured first sets the paced rate; without its venv it is reported as
//! skipped and the others are paced to [`RATE_WITHOUT_LITELLM`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::goals::goal_line;
use super::load::{LoadResult, Request, Settings, Watch, fixture, which, wrk};
use super::procs::{Proc, Stop, free_port, spawn, spawn_with, wait_ready, wait_ready_at};

const CHAT: &str = "/v1/chat/completions";
/// The alias both proxies serve, routed to [`MODEL`] on the fake.
const ALIAS: &str = "smart";
const MODEL: &str = "fake-ok";
const PROMPT: &str = "Summarise the open orders of warehouse main in one line";
/// Connections of the paced runs: a few, so that one slow answer does not hold the schedule.
const PACED_CONNECTIONS: u32 = 4;
/// Requests a paced run should hold: its p99 is then the 20th slowest, not the 3rd (at
/// LiteLLM's rate a 10 s run held 300–500, and the verdict moved with a few of them).
const PACED_SAMPLES: f64 = 2000.0;
/// The paced rate as a share of LiteLLM's most req/s.
const PACED_SHARE: f64 = 0.5;
const RATE_WITHOUT_LITELLM: f64 = 200.0;
const LITELLM_MASTER_KEY: &str = "sk-switchyard-bench";
/// LiteLLM's first start here took 30 s with two builds beside it.
const LITELLM_START_LIMIT: Duration = Duration::from_secs(300);
/// The operator's egress ceiling that lets the tenant's `ai/openai` reach the fake on loopback.
const LOOPBACK_EGRESS: &str = "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n";

/// Where the scenario's upstream and LiteLLM come from.
pub struct AiSources<'a> {
    /// An upstream already running; `None`: start `switchyard-ai-fake` from beside this binary.
    pub upstream: Option<SocketAddr>,
    /// LiteLLM's `litellm` command (its proxy); absent: LiteLLM is skipped.
    pub litellm: &'a Path,
}

/// One proxy (or the bare upstream) as wrk reaches it.
struct Target {
    names: (&'static str, &'static str),
    label: &'static str,
    addr: SocketAddr,
    headers: Vec<(String, String)>,
    body: String,
    watch: Watch,
}

impl Target {
    /// The most req/s at `connections`.
    fn flat_out(&self, settings: &Settings, connections: u32) -> Result<LoadResult> {
        let request = Request {
            path: CHAT,
            body: &self.body,
            per_sec: None,
        };
        wrk(
            settings,
            &request,
            connections,
            self.addr,
            &self.headers,
            (self.names.0, self.label),
            self.watch,
        )
    }

    /// `per_sec` requests a second over [`PACED_CONNECTIONS`], for long enough to hold
    /// [`PACED_SAMPLES`] requests (up to four times the flat-out run's duration).
    fn paced(&self, settings: &Settings, per_sec: f64) -> Result<LoadResult> {
        let request = Request {
            path: CHAT,
            body: &self.body,
            per_sec: Some(per_sec),
        };
        let mut settings = settings.in_dir(settings.work.clone());
        settings.duration = Duration::from_secs_f64(PACED_SAMPLES / per_sec)
            .clamp(settings.duration, settings.duration * 4);
        wrk(
            &settings,
            &request,
            PACED_CONNECTIONS,
            self.addr,
            &self.headers,
            (self.names.1, self.label),
            self.watch,
        )
    }
}

fn chat_body(model: &str) -> String {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 32,
    })
    .to_string()
}

fn bearer(key: &str) -> Vec<(String, String)> {
    vec![("Authorization".to_owned(), format!("Bearer {key}"))]
}

/// One chat through `target` before its load: an answer that is not the fake's echo would make
/// every figure after it meaningless.
async fn check(client: &reqwest::Client, target: &Target) -> Result<()> {
    let mut call = client
        .post(format!("http://{}{CHAT}", target.addr))
        .header("content-type", "application/json")
        .body(target.body.clone());
    for (name, value) in &target.headers {
        call = call.header(name, value);
    }
    let answer = call.send().await?;
    let status = answer.status();
    let text = answer.text().await?;
    if !status.is_success() || !text.contains("echo: ") {
        bail!("{} did not answer the chat: {status} {text}", target.label);
    }
    Ok(())
}

/// `switchyard-ai-fake` beside this binary (`cargo build --release -p switchyard-ai-fakes`).
fn fake_program() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let program = exe.with_file_name("switchyard-ai-fake");
    if !program.is_file() {
        bail!(
            "no {}: build it (cargo build --release -p switchyard-ai-fakes; scripts/bench does) or pass --ai-upstream",
            program.display()
        );
    }
    Ok(program)
}

/// The installed LiteLLM's version, from its venv's package metadata (`litellm --version`
/// takes seconds).
fn litellm_version(program: &Path) -> Option<String> {
    let venv = program.parent()?.parent()?;
    for lib in std::fs::read_dir(venv.join("lib")).ok()?.flatten() {
        for entry in std::fs::read_dir(lib.path().join("site-packages"))
            .ok()?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(version) = name
                .strip_prefix("litellm-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                return Some(version.to_owned());
            }
        }
    }
    None
}

/// LiteLLM's proxy on `addr` with the alias on the upstream, one worker per core, offline:
/// the packaged model cost map instead of fetching it, no telemetry, no database.
async fn start_litellm(
    work: &Path,
    program: &Path,
    addr: SocketAddr,
    upstream: SocketAddr,
    workers: usize,
    client: &reqwest::Client,
) -> Result<Proc> {
    let config = work.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: {ALIAS}\n    litellm_params:\n      model: openai/{MODEL}\n      \
             api_base: http://{upstream}/v1\n      api_key: bench\n\
             general_settings:\n  master_key: {LITELLM_MASTER_KEY}\n"
        ),
    )?;
    let mut litellm = spawn_with(
        work,
        "litellm",
        program,
        &[
            "--config",
            &config.display().to_string(),
            "--host",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
            "--num_workers",
            &workers.to_string(),
        ],
        &[
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
            ("LITELLM_TELEMETRY_DISABLED", "true"),
        ],
        Stop::Term,
    )?;
    let took = wait_ready_at(
        &mut litellm,
        &format!("http://{addr}/health/liveliness"),
        client,
        LITELLM_START_LIMIT,
    )
    .await?;
    eprintln!(
        "bench: ai: LiteLLM's proxy ready in {:.1} s",
        took.as_secs_f64()
    );
    Ok(litellm)
}

/// `serve` with the bench fixture (key, policy bundle, rate limits that never limit) and the
/// tenant's `ai/openai` on the upstream under an `ai/gateway` alias.
async fn start_serve(
    settings: &Settings,
    upstream: SocketAddr,
    client: &reqwest::Client,
) -> Result<(Proc, SocketAddr, String)> {
    let fixture = fixture(settings, "serve").await?;
    let mut config = std::fs::read_to_string(&fixture.config)?;
    config.push_str(LOOPBACK_EGRESS);
    std::fs::write(&fixture.config, config)?;
    let work = settings.work.join("serve");
    let addr = free_port()?;
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
            "--lifecycle-bus",
            "off",
            "--config",
            &fixture.config.display().to_string(),
        ],
    )?;
    wait_ready(&mut serve, addr, client).await?;
    for (provider, config) in [
        (
            "ai/openai",
            json!({"base_url": format!("http://{upstream}/v1")}),
        ),
        (
            "ai/gateway",
            json!({"aliases": {ALIAS: {"targets": [{"provider": "openai", "model": MODEL}]}}}),
        ),
    ] {
        let answer = client
            .post(format!("http://{addr}/providers/{provider}/configure"))
            .bearer_auth(&fixture.api_key)
            .json(&json!({ "config": config }))
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!(
                "configuring {provider} failed: {} {}",
                answer.status(),
                answer.text().await?
            );
        }
    }
    Ok((serve, addr, fixture.api_key))
}

/// One target's flat-out and paced runs.
struct Measured {
    flat_out: LoadResult,
    paced: LoadResult,
}

fn run_json(load: &LoadResult, per_sec: Option<f64>) -> Value {
    let mut value = load.to_json();
    value["paced_per_sec"] = json!(per_sec);
    value
}

/// The scenario: see the module's documentation.
pub async fn ai(settings: &Settings, sources: &AiSources<'_>) -> Result<Value> {
    if which("wrk").is_none() {
        bail!("wrk is not installed: apt-get install wrk (scripts/bench does it)");
    }
    let work = settings.work.join("ai");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let settings = settings.in_dir(work.clone());
    let client = reqwest::Client::new();
    let most = settings.connections.iter().copied().max().unwrap_or(1);
    let (fake, upstream) = match sources.upstream {
        Some(addr) => (None, addr),
        None => {
            let addr = free_port()?;
            let mut fake = spawn(
                &work,
                "ai-fake",
                &fake_program()?,
                &["--listen", &addr.to_string(), "--record-limit", "0"],
            )?;
            wait_ready_at(
                &mut fake,
                &format!("http://{addr}/v1/models"),
                &client,
                Duration::from_secs(60),
            )
            .await?;
            (Some(fake), addr)
        }
    };
    let fake_pid = fake.as_ref().map(Proc::pid);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut runs = Vec::new();

    // LiteLLM first: its most req/s sets the rate every target is paced to.
    let litellm_version = litellm_version(sources.litellm);
    let litellm = if sources.litellm.is_file() {
        eprintln!(
            "bench: ai: starting LiteLLM's proxy ({} workers; takes a while)",
            workers
        );
        let addr = free_port()?;
        let proc = start_litellm(&work, sources.litellm, addr, upstream, workers, &client).await?;
        let target = Target {
            names: ("ai_litellm", "ai_litellm_paced"),
            label: "(c) LiteLLM proxy: master key, alias → fake",
            addr,
            headers: bearer(LITELLM_MASTER_KEY),
            body: chat_body(ALIAS),
            watch: Watch {
                front: Some(proc.pid()),
                runtime: fake_pid,
            },
        };
        check(&client, &target).await?;
        let flat_out = target.flat_out(&settings, most)?;
        let per_sec = (flat_out.requests_per_sec * PACED_SHARE).max(1.0).round();
        let paced = target.paced(&settings, per_sec)?;
        drop(proc);
        runs.push(run_json(&flat_out, None));
        runs.push(run_json(&paced, Some(per_sec)));
        Some((Measured { flat_out, paced }, per_sec))
    } else {
        eprintln!(
            "bench: ai: LiteLLM skipped: no {} (scripts/bench installs it)",
            sources.litellm.display()
        );
        None
    };
    let (per_sec, rate_from) = match &litellm {
        Some((_, per_sec)) => (*per_sec, "half of LiteLLM's most req/s"),
        None => (RATE_WITHOUT_LITELLM, "fixed: LiteLLM skipped"),
    };

    let (serve, serve_addr, api_key) = start_serve(&settings, upstream, &client).await?;
    let switchyard = {
        let target = Target {
            names: ("ai_switchyard", "ai_switchyard_paced"),
            label: "(b) Switchyard serve: key + policy + access log, ai/gateway alias → ai/openai → fake",
            addr: serve_addr,
            headers: bearer(&api_key),
            body: chat_body(ALIAS),
            watch: Watch {
                front: Some(serve.pid()),
                runtime: fake_pid,
            },
        };
        check(&client, &target).await?;
        Measured {
            flat_out: target.flat_out(&settings, most)?,
            paced: target.paced(&settings, per_sec)?,
        }
    };
    drop(serve);

    let bare = {
        let target = Target {
            names: ("ai_bare", "ai_bare_paced"),
            label: "(a) bare fake upstream",
            addr: upstream,
            headers: Vec::new(),
            body: chat_body(MODEL),
            watch: Watch {
                front: None,
                runtime: fake_pid,
            },
        };
        check(&client, &target).await?;
        Measured {
            flat_out: target.flat_out(&settings, most)?,
            paced: target.paced(&settings, per_sec)?,
        }
    };
    drop(fake);
    for measured in [&switchyard, &bare] {
        runs.push(run_json(&measured.flat_out, None));
        runs.push(run_json(&measured.paced, Some(per_sec)));
    }

    let added =
        |of: &Measured, percentile: f64| of.paced.at(percentile) - bare.paced.at(percentile);
    let mut figures = json!({
        "upstream": sources.upstream.map_or("switchyard-ai-fake (started by the bench)".to_owned(), |a| format!("given: {a}")),
        "litellm": match (&litellm, &litellm_version) {
            (Some(_), Some(version)) => format!("{version}, {workers} uvicorn workers"),
            (Some(_), None) => format!("unknown version, {workers} uvicorn workers"),
            (None, _) => format!("skipped: no {}", sources.litellm.display()),
        },
        "most_connections": most,
        "paced_connections": PACED_CONNECTIONS,
        "paced_per_sec": per_sec,
        "paced_rate_from": rate_from,
        "bare_per_sec": bare.flat_out.requests_per_sec,
        "switchyard_per_sec": switchyard.flat_out.requests_per_sec,
        "switchyard_errors": switchyard.flat_out.errors + switchyard.paced.errors,
        "switchyard_added_p50_ms": added(&switchyard, 50.0),
        "switchyard_added_p99_ms": added(&switchyard, 99.0),
        "runs": runs,
    });
    if let Some((litellm, _)) = &litellm {
        figures["litellm_per_sec"] = json!(litellm.flat_out.requests_per_sec);
        figures["litellm_errors"] = json!(litellm.flat_out.errors + litellm.paced.errors);
        figures["litellm_added_p50_ms"] = json!(added(litellm, 50.0));
        figures["litellm_added_p99_ms"] = json!(added(litellm, 99.0));
        figures["switchyard_over_litellm_per_sec"] =
            json!(switchyard.flat_out.requests_per_sec / litellm.flat_out.requests_per_sec);
    }
    Ok(figures)
}

/// The goals table's lines (issue 22): Switchyard's added p99 at the paced rate against 1 ms
/// and its req/s against 10× LiteLLM's, each met only with no failed request; LiteLLM's added
/// latency and Switchyard's p50 for reference.
pub fn ai_goals(figures: &Value) -> Vec<Value> {
    let mut lines = Vec::new();
    let number = |key: &str| figures[key].as_f64();
    let clean = figures["switchyard_errors"].as_u64() == Some(0);
    let at = format!(
        "{:.0} req/s over {} conn ({})",
        figures["paced_per_sec"].as_f64().unwrap_or_default(),
        figures["paced_connections"],
        figures["paced_rate_from"].as_str().unwrap_or_default()
    );
    for (who, key, goal_ms) in [
        ("Switchyard", "switchyard_added_p99_ms", Some(1.0)),
        ("Switchyard", "switchyard_added_p50_ms", None),
        ("LiteLLM", "litellm_added_p99_ms", None),
        ("LiteLLM", "litellm_added_p50_ms", None),
    ] {
        let Some(added) = number(key) else {
            continue;
        };
        let percentile = if key.ends_with("p99_ms") {
            "p99"
        } else {
            "p50"
        };
        lines.push(goal_line(
            format!("ai: added latency {percentile}, {who} − bare upstream, {at}"),
            format!("{added:.3} ms"),
            goal_ms.map(|goal: f64| (format!("≤ {goal} ms"), clean && added <= goal)),
            added,
        ));
    }
    let most = &figures["most_connections"];
    if let Some(ratio) = number("switchyard_over_litellm_per_sec") {
        lines.push(goal_line(
            format!("ai: throughput Switchyard / LiteLLM proxy, {most} conn"),
            format!("{ratio:.1}"),
            Some(("≥ 10.0".into(), clean && ratio >= 10.0)),
            ratio,
        ));
    }
    if let (Some(switchyard), Some(bare)) = (number("switchyard_per_sec"), number("bare_per_sec")) {
        let ratio = switchyard / bare;
        lines.push(goal_line(
            format!("ai: throughput Switchyard / bare upstream, {most} conn"),
            format!("{ratio:.2}"),
            None,
            ratio,
        ));
    }
    lines
}

/// The scenario's runs as a Markdown table.
pub fn print_runs(figures: &Value) {
    let Some(runs) = figures["runs"].as_array() else {
        return;
    };
    println!(
        "\n## AI gateway load: POST {CHAT} (not streamed), wrk, flat out at {} connections and paced to {:.0} req/s over {}; LiteLLM {}",
        figures["most_connections"],
        figures["paced_per_sec"].as_f64().unwrap_or_default(),
        figures["paced_connections"],
        figures["litellm"].as_str().unwrap_or_default()
    );
    println!(
        "| target | conn | paced req/s | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx/errors | CPU µs/req proxy | CPU µs/req upstream |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let shown = |value: &Value, digits: usize| {
        value
            .as_f64()
            .map_or("–".to_owned(), |v| format!("{v:.digits$}"))
    };
    for run in runs {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run["label"].as_str().unwrap_or_default(),
            run["connections"],
            shown(&run["paced_per_sec"], 0),
            shown(&run["requests_per_sec"], 0),
            shown(&run["p50_ms"], 3),
            shown(&run["p99_ms"], 3),
            shown(&run["p999_ms"], 3),
            run["errors"],
            shown(&run["cpu_front_us_per_request"], 0),
            shown(&run["cpu_runtime_us_per_request"], 0),
        );
    }
}
