//! Observability end to end (issue 11, docs/observability.md): the metrics pass `promtool`,
//! a real Prometheus scrapes gateway and runtime, a provider's metrics show only the calling
//! tenant, one trace covers gateway → runtime → provider over OTLP/HTTP, and the log never
//! shows a secret or a PII field.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, Server, free_port, policy_bundle, tenant_with_key, write_config};

/// A runtime and a gateway in front of it, as separate processes sharing one data directory.
struct Split {
    runtime: Server,
    gateway: Server,
}

fn split(dir: &std::path::Path, env: &[(&'static str, String)]) -> Split {
    let (r, g) = (free_port(), free_port());
    let runtime = Server::spawn_with_env(
        dir,
        &["runtime", "--listen", &format!("127.0.0.1:{r}")],
        r,
        &mut env.to_vec(),
    );
    let gateway = Server::spawn_with_env(
        dir,
        &[
            "gateway",
            "--listen",
            &format!("127.0.0.1:{g}"),
            "--runtime",
            &format!("127.0.0.1:{r}"),
        ],
        g,
        &mut env.to_vec(),
    );
    Split { runtime, gateway }
}

async fn text(url: &str) -> (StatusCode, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The gateway's `/metrics` once it shows every `expected` line (at most 10 s): a request is
/// counted in Pingora's `logging` phase, just after its response went out.
async fn metrics_showing(base: &str, expected: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, metrics) = text(&format!("{base}/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        let missing: Vec<&&str> = expected.iter().filter(|e| !metrics.contains(**e)).collect();
        if missing.is_empty() {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{missing:?} missing in\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `promtool check metrics` on `exposition`; its complaints when it refuses it.
fn promtool(exposition: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package prometheus; scripts/deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_accepts_the_metrics_of_gateway_and_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let s = split(dir.path(), &[]);
    let api = Api::new(&s.gateway, &key);
    api.ok("cache/memory", "set", json!({"key": "k", "value": 1}))
        .await;
    let (status, _) = api
        .post("/providers/cache/memory/nope", json!({"params": {}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let ok_set = "switchyard_gateway_requests_total{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"set\",code=\"ok\"} 1";
    // The unknown action is counted by its code, without its made-up name as a label.
    let not_found = "switchyard_gateway_requests_total{tenant=\"acme\",domain=\"_other\",provider=\"_other\",action=\"_other\",code=\"action_not_found\"} 1";
    let gateway = metrics_showing(&s.gateway.base, &[ok_set, not_found]).await;
    let (status, runtime) = text(&format!("{}/metrics", s.runtime.base)).await;
    assert_eq!(status, StatusCode::OK);
    promtool(&gateway).unwrap_or_else(|e| panic!("promtool refused the gateway's: {e}\n{gateway}"));
    promtool(&runtime).unwrap_or_else(|e| panic!("promtool refused the runtime's: {e}\n{runtime}"));
    assert!(!gateway.contains("nope"));
    assert!(runtime.contains(
        "switchyard_provider_calls_total{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"set\",code=\"ok\"} 1"
    ), "{runtime}");
    assert!(runtime.contains(
        "switchyard_provider_circuit_state{tenant=\"acme\",domain=\"cache\",provider=\"memory\"} 0"
    ));
    // The internal code header never reaches the client.
    let response = api
        .raw()
        .post(format!("{}/providers/cache/memory/nope", s.gateway.base))
        .bearer_auth(api.key())
        .json(&json!({"params": {}}))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("x-switchyard-code").is_none());
    // Prometheus's own negotiation gets OpenMetrics.
    let om = api
        .raw()
        .get(format!("{}/metrics", s.gateway.base))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(om.ends_with("# EOF\n"));
    // Liveness and readiness.
    for base in [&s.gateway.base, &s.runtime.base] {
        assert_eq!(text(&format!("{base}/healthz")).await.0, StatusCode::OK);
        let (status, body) = text(&format!("{base}/readyz")).await;
        assert_eq!(status, StatusCode::OK, "{base}/readyz: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_token_guards_both_metrics_endpoints() {
    const TOKEN: &str = "scrape-token-for-tests";
    let dir = tempfile::tempdir().unwrap();
    let (port, runtime_port) = (free_port(), free_port());
    let server = Server::spawn_with_env(
        dir.path(),
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            // The runtime's own listener, whose /metrics is guarded too, exists with http only.
            "--dispatch",
            "http",
            "--runtime-listen",
            &format!("127.0.0.1:{runtime_port}"),
        ],
        port,
        &mut vec![("SWITCHYARD_METRICS_TOKEN", TOKEN.to_owned())],
    );
    let http = reqwest::Client::new();
    for base in [
        server.base.clone(),
        format!("http://127.0.0.1:{runtime_port}"),
    ] {
        let url = format!("{base}/metrics");
        let anonymous = http.get(&url).send().await.unwrap().status();
        let wrong = http
            .get(&url)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap()
            .status();
        let right = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(right.status(), StatusCode::OK, "{url}");
        assert!(right.text().await.unwrap().contains("# TYPE switchyard_"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_replays_and_policy_decisions_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = policy_bundle(dir.path(), "r1");
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\nbundle = \"{}\"\n[rate_limit.per_tenant]\nrequests = 5\nper_seconds = 600\n",
            bundle.display()
        ),
    );
    let key = tenant_with_key(dir.path(), "acme", "*");
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let api = Api::new(&server, &key);
    let set = |idempotency_key: Option<&'static str>, tenant: Option<&'static str>| {
        let api = api.clone();
        async move {
            let mut request = api
                .raw()
                .post(format!("{}/providers/cache/memory/set", api.base))
                .bearer_auth(api.key())
                .json(&json!({"params": {"key": "k", "value": 1}}));
            if let Some(key) = idempotency_key {
                request = request.header("idempotency-key", key);
            }
            if let Some(tenant) = tenant {
                request = request.header("x-tenant-id", tenant);
            }
            request.send().await.unwrap().status()
        }
    };
    assert_eq!(set(Some("k-1"), None).await, StatusCode::OK);
    assert_eq!(set(Some("k-1"), None).await, StatusCode::OK, "replayed");
    assert_eq!(set(None, Some("globex")).await, StatusCode::FORBIDDEN);
    assert_eq!(set(None, None).await, StatusCode::OK);
    assert_eq!(set(None, None).await, StatusCode::OK);
    assert_eq!(set(None, None).await, StatusCode::TOO_MANY_REQUESTS);
    let expected = [
        "switchyard_gateway_idempotency_replays_total{tenant=\"acme\"} 1",
        "switchyard_gateway_rate_limited_total{tenant=\"acme\"} 1",
        "switchyard_gateway_policy_decisions_total{tenant=\"acme\",result=\"allow\"} 4",
        "switchyard_gateway_policy_decisions_total{tenant=\"acme\",result=\"deny\"} 1",
        "switchyard_gateway_requests_total{tenant=\"acme\",domain=\"_other\",provider=\"_other\",action=\"_other\",code=\"rate_limited\"} 1",
        "switchyard_gateway_requests_total{tenant=\"acme\",domain=\"_other\",provider=\"_other\",action=\"_other\",code=\"policy_denied\"} 1",
        // The replay is vouched for by the stored answer: it keeps its target.
        "switchyard_gateway_requests_total{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"set\",code=\"ok\"} 4",
        // Only three calls reached the provider: the replay did not.
        "switchyard_provider_calls_total{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"set\",code=\"ok\"} 3",
    ];
    let metrics = metrics_showing(&server.base, &expected).await;
    promtool(&metrics).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_required_providers_while_liveness_does_not() {
    let dir = tempfile::tempdir().unwrap();
    for (required, ready) in [
        ("cache/memory,db/sqlite", true),
        // Registered, but the platform has no OpenAI-compatible server configured: not running.
        ("cache/memory,ai/openai", false),
        ("cache/nothing", false),
    ] {
        let port = free_port();
        let runtime = Server::spawn_with_env(
            dir.path(),
            &["runtime", "--listen", &format!("127.0.0.1:{port}")],
            port,
            &mut vec![("SWITCHYARD_REQUIRED_PROVIDERS", required.to_owned())],
        );
        let (status, body) = text(&format!("{}/readyz", runtime.base)).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        if ready {
            assert_eq!(status, StatusCode::OK, "{required}: {body}");
        } else {
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{required}: {body}"
            );
            let last = required.rsplit(',').next().unwrap();
            assert_eq!(body["providers_not_running"], json!([last]), "{body}");
        }
        assert_eq!(
            text(&format!("{}/healthz", runtime.base)).await.0,
            StatusCode::OK
        );
    }
}

/// A Prometheus server on loopback with its own config and storage; killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
}

impl Prometheus {
    fn start(dir: &std::path::Path, targets: &[(&str, &str)]) -> Prometheus {
        let port = free_port();
        let jobs: String = targets
            .iter()
            .map(|(job, target)| {
                format!(
                    "  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n"
                )
            })
            .collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}"
            ),
        )
        .unwrap();
        let storage = dir.join("prometheus-data");
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus must be installed (Debian package prometheus; scripts/deps.sh)");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The result vector of an instant query, `None` while Prometheus is not answering.
    async fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body["data"]["result"].as_array().cloned()
    }

    /// Polls `promql` until it has a sample, for at most 60 s.
    async fn wait_for(&self, promql: &str, log_dir: &std::path::Path) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(result) = self.query(promql).await
                && !result.is_empty()
            {
                return result;
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(log_dir.join("prometheus.log")).unwrap_or_default();
                panic!("Prometheus never had {promql}; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_gateway_and_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let s = split(dir.path(), &[]);
    let api = Api::new(&s.gateway, &key);
    let gateway_target = s.gateway.base.trim_start_matches("http://").to_owned();
    let runtime_target = s.runtime.base.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(
        dir.path(),
        &[("gateway", &gateway_target), ("runtime", &runtime_target)],
    );
    prometheus
        .wait_for("count(up{job=~\"gateway|runtime\"} == 1) == 2", dir.path())
        .await;
    let set = |i: usize| {
        let api = api.clone();
        async move {
            api.ok(
                "cache/memory",
                "set",
                json!({"key": format!("k{i}"), "value": i}),
            )
            .await;
        }
    };
    set(0).await;
    let requests = "switchyard_gateway_requests_total{job=\"gateway\",tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"set\",code=\"ok\"}";
    let calls = "switchyard_provider_calls_total{job=\"runtime\",tenant=\"acme\",provider=\"memory\",action=\"set\",code=\"ok\"}";
    // Both series scraped at 1 first, so that their increase over the window is not zero.
    prometheus.wait_for(requests, dir.path()).await;
    prometheus.wait_for(calls, dir.path()).await;
    // Three more once the series exists, so that rates over the window are not empty.
    for i in 1..4 {
        set(i).await;
    }
    let gateway = prometheus
        .wait_for(&format!("{requests} == 4"), dir.path())
        .await;
    let runtime = prometheus
        .wait_for(&format!("{calls} == 4"), dir.path())
        .await;
    // The SLO figures of docs/observability.md evaluate on these series.
    let p95 = prometheus
        .wait_for(
            "histogram_quantile(0.95, sum by (le) (rate(switchyard_gateway_request_duration_seconds_bucket{job=\"gateway\"}[1m]))) > 0",
            dir.path(),
        )
        .await;
    let success = prometheus
        .wait_for(
            "sum by (domain, provider) (increase(switchyard_provider_calls_total{job=\"runtime\",code=\"ok\",provider=\"memory\"}[1m])) / sum by (domain, provider) (increase(switchyard_provider_calls_total{job=\"runtime\",provider=\"memory\"}[1m])) >= 0.995",
            dir.path(),
        )
        .await;
    eprintln!(
        "prometheus: gateway requests {:?}, runtime calls {:?}, gateway p95 {:?} s, cache/memory success ratio {:?}",
        gateway[0]["value"][1], runtime[0]["value"][1], p95[0]["value"][1], success[0]["value"][1],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_sees_only_its_own_series_of_a_provider() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant_with_key(dir.path(), "acme", "*");
    let globex = tenant_with_key(dir.path(), "globex", "*");
    let server = Server::start(dir.path());
    let (acme, globex) = (Api::new(&server, &acme), Api::new(&server, &globex));
    acme.ok("cache/memory", "set", json!({"key": "a", "value": 1}))
        .await;
    globex
        .ok("cache/memory", "set", json!({"key": "g", "value": 1}))
        .await;
    globex.ok("cache/memory", "get", json!({"key": "g"})).await;
    acme.ok("db/sqlite", "query", json!({"sql": "select 1"}))
        .await;
    let view = |api: Api| async move {
        let response = api
            .raw()
            .get(format!("{}/providers/cache/memory/metrics", api.base))
            .bearer_auth(api.key())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };
    let acme_view = view(acme.clone()).await;
    assert!(acme_view.contains(
        "switchyard_provider_calls_total{tenant=\"acme\",domain=\"cache\",provider=\"memory\",action=\"set\",code=\"ok\"} 1"
    ), "{acme_view}");
    assert!(!acme_view.contains("globex"), "{acme_view}");
    assert!(!acme_view.contains("sqlite"), "{acme_view}");
    assert!(!acme_view.contains("switchyard_gateway_"), "{acme_view}");
    promtool(&acme_view).unwrap();
    let globex_view = view(globex.clone()).await;
    assert!(globex_view.contains("action=\"get\""), "{globex_view}");
    assert!(!globex_view.contains("acme"), "{globex_view}");
    // Another tenant's header does not widen the view.
    let response = globex
        .raw()
        .get(format!("{}/providers/cache/memory/metrics", server.base))
        .bearer_auth(globex.key())
        .header("x-tenant-id", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (status, body) = acme.get("/providers/cache/nothing/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "provider_not_found");
    // Without credentials there is nothing to see.
    let (status, _) = text(&format!("{}/providers/cache/memory/metrics", server.base)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// One span as the receiver saw it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
}

/// A minimal OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body, one request per
/// connection, every span kept.
fn otlp_receiver() -> (u16, Arc<Mutex<Vec<Span>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let sink = spans.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(body) = read_http_body(&mut stream) else {
                continue;
            };
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            let request = ExportTraceServiceRequest::decode(body.as_slice())
                .expect("an OTLP protobuf ExportTraceServiceRequest");
            let mut sink = sink.lock().unwrap();
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(|v| format!("{:?}", v.value))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        sink.push(Span {
                            service: service.clone(),
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent: hex(&span.parent_span_id),
                        });
                    }
                }
            }
        }
    });
    (port, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The body of one HTTP/1.1 request with a `content-length`.
fn read_http_body(stream: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("post /v1/traces "), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[head_end..head_end + length].to_vec())
}

/// The OTLP variables that send spans to the test's receiver on `port`, flushed every 100 ms.
fn otel_env(port: u16) -> [(&'static str, String); 2] {
    [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// Calls cache/memory/set under the client's `traceparent` and waits until the receiver has
/// every span of the tree; returns the echoed `traceparent` and the trace's spans.
async fn traced_call(api: &Api, spans: &Mutex<Vec<Span>>) -> (String, Vec<Span>) {
    let response = api
        .raw()
        .post(format!("{}/providers/cache/memory/set", api.base))
        .bearer_auth(api.key())
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
        .json(&json!({"params": {"key": "traced", "value": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(echoed.starts_with(&format!("00-{TRACE_ID}-")), "{echoed}");
    let wanted = [
        "gateway.request",
        "gateway.filters",
        "gateway.forward",
        "runtime.request",
        "provider.call",
        "provider.backend",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trace: Vec<Span> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == TRACE_ID)
            .cloned()
            .collect();
        if wanted.iter().all(|w| trace.iter().any(|s| s.name == *w)) {
            eprintln!(
                "trace {TRACE_ID}: {}",
                trace
                    .iter()
                    .map(|s| format!("{}({}←{})", s.name, s.span_id, s.parent))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            return (echoed, trace);
        }
        assert!(
            Instant::now() < deadline,
            "spans of trace {TRACE_ID} never all arrived: {trace:#?}\nall: {:#?}",
            spans.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the parent links of the tree; returns the gateway's forward span.
fn assert_tree(trace: &[Span]) -> Span {
    let span = |name: &str| trace.iter().find(|s| s.name == name).unwrap().clone();
    let root = span("gateway.request");
    assert_eq!(root.parent, CLIENT_SPAN, "the caller's span is the parent");
    assert_eq!(span("gateway.filters").parent, root.span_id);
    let forward = span("gateway.forward");
    assert_eq!(forward.parent, root.span_id);
    let runtime = span("runtime.request");
    assert_eq!(
        runtime.parent, forward.span_id,
        "W3C context reached the runtime"
    );
    let call = span("provider.call");
    assert_eq!(call.parent, runtime.span_id);
    assert_eq!(span("provider.backend").parent, call.span_id);
    forward
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_covers_gateway_runtime_and_provider_and_continues_the_callers() {
    let (port, spans) = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let s = split(dir.path(), &otel_env(port));
    let (echoed, trace) = traced_call(&Api::new(&s.gateway, &key), &spans).await;
    let forward = assert_tree(&trace);
    let service = |name: &str| {
        trace
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .service
            .clone()
    };
    // Two processes: the context crossed a real process boundary.
    assert!(service("gateway.request").contains("switchyard-gateway"));
    assert!(service("runtime.request").contains("switchyard-runtime"));
    assert_eq!(echoed, format!("00-{TRACE_ID}-{}-01", forward.span_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn in_process_dispatch_records_the_same_trace() {
    let (port, spans) = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let listen = free_port();
    let server = Server::spawn_with_env(
        dir.path(),
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--dispatch",
            "in-process",
        ],
        listen,
        &mut otel_env(port).to_vec(),
    );
    let (_, trace) = traced_call(&Api::new(&server, &key), &spans).await;
    assert_tree(&trace);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_and_pii_fields_never_reach_the_log() {
    const SECRET: &str = "sk-obs-7f3a9c1e5b2d4068";
    const EMAIL: &str = "alice.pii@example.com";
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let mut env = vec![
        (
            "SWITCHYARD_LOG",
            "debug,pingora=info,h2=info,hyper=info".to_owned(),
        ),
        ("SWITCHYARD_LOG_REDACT", "email".to_owned()),
    ];
    // The key sits in the tenant's own secret directory; the dead server is on loopback.
    let secrets = dir.path().join("tenant-secrets");
    std::fs::create_dir_all(secrets.join("acme")).unwrap();
    std::fs::write(secrets.join("acme/openai"), SECRET).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n[tenancy.secrets]\nfile_dir = \"{}/{{tenant}}\"\n",
            secrets.display()
        ),
    );
    let server = Server::start_with_env(dir.path(), &["--config", &config], &mut env);
    let api = Api::new(&server, &key);
    let dead = free_port();
    let (status, body) = api
        .post(
            "/providers/ai/openai/configure",
            json!({"config": {"base_url": format!("http://127.0.0.1:{dead}/v1"),
                              "api_key": format!("secret://file{}/acme/openai", secrets.display())}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api
        .post(
            "/providers/ai/openai/chat",
            json!({"params": {"messages": [{"role": "user", "content": "hello"}]}}),
        )
        .await;
    assert!(status.is_server_error() || status.is_client_error());
    // A careless caller puts both into params, which the runtime logs at debug.
    api.ok(
        "cache/memory",
        "set",
        json!({"key": "contact", "value": {"email": EMAIL, "note": SECRET}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
        // The access line is written after the response went out: wait for it too.
        let done = log.contains("\"key\\\":\\\"contact\\\"")
            && log
                .lines()
                .any(|l| l.contains("switchyard::access") && l.contains("\"action\":\"set\""));
        if done || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let invoke = log
        .lines()
        .find(|l| l.contains("switchyard::invoke") && l.contains("contact"))
        .unwrap_or_else(|| panic!("no debug line for the invoke:\n{log}"));
    assert!(!log.contains(SECRET), "the secret reached the log");
    assert!(!log.contains(EMAIL), "a PII field reached the log");
    assert!(invoke.contains("[redacted]"), "{invoke}");
    let line: Value = serde_json::from_str(invoke).expect("log lines are JSON");
    assert_eq!(line["tenant"], "acme");
    assert!(line["request_id"].is_string());
    let access = log
        .lines()
        .filter(|l| l.contains("switchyard::access"))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["action"] == "set")
        .unwrap_or_else(|| panic!("no access line for the set:\n{log}"));
    for field in [
        "tenant",
        "request_id",
        "trace_id",
        "provider",
        "action",
        "code",
        "duration_ms",
    ] {
        assert!(!access[field].is_null(), "{field} missing in {access}");
    }
    eprintln!(
        "log: {} lines, {} redactions, access line {access}",
        log.lines().count(),
        log.matches("[redacted]").count()
    );
}
