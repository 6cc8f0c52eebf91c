//! Inbound webhooks (`POST /inbound/{tenant}/integration/{name}`) through real gateways
//! (Pingora on loopback ports) in both deployments: one proxying to the runtime's HTTP
//! service (the context signed, the body tagged and read again there) and one with the
//! runtime in its process. Each runs the repository's policy bundle, a body limit and a
//! per-tenant rate limit. The engine behind the route is a test-only `integration/recorder`
//! that keeps what its `receive` got (the real Shopify path is the connectors' to test).

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use serde_json::{Value, json};
use switchyard_contracts::{ActionDescriptor, ErrorCode, ProviderDescriptor, TenantId};
use switchyard_gateway::config::GatewayConfig;
use switchyard_gateway::filters::authenticate::Authenticator;
use switchyard_gateway::filters::decision_log::DecisionLogWriter;
use switchyard_gateway::filters::policy::Policy;
use switchyard_gateway::shutdown::Drain;
use switchyard_gateway::upstream::{RuntimeLink, Upstreams};
use switchyard_gateway::{Gateway, GatewayParts};
use switchyard_platform_store::internal_auth::InternalKey;
use switchyard_runtime::http::{Service, serve};
use switchyard_runtime::{PlatformStore, Registry, Runtime};
use switchyard_spi::{
    CallContext, Health, Invocation, Provider, ProviderError, ProviderFactory, StartContext,
};
use tokio::sync::Notify;

/// The tenants the platform has, each with the recorder configured but `hooli`;
/// `initech`'s policy switches the recorder's `receive` off.
const TENANTS: [&str; 5] = ["acme", "globex", "initech", "busy", "hooli"];

/// The gateways' body limit.
const MAX_BODY: usize = 4096;

/// Each tenant's budget at each gateway: far above what a test sends, but for the rate test.
const TENANT_BUDGET: usize = 12;

/// One `receive` as the recorder got it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    /// The tenant whose instance took the call, and the call's own context.
    instance: String,
    tenant: String,
    subject: Option<String>,
    service: Option<String>,
    params: Value,
    payload: Option<Bytes>,
}

type Seen = Arc<Mutex<Vec<Received>>>;

/// `integration/recorder` (takes webhooks) or `integration/plain` (does not).
struct Recorder {
    descriptor: ProviderDescriptor,
    seen: Seen,
}

#[async_trait]
impl ProviderFactory for Recorder {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Recording {
            instance: ctx.tenant.to_string(),
            seen: self.seen.clone(),
        }))
    }
}

struct Recording {
    instance: String,
    seen: Seen,
}

#[async_trait]
impl Provider for Recording {
    /// Verifies the sender's "signature" (the header `x-signature: valid`) as a real engine
    /// verifies its system's, and keeps nothing when it fails.
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        if call.params["headers"]["x-signature"] != "valid" {
            // A detail of its own, as real engines give (naming what the tenant configured).
            return Err(ProviderError::new(
                ErrorCode::SignatureInvalid,
                "integration/recorder: x-signature is not the one configured",
            ));
        }
        self.seen.lock().unwrap().push(Received {
            instance: self.instance.clone(),
            tenant: ctx.tenant.to_string(),
            subject: ctx.subject.clone(),
            service: ctx.service.clone(),
            params: call.params,
            payload: call.payload,
        });
        Ok(json!({"received": true}))
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(Vec::new())
    }
}

fn engine(name: &str, action: &str, seen: &Seen) -> Arc<Recorder> {
    Arc::new(Recorder {
        descriptor: ProviderDescriptor {
            domain: "integration".into(),
            name: name.into(),
            version: "0.0.0".into(),
            summary: "keeps what it receives".into(),
            capabilities: Vec::new(),
            config_schema: json!({"type": "object"}),
            actions: vec![ActionDescriptor {
                name: action.into(),
                summary: action.into(),
                params: json!({"type": "object", "required": ["headers"],
                               "properties": {"headers": {"type": "object",
                                                          "additionalProperties": {"type": "string"}}}}),
                result: json!({"type": "object"}),
            }],
        },
        seen: seen.clone(),
    })
}

/// Stops a gateway's Pingora server when notified.
struct Stop(Arc<Notify>);

#[async_trait]
impl ShutdownSignalWatch for Stop {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository's policy bundle, with `initech` refusing the recorder's webhooks.
fn policy_bundle(dir: &Path) -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let source = dir.join("policies");
    std::fs::create_dir_all(source.join("switchyard")).unwrap();
    std::fs::copy(
        repo.join("switchyard/authz.rego"),
        source.join("switchyard/authz.rego"),
    )
    .unwrap();
    let mut data: Value =
        serde_json::from_slice(&std::fs::read(repo.join("data.json")).unwrap()).unwrap();
    data["switchyard"]["tenants"]["initech"] =
        json!({"deny_actions": ["integration/recorder/receive"]});
    std::fs::write(source.join("data.json"), data.to_string()).unwrap();
    let bundle = dir.join("bundle.tar.gz");
    std::fs::write(
        &bundle,
        switchyard_policy::build_bundle(&source, "inbound-test", None).unwrap(),
    )
    .unwrap();
    bundle
}

struct Harness {
    /// The gateway proxying to the runtime over HTTP, and the one with the runtime inside.
    split: String,
    in_process: String,
    seen: Seen,
    stops: Vec<Arc<Notify>>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for stop in &self.stops {
            stop.notify_one();
        }
    }
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        for tenant in TENANTS {
            store
                .create_tenant(&TenantId::parse(tenant).unwrap())
                .await
                .unwrap();
        }
        let seen = Seen::default();
        let mut registry = Registry::default();
        registry
            .register(engine("recorder", "receive", &seen))
            .unwrap();
        registry
            .register(engine("plain", "trigger", &seen))
            .unwrap();
        let runtime = Arc::new(Runtime::new(
            registry,
            store.clone(),
            Default::default(),
            Default::default(),
        ));
        for tenant in TENANTS.iter().filter(|t| **t != "hooli") {
            let tenant = TenantId::parse(tenant).unwrap();
            for engine in ["recorder", "plain"] {
                runtime
                    .configure(&tenant, "integration", engine, json!({"config": {}}))
                    .await
                    .unwrap();
            }
        }
        let key = InternalKey::load(dir.path()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runtime_addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            listener,
            runtime.clone(),
            key.clone(),
            std::future::pending(),
        ));
        let bundle = policy_bundle(dir.path());
        let config = || -> GatewayConfig {
            toml::from_str(&format!(
                "[limits]\nmax_body_bytes = {MAX_BODY}\n\
                 [rate_limit]\nper_tenant = {{requests = {TENANT_BUDGET}, per_seconds = 3600}}\n\
                 [policy]\nbundle = {:?}\n",
                bundle.display().to_string()
            ))
            .unwrap()
        };
        let mut stops = Vec::new();
        let (upstreams, health) =
            Upstreams::new(&[runtime_addr], Duration::from_millis(200)).unwrap();
        let split = gateway(
            config(),
            RuntimeLink::Http(upstreams),
            &store,
            &key,
            &mut stops,
            Some(Box::new(move |server: &mut Server| {
                server.add_service(health);
            })),
        )
        .await;
        let in_process = gateway(
            config(),
            RuntimeLink::InProcess(Arc::new(Service::new(runtime, key.clone()))),
            &store,
            &key,
            &mut stops,
            None,
        )
        .await;
        Harness {
            split,
            in_process,
            seen,
            stops,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn bases(&self) -> [(&'static str, &str); 2] {
        [("split", &self.split), ("in-process", &self.in_process)]
    }

    /// Sends a webhook to `base`; answers its status and JSON body.
    async fn hook(
        &self,
        base: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{base}{path}")).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    fn take_seen(&self) -> Vec<Received> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

type AddServices = Box<dyn FnOnce(&mut Server) + Send>;

/// Runs a gateway on a loopback port in a thread of its own, as `switchyard serve` does.
async fn gateway(
    config: GatewayConfig,
    runtime: RuntimeLink,
    store: &PlatformStore,
    key: &InternalKey,
    stops: &mut Vec<Arc<Notify>>,
    add: Option<AddServices>,
) -> String {
    let (policy, decisions) = Policy::start(config.policy.as_ref().unwrap())
        .await
        .unwrap();
    let writer = DecisionLogWriter {
        store: store.clone(),
        queue: decisions,
    };
    let gateway = Gateway::new(GatewayParts {
        config,
        runtime,
        authenticator: Authenticator::new(store.clone()),
        policy: Some(policy),
        store: store.clone(),
        internal_key: key.clone(),
        drain: Drain::default(),
    })
    .unwrap();
    let port = free_port();
    let stop = Arc::new(Notify::new());
    stops.push(stop.clone());
    std::thread::spawn(move || {
        let conf = ServerConf {
            threads: 1,
            grace_period_seconds: Some(0),
            graceful_shutdown_timeout_seconds: Some(1),
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();
        let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, gateway);
        proxy.add_tcp(&format!("127.0.0.1:{port}"));
        server.add_service(proxy);
        server.add_service(background_service("decision log", writer));
        if let Some(add) = add {
            add(&mut server);
        }
        server.run(RunArgs {
            shutdown_signal: Box::new(Stop(stop)),
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gateway never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    format!("http://127.0.0.1:{port}")
}

const SHOPIFY_HEADERS: [(&str, &str); 6] = [
    ("x-signature", "valid"),
    ("X-Shopify-Topic", "orders/create"),
    (
        "X-Shopify-Webhook-Id",
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    ),
    ("content-type", "application/json"),
    ("authorization", "Bearer not-a-switchyard-key"),
    ("cookie", "session=abc"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_reaches_its_tenants_engine_with_its_headers_and_exact_body_without_a_key() {
    let h = Harness::start().await;
    let body = Bytes::from_static(b"{\"id\": 820982911946154508, \"total_price\": \"10.00\"}\n");
    let mut got = Vec::new();
    for (mode, base) in h.bases() {
        let (status, answer) = h
            .hook(
                base,
                "/inbound/acme/integration/recorder",
                &SHOPIFY_HEADERS,
                body.clone(),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["data"], json!({"received": true}), "{mode}");
        let seen = h.take_seen();
        assert_eq!(seen.len(), 1, "{mode}");
        let received = seen.into_iter().next().unwrap();
        assert_eq!(received.instance, "acme", "{mode}");
        assert_eq!(received.tenant, "acme", "{mode}");
        assert_eq!(
            received.subject.as_deref(),
            Some("inbound:integration/recorder"),
            "{mode}"
        );
        assert_eq!(received.service, None, "{mode}");
        assert_eq!(received.payload.as_ref(), Some(&body), "{mode}");
        let headers = &received.params["headers"];
        assert_eq!(headers["x-shopify-topic"], "orders/create", "{mode}");
        assert_eq!(
            headers["x-shopify-webhook-id"], "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            "{mode}"
        );
        assert_eq!(headers["content-type"], "application/json", "{mode}");
        for dropped in ["authorization", "cookie", "content-length", "host"] {
            assert!(
                headers.get(dropped).is_none(),
                "{mode}: {dropped} reached the engine"
            );
        }
        assert!(
            !headers
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("x-switchyard-")),
            "{mode}: an internal header reached the engine: {headers}"
        );
        got.push(received.params);
    }
    // What the engine gets does not depend on the deployment.
    assert_eq!(got[0], got[1]);

    // Any content type, bytes that are not UTF-8 included, arrives as sent.
    let xml = Bytes::from_static(b"<?xml version=\"1.0\"?><notifications>\xff</notifications>");
    for (mode, base) in h.bases() {
        let headers = [("x-signature", "valid"), ("content-type", "text/xml")];
        let (status, answer) = h
            .hook(
                base,
                "/inbound/globex/integration/recorder",
                &headers,
                xml.clone(),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {answer}");
        let seen = h.take_seen();
        assert_eq!(seen[0].payload.as_ref(), Some(&xml), "{mode}");
        assert_eq!(
            (seen[0].instance.as_str(), seen[0].tenant.as_str()),
            ("globex", "globex")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_tenant_or_an_engine_without_webhooks_or_config_answers_as_a_bad_signature() {
    let h = Harness::start().await;
    for (mode, base) in h.bases() {
        let headers = [("x-signature", "valid")];
        let forged = [("x-signature", "forged")];
        let answers = [
            h.hook(base, "/inbound/acme/integration/recorder", &forged, "{}")
                .await,
            h.hook(base, "/inbound/nobody/integration/recorder", &headers, "{}")
                .await,
            h.hook(base, "/inbound/acme/integration/plain", &headers, "{}")
                .await,
            h.hook(base, "/inbound/acme/integration/missing", &headers, "{}")
                .await,
            h.hook(base, "/inbound/hooli/integration/recorder", &headers, "{}")
                .await,
        ];
        for (status, problem) in &answers {
            assert_eq!(*status, 401, "{mode}: {problem}");
            assert_eq!(problem["code"], "signature_invalid", "{mode}");
        }
        // Nothing but the request id tells them apart: not the engine's own detail either.
        let without_id = |p: &Value| {
            let mut p = p.clone();
            p.as_object_mut().unwrap().remove("request_id");
            p
        };
        for (_, problem) in &answers[1..] {
            assert_eq!(without_id(problem), without_id(&answers[0].1), "{mode}");
        }
        // A path that cannot name a tenant answers the same.
        let (status, problem) = h
            .hook(
                base,
                "/inbound/Not_A_Tenant/integration/recorder",
                &headers,
                "{}",
            )
            .await;
        assert_eq!(
            (status, &problem["code"]),
            (401, &json!("signature_invalid")),
            "{mode}"
        );
        assert!(h.take_seen().is_empty(), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_for_one_tenants_path_reaches_that_tenants_instance_only() {
    let h = Harness::start().await;
    for (mode, base) in h.bases() {
        for tenant in ["acme", "globex"] {
            // A header naming another tenant is the sender's text, never the tenant.
            let headers = [("x-signature", "valid"), ("x-tenant", "globex")];
            let path = format!("/inbound/{tenant}/integration/recorder");
            let (status, answer) = h.hook(base, &path, &headers, tenant).await;
            assert_eq!(status, 200, "{mode}: {answer}");
        }
        let seen: Vec<(String, String, Option<Bytes>)> = h
            .take_seen()
            .into_iter()
            .map(|r| (r.instance, r.tenant, r.payload))
            .collect();
        assert_eq!(
            seen,
            [
                ("acme".into(), "acme".into(), Some(Bytes::from("acme"))),
                (
                    "globex".into(),
                    "globex".into(),
                    Some(Bytes::from("globex"))
                ),
            ],
            "{mode}"
        );
        // X-Tenant-Id cannot move a hook to another tenant either: the policy sees a
        // cross-tenant call and refuses it.
        let headers = [("x-signature", "valid"), ("x-tenant-id", "globex")];
        let (status, problem) = h
            .hook(base, "/inbound/acme/integration/recorder", &headers, "x")
            .await;
        assert_eq!(
            (status, &problem["code"]),
            (403, &json!("policy_denied")),
            "{mode}"
        );
        assert!(h.take_seen().is_empty(), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_limit_the_rate_limit_and_the_tenants_policy_apply_to_webhooks() {
    let h = Harness::start().await;
    let headers = [("x-signature", "valid")];
    for (mode, base) in h.bases() {
        let (status, problem) = h
            .hook(
                base,
                "/inbound/acme/integration/recorder",
                &headers,
                vec![b'x'; MAX_BODY + 1],
            )
            .await;
        assert_eq!(
            (status, &problem["code"]),
            (413, &json!("payload_too_large")),
            "{mode}"
        );

        // initech's policy refuses the recorder's webhooks; the shipped one admits everyone's.
        let (status, problem) = h
            .hook(
                base,
                "/inbound/initech/integration/recorder",
                &headers,
                "{}",
            )
            .await;
        assert_eq!(
            (status, &problem["code"]),
            (403, &json!("policy_denied")),
            "{mode}"
        );
        assert!(h.take_seen().is_empty(), "{mode}");

        // The tenant's budget runs out alike whether the tenant exists or not, so a 429 tells
        // a sender no more than a 401 does.
        for tenant in ["busy", "ghost"] {
            let path = format!("/inbound/{tenant}/integration/recorder");
            for _ in 0..TENANT_BUDGET {
                let (status, answer) = h.hook(base, &path, &headers, "{}").await;
                assert_ne!(status, 429, "{mode}: {tenant} limited early: {answer}");
            }
            let (status, problem) = h.hook(base, &path, &headers, "{}").await;
            assert_eq!(
                (status, &problem["code"]),
                (429, &json!("rate_limited")),
                "{mode} {tenant}"
            );
        }
        assert_eq!(h.take_seen().len(), TENANT_BUDGET, "{mode}: busy's calls");

        let url = format!("{base}/inbound/acme/integration/recorder");
        let status = h.http.get(url).send().await.unwrap().status();
        assert_eq!(status, 405, "{mode}");
    }
}
