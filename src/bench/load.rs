//! HTTP load on `cache/memory/get`: the targets under test (runtime, gateway, nginx, a minimal
//! Pingora proxy, serve) set up and driven by wrk; their processes are `procs`', the goals
//! computed from the results `goals`'.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use switchyard_contracts::{Scopes, TenantId};
use switchyard_runtime::PlatformStore;
use switchyard_runtime::internal_auth::{BodySeal, InternalKey, VerifiedContext, unix_now};

use super::procs::{Proc, Stop, free_port, spawn, spawn_stopped_by, wait_ready};

/// The call under load: a small value read from the in-memory cache.
const PATH: &str = "/providers/cache/memory/get";
const BODY: &str = r#"{"params":{"key":"bench"}}"#;
const CACHE_GET: Request = Request {
    path: PATH,
    body: BODY,
    per_sec: None,
};

/// What wrk sends: a POST of `body` (JSON, no single quote: it goes into the script quoted)
/// to `path`, as fast as each connection gets its answers, or paced to `per_sec` requests a
/// second over all connections together (the same load for targets of different speeds).
pub(super) struct Request<'a> {
    pub path: &'a str,
    pub body: &'a str,
    pub per_sec: Option<f64>,
}

/// The tenant every load target serves.
pub const TENANT: &str = "bench";
/// Percentiles wrk reports (its histogram has microsecond resolution).
const PERCENTILES: [f64; 20] = [
    1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 90.0, 95.0, 97.5, 99.0, 99.5,
    99.9, 99.95, 99.99, 100.0,
];

pub struct Settings {
    /// Each load target runs once per entry (e.g. 32 and 1 connections), in this order.
    pub connections: Vec<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    /// The run's data dirs, configs and logs; emptied at the start of each scenario.
    pub work: PathBuf,
    pub policies: PathBuf,
}

impl Settings {
    /// The same settings for a scenario's own work directory.
    pub(super) fn in_dir(&self, work: PathBuf) -> Settings {
        Settings {
            work,
            connections: self.connections.clone(),
            duration: self.duration,
            warmup: self.warmup,
            policies: self.policies.clone(),
        }
    }
}

/// What wrk measured for one target at one number of connections.
pub struct LoadResult {
    /// Short, stable name (`direct`, `nginx`, `pingora`, `gateway`, `serve_http`,
    /// `serve_in_process`).
    pub name: &'static str,
    pub label: &'static str,
    /// wrk's open connections, each sending its next request when the last one is answered.
    pub connections: u32,
    pub requests_per_sec: f64,
    pub requests: u64,
    /// Socket errors, timeouts and non-2xx answers: a healthy run has none.
    pub errors: u64,
    /// (percentile, latency in ms)
    pub percentiles: Vec<(f64, f64)>,
    /// CPU time per request of the process in front (nginx with its workers, the gateway,
    /// or `serve` as a whole) and of the runtime process, in µs: where the time goes.
    pub cpu_front_us: Option<f64>,
    pub cpu_runtime_us: Option<f64>,
}

impl LoadResult {
    pub fn at(&self, percentile: f64) -> f64 {
        self.percentiles
            .iter()
            .find(|(p, _)| (*p - percentile).abs() < 1e-9)
            .map_or(f64::NAN, |(_, ms)| *ms)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "label": self.label,
            "connections": self.connections,
            "requests_per_sec": self.requests_per_sec,
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": self.at(50.0),
            "p99_ms": self.at(99.0),
            "p999_ms": self.at(99.9),
            "percentiles_ms": self.percentiles,
            "cpu_front_us_per_request": self.cpu_front_us,
            "cpu_runtime_us_per_request": self.cpu_runtime_us,
        })
    }
}

/// A fresh work directory with a data dir holding the bench tenant and its key, the policy
/// bundle and the gateway config (API key, a rate limit far above any load, policy on).
pub struct Fixture {
    pub data: PathBuf,
    pub config: PathBuf,
    pub api_key: String,
    pub internal_key: InternalKey,
}

pub async fn fixture(settings: &Settings, dir: &str) -> Result<Fixture> {
    let work = settings.work.join(dir);
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let data = work.join("data");
    std::fs::create_dir_all(&data)?;
    let store = PlatformStore::open(&data).await?;
    let tenant = TenantId::parse(TENANT).map_err(anyhow::Error::msg)?;
    store.create_tenant(&tenant).await?;
    let key = store
        .create_key(&tenant, &Scopes::parse("*").map_err(anyhow::Error::msg)?)
        .await?;
    drop(store);
    let bundle = work.join("bundle.tar.gz");
    let bytes =
        switchyard_policy::build_bundle(&settings.policies, "bench", None).with_context(|| {
            format!(
                "building the policy bundle from {}",
                settings.policies.display()
            )
        })?;
    std::fs::write(&bundle, bytes)?;
    let config = work.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[rate_limit.per_tenant]\nrequests = 1000000\nper_seconds = 1\n\
             [rate_limit.per_subject]\nrequests = 1000000\nper_seconds = 1\n\
             [policy]\nbundle = {:?}\n",
            bundle.display().to_string()
        ),
    )?;
    Ok(Fixture {
        internal_key: InternalKey::load(&data)?,
        data,
        config,
        api_key: key.plaintext,
    })
}

/// Stores the value the load reads, through `addr` (a gateway or serve).
pub async fn seed(client: &reqwest::Client, addr: SocketAddr, api_key: &str) -> Result<()> {
    let answer = client
        .post(format!("http://{addr}/providers/cache/memory/set"))
        .bearer_auth(api_key)
        .json(&json!({"params": {"key": "bench", "value": {"sku": "A-100", "qty": 12, "warehouse": "main"}}}))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!(
            "seeding the cache failed: {} {}",
            answer.status(),
            answer.text().await?
        );
    }
    Ok(())
}

/// The headers the gateway would sign, for the targets that bypass it (direct, nginx). Valid
/// for the runtime's five-minute window: signed again before each target.
fn signed_headers(key: &InternalKey) -> Vec<(String, String)> {
    let context = VerifiedContext {
        tenant: TENANT.into(),
        subject: "bench".into(),
        scopes: "*".into(),
        request_id: "bench".into(),
        issued_at: unix_now(),
        body: BodySeal::of(BODY.as_bytes()),
    };
    let (context, signature) = key.sign("POST", PATH, &context);
    vec![
        (
            switchyard_runtime::internal_auth::CONTEXT_HEADER.into(),
            context,
        ),
        (
            switchyard_runtime::internal_auth::SIGNATURE_HEADER.into(),
            signature,
        ),
    ]
}

/// The wrk script: the POST, its headers, the pacing of a fixed rate, and a `done` hook that
/// writes the summary and the percentiles as JSON (wrk's own report has no p99.9).
fn wrk_script(request: &Request, headers: &[(String, String)], out: &Path) -> String {
    let mut script = format!(
        "wrk.method = \"POST\"\nwrk.body = '{}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
        request.body
    );
    if let Some(per_sec) = request.per_sec {
        script.push_str(&pacing(per_sec));
    }
    for (name, value) in headers {
        script.push_str(&format!("wrk.headers[\"{name}\"] = \"{value}\"\n"));
    }
    let quantiles: Vec<String> = PERCENTILES.iter().map(|p| p.to_string()).collect();
    script.push_str(&format!(
        r#"done = function(summary, latency, requests)
  local f = assert(io.open("{out}", "w"))
  local e = summary.errors
  f:write(string.format('{{"requests":%d,"duration_us":%d,"errors":%d,"percentiles_us":[',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout))
  local qs = {{{quantiles}}}
  for i, q in ipairs(qs) do
    if i > 1 then f:write(",") end
    f:write(string.format('[%s,%d]', tostring(q), latency:percentile(q)))
  end
  f:write(']}}')
  f:close()
end
"#,
        out = out.display(),
        quantiles = quantiles.join(", "),
    ));
    script
}

/// wrk's `delay` hook (called before each request of each connection; wrk does not count the
/// wait in the latency) holding one schedule of send times `1 / per_sec` apart for all
/// connections, read from the monotonic clock through LuaJIT's FFI (wrk's Lua has no clock
/// finer than a second). A request that comes late does not make the next ones come sooner.
fn pacing(per_sec: f64) -> String {
    format!(
        r#"local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local clock_now = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock_now)
  return tonumber(clock_now.tv_sec) * 1000 + tonumber(clock_now.tv_nsec) / 1e6
end
local interval_ms = {interval}
local next_ms = nil
delay = function()
  local now = now_ms()
  if next_ms == nil or next_ms < now then next_ms = now end
  local wait = next_ms - now
  next_ms = next_ms + interval_ms
  return math.floor(wait)
end
"#,
        interval = 1000.0 / per_sec
    )
}

/// The processes whose CPU time a load run reports.
#[derive(Clone, Copy)]
pub(super) struct Watch {
    pub front: Option<u32>,
    pub runtime: Option<u32>,
}

/// User + system CPU seconds of `pid` and its children (nginx's workers), from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let ticks_per_sec = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for entry in entries.flatten() {
        let Some(this) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name in parentheses: state, ppid, … utime (12th), stime (13th).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let parent = fields.get(1).and_then(|f| f.parse::<u32>().ok());
        if this == pid || parent == Some(pid) {
            let field = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            ticks += field(11) + field(12);
        }
    }
    ticks as f64 / ticks_per_sec
}

/// One wrk run of `request` against `addr` with `connections` connections: warm-up
/// (discarded), then the measured run.
pub(super) fn wrk(
    settings: &Settings,
    request: &Request,
    connections: u32,
    addr: SocketAddr,
    headers: &[(String, String)],
    (name, label): (&'static str, &'static str),
    watch: Watch,
) -> Result<LoadResult> {
    let script_path = settings.work.join(format!("{name}-c{connections}.lua"));
    let out = settings
        .work
        .join(format!("{name}-c{connections}.wrk.json"));
    std::fs::write(&script_path, wrk_script(request, headers, &out))?;
    let url = format!("http://{addr}{}", request.path);
    let run = |duration: Duration| -> Result<Value> {
        let child = Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{}s", duration.as_secs().max(1)),
                "--timeout",
                "5s",
                "-s",
            ])
            .arg(&script_path)
            .arg(&url)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot run wrk: install it (apt-get install wrk) or use scripts/bench")?;
        // A Proc, so that a signal to the bench stops wrk too.
        let status = Proc::new(child, "wrk", Stop::Kill).wait()?;
        if !status.success() {
            bail!("wrk failed against {label} ({connections} connections): {status}");
        }
        Ok(serde_json::from_slice(&std::fs::read(&out)?)?)
    };
    if !settings.warmup.is_zero() {
        run(settings.warmup)?;
    }
    let cpu = |pid: Option<u32>| pid.map(cpu_secs);
    let (front_before, runtime_before) = (cpu(watch.front), cpu(watch.runtime));
    let measured = run(settings.duration)?;
    let (front_after, runtime_after) = (cpu(watch.front), cpu(watch.runtime));
    let requests = measured["requests"].as_u64().unwrap_or_default();
    let per_request = |before: Option<f64>, after: Option<f64>| {
        Some((after? - before?) * 1e6 / requests.max(1) as f64)
    };
    let seconds = measured["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
    let percentiles = measured["percentiles_us"]
        .as_array()
        .map(|points| {
            points
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().unwrap_or_default(),
                        p[1].as_f64().unwrap_or_default() / 1e3,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let result = LoadResult {
        name,
        label,
        connections,
        requests_per_sec: requests as f64 / seconds,
        requests,
        errors: measured["errors"].as_u64().unwrap_or_default(),
        percentiles,
        cpu_front_us: per_request(front_before, front_after),
        cpu_runtime_us: per_request(runtime_before, runtime_after),
    };
    eprintln!(
        "bench: {label}, {connections} connections: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms",
        result.requests_per_sec,
        result.at(50.0),
        result.at(99.0)
    );
    Ok(result)
}

/// nginx from the distribution, bare: `proxy_pass` with upstream keep-alive, no auth, no log.
fn nginx(work: &Path, listen: SocketAddr, upstream: SocketAddr) -> Result<Proc> {
    let root = work.join("nginx");
    std::fs::create_dir_all(root.join("tmp"))?;
    let tmp = root.join("tmp");
    let config = root.join("nginx.conf");
    std::fs::write(
        &config,
        format!(
            "worker_processes auto;\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n\
               fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n\
               upstream runtime {{ server {upstream}; keepalive 128; }}\n\
               server {{\n    listen {listen};\n    location / {{\n      proxy_pass http://runtime;\n\
                   proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
            root = root.display(),
            tmp = tmp.display(),
        ),
    )?;
    let program = which("nginx").context(
        "nginx is not installed: apt-get install nginx (scripts/bench does it), or leave out the gateway scenario",
    )?;
    // The master stays in the foreground (`daemon off`) as the bench's child, stopped with
    // SIGQUIT (see [`Stop::Quit`]).
    spawn_stopped_by(
        work,
        "nginx",
        &program,
        &[
            "-c",
            &config.display().to_string(),
            "-e",
            &root.join("error.log").display().to_string(),
        ],
        Stop::Quit,
    )
}

/// The first `name` on PATH, or in the sbin directories a non-root PATH may lack.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Scenario 1: one runtime process reached (a) directly, (b) through bare nginx, (c) through
/// the gateway and (d) through a Pingora proxy with no filters, at each number of connections.
pub async fn gateway(settings: &Settings) -> Result<Vec<LoadResult>> {
    if which("wrk").is_none() {
        bail!("wrk is not installed: apt-get install wrk (scripts/bench does it)");
    }
    let fixture = fixture(settings, "gateway").await?;
    let work = settings.work.join("gateway");
    let exe = std::env::current_exe()?;
    let data = fixture.data.display().to_string();
    let client = reqwest::Client::new();
    let (runtime_addr, nginx_addr, gateway_addr, pingora_addr) =
        (free_port()?, free_port()?, free_port()?, free_port()?);
    let mut runtime = spawn(
        &work,
        "runtime",
        &exe,
        &[
            "--data-dir",
            &data,
            "runtime",
            "--listen",
            &runtime_addr.to_string(),
            "--lifecycle-bus",
            "off",
        ],
    )?;
    wait_ready(&mut runtime, runtime_addr, &client).await?;
    let config = fixture.config.display().to_string();
    let mut gateway = spawn(
        &work,
        "gateway",
        &exe,
        &[
            "--data-dir",
            &data,
            "gateway",
            "--listen",
            &gateway_addr.to_string(),
            "--runtime",
            &runtime_addr.to_string(),
            "--config",
            &config,
        ],
    )?;
    wait_ready(&mut gateway, gateway_addr, &client).await?;
    let mut nginx = nginx(&work, nginx_addr, runtime_addr)?;
    wait_ready(&mut nginx, nginx_addr, &client).await?;
    let mut pingora = spawn(
        &work,
        "bench-proxy",
        &exe,
        &[
            "bench-proxy",
            "--listen",
            &pingora_addr.to_string(),
            "--upstream",
            &runtime_addr.to_string(),
        ],
    )?;
    wait_ready(&mut pingora, pingora_addr, &client).await?;
    seed(&client, gateway_addr, &fixture.api_key).await?;
    let settings = settings.in_dir(work);
    let watch = |front: Option<&Proc>| Watch {
        front: front.map(Proc::pid),
        runtime: Some(runtime.pid()),
    };
    let bearer = vec![(
        "Authorization".to_owned(),
        format!("Bearer {}", fixture.api_key),
    )];
    let mut results = Vec::new();
    for &connections in &settings.connections {
        results.push(wrk(
            &settings,
            &CACHE_GET,
            connections,
            runtime_addr,
            &signed_headers(&fixture.internal_key),
            ("direct", "(a) runtime direct"),
            watch(None),
        )?);
        results.push(wrk(
            &settings,
            &CACHE_GET,
            connections,
            nginx_addr,
            &signed_headers(&fixture.internal_key),
            ("nginx", "(b) bare nginx proxy_pass"),
            watch(Some(&nginx)),
        )?);
        results.push(wrk(
            &settings,
            &CACHE_GET,
            connections,
            gateway_addr,
            &bearer,
            (
                "gateway",
                "(c) switchyard gateway: key + rate limit + policy + decision log + access log",
            ),
            watch(Some(&gateway)),
        )?);
        results.push(wrk(
            &settings,
            &CACHE_GET,
            connections,
            pingora_addr,
            &signed_headers(&fixture.internal_key),
            ("pingora", "(d) minimal Pingora proxy, no filters"),
            watch(Some(&pingora)),
        )?);
    }
    Ok(results)
}

/// Scenario 2: `serve` (gateway and runtime in one process) with the same config, over loopback
/// HTTP and in process, at each number of connections.
pub async fn serve_modes(settings: &Settings) -> Result<Vec<LoadResult>> {
    if which("wrk").is_none() {
        bail!("wrk is not installed: apt-get install wrk (scripts/bench does it)");
    }
    let mut results = Vec::new();
    for (dispatch, name, label) in [
        (
            "http",
            "serve_http",
            "(e) serve, gateway → runtime over loopback HTTP",
        ),
        (
            "in-process",
            "serve_in_process",
            "(f) serve, gateway → runtime in process",
        ),
    ] {
        let fixture = fixture(settings, name).await?;
        let work = settings.work.join(name);
        let addr = free_port()?;
        let client = reqwest::Client::new();
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
                dispatch,
                "--lifecycle-bus",
                "off",
                "--config",
                &fixture.config.display().to_string(),
            ],
        )?;
        wait_ready(&mut serve, addr, &client).await?;
        seed(&client, addr, &fixture.api_key).await?;
        let bearer = vec![(
            "Authorization".to_owned(),
            format!("Bearer {}", fixture.api_key),
        )];
        let watch = Watch {
            front: Some(serve.pid()),
            runtime: None,
        };
        let settings = settings.in_dir(work);
        for &connections in &settings.connections {
            results.push(wrk(
                &settings,
                &CACHE_GET,
                connections,
                addr,
                &bearer,
                (name, label),
                watch,
            )?);
        }
    }
    Ok(results)
}
