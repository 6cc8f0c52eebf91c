//! The policy judges what runs (issue 17, point 2): for random content types, bodies and query
//! strings on the routes that carry an envelope or a config, the `resource` the gateway shows
//! the policy is exactly the params a provider receives, or the config `configure` stores — through the runtime as a split deployment reaches
//! it (signed headers, the body read again there) and in process (the gateway's reading handed
//! over, or none when no policy read it) — and a request the gateway refuses before the policy
//! is refused by the runtime with the same code, running nothing.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pingora::http::RequestHeader;
use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_contracts::{ActionDescriptor, ProviderDescriptor, TenantId};
use switchyard_gateway::filters::route::{self, Route};
use switchyard_gateway::policy_resource;
use switchyard_platform_store::internal_auth::{
    BodySeal, CONTEXT_HEADER, InternalKey, SIGNATURE_HEADER, VerifiedContext, unix_now,
};
use switchyard_runtime::http::Service;
use switchyard_runtime::{PlatformStore, Registry, ResilienceConfig, Runtime};
use switchyard_spi::{
    CallContext, Health, Invocation, Provider, ProviderError, ProviderFactory, StartContext,
};

/// What the provider received on its last call.
type Seen = Arc<Mutex<Option<(Value, Option<Bytes>)>>>;

/// `storage/recorder`: its `put` takes raw bytes like every storage engine's, its `get` only
/// an envelope; both accept any params and remember them.
struct Recorder {
    descriptor: ProviderDescriptor,
    seen: Seen,
}

#[async_trait]
impl ProviderFactory for Recorder {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, _ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Recording(self.seen.clone())))
    }
}

struct Recording(Seen);

#[async_trait]
impl Provider for Recording {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        *self.0.lock().unwrap() = Some((call.params, call.payload));
        Ok(json!({}))
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(Vec::new())
    }
}

struct Fixture {
    runtime: Arc<Runtime>,
    service: Service,
    key: InternalKey,
    seen: Seen,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    store.create_tenant(&acme()).await.unwrap();
    let seen = Seen::default();
    let action = |name: &str| ActionDescriptor {
        name: name.into(),
        summary: name.into(),
        params: json!({}),
        result: json!({}),
    };
    let mut registry = Registry::default();
    registry
        .register(Arc::new(Recorder {
            descriptor: ProviderDescriptor {
                domain: "storage".into(),
                name: "recorder".into(),
                version: "1".into(),
                summary: "records its calls".into(),
                capabilities: Vec::new(),
                config_schema: json!({}),
                actions: vec![action("put"), action("get")],
            },
            seen: seen.clone(),
        }))
        .unwrap();
    let runtime = Arc::new(Runtime::new(
        registry,
        store,
        ResilienceConfig::default(),
        Default::default(),
    ));
    let key = InternalKey::load(dir.path()).unwrap();
    Fixture {
        service: Service::new(runtime.clone(), key.clone()),
        runtime,
        key,
        seen,
        _dir: dir,
    }
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// One request as a client sends it.
#[derive(Debug, Clone)]
struct Sent {
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// How the runtime answered and what, if anything, the provider received.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: u16,
    code: Option<String>,
    seen: Option<(Value, Option<Bytes>)>,
}

impl Fixture {
    async fn run(&self, request: http::Request<Full<Bytes>>, trusted: bool) -> Outcome {
        *self.seen.lock().unwrap() = None;
        let trusted = trusted.then(|| CallContext {
            tenant: acme(),
            request_id: "r".into(),
            subject: Some("key:1".into()),
            service: None,
        });
        let request = request.map(|body| body.map_err(|never| match never {}).boxed_unsync());
        let configure = request.uri().path().ends_with("/configure");
        let response = self.service.dispatch(request, trusted).await;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        let seen = if configure && status == 200 {
            let described = self
                .runtime
                .describe(&acme(), "storage", "recorder")
                .await
                .unwrap();
            Some((described["config"]["values"].clone(), None))
        } else {
            self.seen.lock().unwrap().take()
        };
        Outcome { status, code, seen }
    }

    /// As a split deployment's runtime receives it: the context and the body signed.
    fn signed(&self, sent: &Sent) -> http::Request<Full<Bytes>> {
        let context = VerifiedContext {
            tenant: "acme".into(),
            subject: "key:1".into(),
            scopes: "*".into(),
            request_id: "r".into(),
            issued_at: unix_now(),
            body: BodySeal::of(&sent.body),
        };
        let (context, signature) = self.key.sign("POST", &sent.path, &context);
        let mut request = plain(sent);
        let headers = request.headers_mut();
        headers.insert(CONTEXT_HEADER, context.parse().unwrap());
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        request
    }
}

fn plain(sent: &Sent) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::post(&sent.path);
    if let Some(content_type) = &sent.content_type {
        request = request.header("content-type", content_type);
    }
    request
        .body(Full::new(Bytes::from(sent.body.clone())))
        .unwrap()
}

fn header_of(sent: &Sent) -> RequestHeader {
    let mut header = RequestHeader::build("POST", sent.path.as_bytes(), None).unwrap();
    if let Some(content_type) = &sent.content_type {
        header
            .insert_header("content-type", content_type.as_str())
            .unwrap();
    }
    header
}

fn sent() -> impl Strategy<Value = Sent> {
    let action = prop_oneof![Just("put"), Just("get"), Just("configure")];
    let query = prop_oneof![
        Just(String::new()),
        Just("?amount=1".to_owned()),
        "[a-z=&%0-9]{0,12}".prop_map(|q| format!("?{q}")),
    ];
    let content_type = prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "application/json; charset=latin1",
            "application/vnd.acme+json",
            "application/octet-stream",
            "Application/Octet-Stream; x=1",
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=b",
            "application/jsonx",
            ";",
        ])
        .prop_map(|ct| Some(ct.to_owned())),
        "[ -~]{0,24}".prop_map(Some),
    ];
    let params = prop::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,8}".prop_map(Value::from),
        ],
        0..4,
    )
    .prop_map(|m| json!(m));
    let body = prop_oneof![
        Just(Vec::new()),
        params
            .clone()
            .prop_map(|p| serde_json::to_vec(&json!({"params": p})).unwrap()),
        params.clone().prop_map(|p| {
            serde_json::to_vec(&json!({"params": p, "metadata": {"m": 1}})).unwrap()
        }),
        params.prop_map(|p| serde_json::to_vec(&json!({"config": p})).unwrap()),
        prop::collection::vec(any::<u8>(), 0..48),
        Just(br#"{"params": {"amount": 1}, "params": {"amount": 50000}}"#.to_vec()),
        Just(br#"{"params": {"amount": 1, "amount": 50000}}"#.to_vec()),
        Just(br#"{"params": 5}"#.to_vec()),
    ];
    (action, query, content_type, body).prop_map(|(action, query, content_type, body)| Sent {
        path: format!("/providers/storage/recorder/{action}{query}"),
        content_type,
        body,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_policy_sees_exactly_what_the_provider_receives(sents in prop::collection::vec(sent(), 1..6)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let fixture = fixture().await;
            for sent in sents {
                let header = header_of(&sent);
                let route = route::classify(&header.method, header.uri.path()).unwrap();
                let expected = if sent.path.contains("/configure") { Route::Admin } else { Route::Invoke };
                prop_assert_eq!(route, expected);
                let judged = policy_resource(&header, route, &sent.body);
                let split = fixture.run(fixture.signed(&sent), false).await;
                let mut handed = plain(&sent);
                if let Ok((_, Some(executed))) = &judged {
                    handed.extensions_mut().insert(executed.clone());
                }
                let in_process = fixture.run(handed, true).await;
                let unjudged = fixture.run(plain(&sent), true).await;
                prop_assert_eq!(&split, &in_process, "{:?}", sent);
                prop_assert_eq!(&split, &unjudged, "{:?}", sent);
                match judged {
                    Ok((resource, _)) => {
                        let (params, payload) = split.seen.clone().expect("the call ran");
                        prop_assert_eq!(&params, &resource, "{:?}", sent);
                        let raw = payload.is_some();
                        prop_assert_eq!(payload, raw.then(|| Bytes::from(sent.body.clone())));
                    }
                    Err(problem) => {
                        prop_assert_eq!(split.status, problem.status(), "{:?}", sent);
                        prop_assert_eq!(split.code.as_deref(), Some(problem.code.as_str()));
                        prop_assert!(split.seen.is_none());
                    }
                }
            }
            Ok(())
        })?;
    }
}
