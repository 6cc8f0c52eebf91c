//! `Api` against a real HTTP server started in the test (hyper on 127.0.0.1:0): an API that
//! answers what each test scripts, and an OAuth2 token endpoint that issues, rotates,
//! expires and refuses tokens.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use switchyard_egress::Egress;
use switchyard_spi::ErrorCode;
use switchyard_spi::tenancy::EgressCeiling;
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::*;

/// One request the server received.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    authorization: Option<String>,
    /// Form fields of a token request.
    form: BTreeMap<String, String>,
    at: Instant,
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

type Handler = dyn Fn(&Hit, usize) -> Reply + Send + Sync;

/// A server answering with `handler(request, how many came before it)`.
struct Server {
    base: Url,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Server {
    async fn start(handler: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = hits.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (handler, seen) = (handler.clone(), seen.clone());
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (handler, seen) = (handler.clone(), seen.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let hit = Hit {
                            path: parts.uri.path().to_owned(),
                            authorization: parts
                                .headers
                                .get("authorization")
                                .map(|v| v.to_str().unwrap().to_owned()),
                            form: form_urlencoded::parse(&body).into_owned().collect(),
                            at: Instant::now(),
                        };
                        let before = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(hit.clone());
                            seen.len() - 1
                        };
                        let reply = handler(&hit, before);
                        tokio::time::sleep(reply.delay).await;
                        let mut response = hyper::Response::builder().status(reply.status);
                        for (name, value) in reply.headers {
                            response = response.header(name, value);
                        }
                        Ok::<_, Infallible>(
                            response.body(Full::new(Bytes::from(reply.body))).unwrap(),
                        )
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { base, hits }
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.hits.lock().unwrap();
        hits.iter()
            .filter(|hit| hit.path == path)
            .cloned()
            .collect()
    }
}

/// The test servers are on loopback, which the guard refuses unless the operator opens it.
fn loopback() -> Egress {
    Egress::new(&EgressCeiling {
        allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        allowed_ports: Vec::new(),
    })
}

fn api(auth: Auth) -> Api {
    Api::new("acme-crm", loopback(), auth).unwrap()
}

impl Api {
    fn retrying(mut self, retries: Retries) -> Api {
        self.retries = retries;
        self
    }
}

fn key() -> Auth {
    Auth::Header {
        name: "x-api-key".to_owned(),
        value: Secret("key-SECRET".to_owned()),
    }
}

#[tokio::test]
async fn a_429_is_replayed_after_its_retry_after() {
    let server = Server::start(|_, n| match n {
        0 => Reply::json(429, json!({"errors": "Exceeded 2 calls per second"}))
            .with("retry-after", "1.0"),
        _ => Reply::json(200, json!({"orders": []})),
    })
    .await;
    let api = api(key());
    let response = api
        .send(Method::GET, server.url("orders.json"), None)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, json!({"orders": []}));
    let hits = server.hits("/orders.json");
    assert_eq!(hits.len(), 2);
    let waited = hits[1].at - hits[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "replayed after {waited:?}"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_budget_fails_at_once_and_holds_the_connection() {
    let server = Server::start(|_, _| {
        Reply::json(429, json!({"errors": "slow down"})).with("retry-after", "3600")
    })
    .await;
    let api = api(key());
    let error = api
        .send(Method::GET, server.url("orders.json"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RateLimited);
    assert!(error.retryable);
    assert!(error.detail.contains("3600 s"), "{}", error.detail);
    // The pause holds the connection's next call too: it never reaches the system.
    let error = api
        .send(Method::GET, server.url("orders.json"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RateLimited);
    assert_eq!(server.hits("/orders.json").len(), 1);
}

#[tokio::test]
async fn a_503_then_200_is_retried() {
    let server = Server::start(|_, n| match n {
        0 => Reply::json(503, json!({})),
        _ => Reply::json(200, json!({"ok": true})),
    })
    .await;
    let api = api(key());
    let response = api
        .send(Method::GET, server.url("check"), None)
        .await
        .unwrap();
    assert_eq!(response.body, json!({"ok": true}));
    assert_eq!(server.hits("/check").len(), 2);
}

#[tokio::test]
async fn a_post_that_may_have_reached_the_system_is_retried_only_when_replay_safe() {
    let server = Server::start(|_, _| Reply::json(500, json!({}))).await;
    let api = api(key()).retrying(Retries {
        attempts: 3,
        total: Duration::from_secs(10),
    });
    let body = json!({"email": "a@example.com"});
    let error = api
        .send(Method::POST, server.url("customers"), Some(&body))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UpstreamUnavailable);
    assert_eq!(server.hits("/customers").len(), 1, "a POST is not replayed");
    let error = api
        .call(Method::POST, server.url("customers"))
        .json(&body)
        .replay_safe()
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UpstreamUnavailable);
    assert_eq!(server.hits("/customers").len(), 4, "then three attempts");
}

#[tokio::test]
async fn a_post_the_system_did_not_process_is_retried() {
    let server = Server::start(|_, n| match n {
        0 => Reply::json(503, json!({})).with("retry-after", "0"),
        _ => Reply::json(201, json!({"id": 7})),
    })
    .await;
    let body = json!({"email": "a@example.com"});
    let response = api(key())
        .send(Method::POST, server.url("customers"), Some(&body))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(server.hits("/customers").len(), 2);
}

#[tokio::test]
async fn a_connectors_classify_hook_reads_a_403_as_a_rate_limit() {
    fn salesforce(status: StatusCode, body: &Value) -> Option<Verdict> {
        (status == StatusCode::FORBIDDEN && body[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED")
            .then_some(Verdict::RateLimited)
    }
    let server = Server::start(|_, n| match n {
        0 => Reply::json(
            403,
            json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
        ),
        _ => Reply::json(200, json!({"done": true})),
    })
    .await;
    let api = api(key()).with_classify(salesforce);
    let response = api
        .send(Method::GET, server.url("query"), None)
        .await
        .unwrap();
    assert_eq!(response.body, json!({"done": true}));
    assert_eq!(server.hits("/query").len(), 2);
}

#[tokio::test]
async fn usage_near_the_top_holds_the_next_call() {
    fn shopify(headers: &Headers) -> Option<Usage> {
        Usage::fraction(headers.get("x-shopify-shop-api-call-limit")?)
    }
    let server = Server::start(|_, _| {
        Reply::json(200, json!({})).with("x-shopify-shop-api-call-limit", "39/40")
    })
    .await;
    // A bucket draining one call a second: at 39 of 40 the next call would wait about 8 s,
    // past a budget of 2 s, so it fails at once instead of running into a 429.
    let api = api(key())
        .with_rate_headers(RateHeaders {
            read: shopify,
            refill_per_second: 1.0,
        })
        .retrying(Retries {
            attempts: 5,
            total: Duration::from_secs(2),
        });
    api.send(Method::GET, server.url("orders.json"), None)
        .await
        .unwrap();
    let error = api
        .send(Method::GET, server.url("orders.json"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::RateLimited);
    assert_eq!(server.hits("/orders.json").len(), 1);
}

#[tokio::test]
async fn a_refused_fixed_credential_is_upstream_credentials_invalid() {
    let server = Server::start(|_, _| Reply::json(401, json!({"errors": "Invalid API key"}))).await;
    let error = api(key())
        .send(Method::GET, server.url("shop.json"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    assert!(!error.retryable);
    assert_eq!(server.hits("/shop.json").len(), 1);
    assert_eq!(
        server.hits("/shop.json")[0].authorization,
        None,
        "the key went in its own header"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = Server::start(|hit, _| match hit.path.as_str() {
        "/moved" => Reply::json(302, json!({})).with("location", "/elsewhere"),
        _ => Reply::json(200, json!({})),
    })
    .await;
    let error = api(key())
        .send(Method::GET, server.url("moved"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ProviderFailed);
    assert!(server.hits("/elsewhere").is_empty());
}

#[tokio::test]
async fn the_egress_guard_refuses_a_private_address() {
    let server = Server::start(|_, _| Reply::json(200, json!({}))).await;
    let api = Api::new("acme-crm", Egress::default(), key()).unwrap();
    let error = api
        .send(Method::GET, server.url("orders.json"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::EgressForbidden);
    assert!(server.hits("/orders.json").is_empty());
}

#[tokio::test]
async fn no_url_query_header_value_or_token_reaches_an_error_or_debug() {
    let server = Server::start(|_, _| Reply::json(500, json!({}))).await;
    let mut url = server.url("orders.json");
    url.set_query(Some("api_key=query-SECRET"));
    let api = api(key()).retrying(Retries {
        attempts: 1,
        total: Duration::from_secs(5),
    });
    let answered = api.send(Method::GET, url.clone(), None).await.unwrap_err();
    // A port nothing listens on: the transport error, not an answer.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    url.set_port(Some(listener.local_addr().unwrap().port()))
        .unwrap();
    drop(listener);
    let unreachable = api.send(Method::GET, url, None).await.unwrap_err();
    assert_eq!(unreachable.code, ErrorCode::UpstreamUnavailable);
    let oauth = Auth::OAuth2 {
        grant: grant(
            &server,
            Grant::RefreshToken(Secret("refresh-SECRET".to_owned())),
        ),
        tokens: Tokens::in_memory("acme/crm"),
    };
    let token = Token {
        access_token: Secret("access-SECRET".to_owned()),
        refresh_token: Some(Secret("refresh-SECRET".to_owned())),
        obtained_at: 0,
        expires_at: None,
        instance_url: None,
        origin: String::new(),
    };
    for text in [
        answered.to_string(),
        format!("{answered:?}"),
        unreachable.to_string(),
        format!("{unreachable:?}"),
        format!("{:?}", key()),
        format!("{oauth:?}"),
        format!("{token:?}"),
    ] {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("api_key"), "{text}");
    }
}

/// A token endpoint at `/token` (RFC 6749 section 5), and an API at `/api` that accepts
/// only the access token issued last.
#[derive(Default)]
struct Authority {
    issued: u32,
    /// The access token the API accepts.
    valid: Option<String>,
    /// The refresh token the endpoint accepts; rotated with every refresh.
    refresh: String,
    /// Refuse every token request (`invalid_grant`).
    refuse: bool,
    /// The API refuses every access token (a user without API access).
    api_refuses: bool,
    expires_in: Option<u64>,
    token_delay: Duration,
}

impl Authority {
    fn answer(&mut self, hit: &Hit) -> Reply {
        match hit.path.as_str() {
            "/token" => self.token(hit),
            _ if !self.api_refuses
                && hit.authorization.as_deref()
                    == self
                        .valid
                        .as_ref()
                        .map(|t| format!("Bearer {t}"))
                        .as_deref() =>
            {
                Reply::json(200, json!({"ok": true}))
            }
            _ => Reply::json(
                401,
                json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
            ),
        }
    }

    fn token(&mut self, hit: &Hit) -> Reply {
        let form = &hit.form;
        let accepted = !self.refuse
            && match form.get("grant_type").map(String::as_str) {
                Some("refresh_token") => form.get("refresh_token") == Some(&self.refresh),
                Some("client_credentials") => true,
                _ => false,
            };
        if !accepted {
            // Some servers echo what they refused; none of it may reach an error.
            let echoed = form.get("refresh_token").cloned().unwrap_or_default();
            return Reply::json(
                400,
                json!({"error": "invalid_grant", "error_description": format!("expired token {echoed}")}),
            );
        }
        self.issued += 1;
        let access = format!("access-{}", self.issued);
        self.valid = Some(access.clone());
        self.refresh = format!("refresh-{}", self.issued);
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "refresh_token": self.refresh,
            "instance_url": "https://acme.my.example.com",
        });
        if let Some(expires_in) = self.expires_in {
            body["expires_in"] = json!(expires_in);
        }
        let mut reply = Reply::json(200, body);
        reply.delay = self.token_delay;
        reply
    }
}

async fn authority(authority: Authority) -> (Server, Arc<Mutex<Authority>>) {
    let shared = Arc::new(Mutex::new(authority));
    let state = shared.clone();
    let server = Server::start(move |hit, _| state.lock().unwrap().answer(hit)).await;
    (server, shared)
}

fn grant(server: &Server, grant: Grant) -> OAuth2 {
    OAuth2 {
        token_url: server.url("token"),
        client_id: "switchyard".to_owned(),
        client_secret: Some(Secret("client-SECRET".to_owned())),
        grant,
        scopes: Vec::new(),
        credentials_in_body: true,
    }
}

/// A token kept from an earlier process, obtained `age` seconds ago, living `lifetime`.
fn kept(grant: &OAuth2, access: &str, refresh: &str, age: u64, lifetime: Option<u64>) -> Token {
    let obtained_at = tokens::unix_now() - age;
    Token {
        access_token: Secret(access.to_owned()),
        refresh_token: Some(Secret(refresh.to_owned())),
        obtained_at,
        expires_at: lifetime.map(|lifetime| obtained_at + lifetime),
        instance_url: None,
        origin: grant.origin(),
    }
}

async fn oauth_api(
    grant: OAuth2,
    store: Arc<MemoryTokenStore>,
) -> (Api, Arc<Mutex<Vec<AuthFailed>>>) {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let heard = failures.clone();
    let tokens = Tokens::new("acme/crm", store, move |failed| {
        heard.lock().unwrap().push(failed)
    });
    (api(Auth::OAuth2 { grant, tokens }), failures)
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_then_succeeds_and_keeps_the_rotated_refresh_token() {
    let (server, state) = authority(Authority {
        refresh: "rotated-7".to_owned(),
        expires_in: Some(3600),
        ..Authority::default()
    })
    .await;
    // The config's refresh token was rotated away in an earlier process; the store has
    // the newest one, and an access token the system no longer accepts.
    let grant = grant(
        &server,
        Grant::RefreshToken(Secret("refresh-config".to_owned())),
    );
    let store = Arc::new(MemoryTokenStore::default());
    store
        .save(
            "acme/crm",
            &kept(&grant, "access-old", "rotated-7", 60, Some(3600)),
        )
        .await
        .unwrap();
    let (api, failures) = oauth_api(grant, store.clone()).await;
    let response = api
        .send(Method::GET, server.url("api"), None)
        .await
        .unwrap();
    assert_eq!(response.body, json!({"ok": true}));
    let calls: Vec<_> = server
        .hits("/api")
        .into_iter()
        .map(|h| h.authorization)
        .collect();
    assert_eq!(
        calls,
        [
            Some("Bearer access-old".to_owned()),
            Some("Bearer access-1".to_owned())
        ]
    );
    let refreshes = server.hits("/token");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].form["grant_type"], "refresh_token");
    assert_eq!(refreshes[0].form["refresh_token"], "rotated-7");
    assert_eq!(refreshes[0].form["client_id"], "switchyard");
    let now_kept = store.load("acme/crm").await.unwrap().unwrap();
    assert_eq!(now_kept.refresh_token, Some(Secret("refresh-1".to_owned())));
    assert_eq!(state.lock().unwrap().refresh, "refresh-1");
    assert_eq!(
        api.instance_url().await.unwrap().as_deref(),
        Some("https://acme.my.example.com")
    );
    assert_eq!(
        server.hits("/token").len(),
        1,
        "the current token's instance"
    );
    assert!(failures.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_token_refused_again_after_its_refresh_is_upstream_credentials_invalid() {
    let (server, state) = authority(Authority::default()).await;
    let (api, _) = oauth_api(
        grant(&server, Grant::ClientCredentials),
        Arc::new(MemoryTokenStore::default()),
    )
    .await;
    api.send(Method::GET, server.url("api"), None)
        .await
        .unwrap();
    state.lock().unwrap().api_refuses = true;
    let error = api
        .send(Method::GET, server.url("api"), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    assert_eq!(
        server.hits("/token").len(),
        2,
        "one refresh per call, not more"
    );
    assert_eq!(server.hits("/api").len(), 3);
}

#[tokio::test]
async fn a_refused_refresh_is_reported_and_fails_the_call_without_leaking_the_token() {
    let (server, _) = authority(Authority {
        refuse: true,
        ..Authority::default()
    })
    .await;
    let (api, failures) = oauth_api(
        grant(
            &server,
            Grant::RefreshToken(Secret("refresh-SECRET".to_owned())),
        ),
        Arc::new(MemoryTokenStore::default()),
    )
    .await;
    for _ in 0..2 {
        let error = api
            .send(Method::GET, server.url("api"), None)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
        assert!(!error.retryable);
        assert!(error.detail.contains("invalid_grant"), "{}", error.detail);
        assert!(!format!("{error:?}").contains("SECRET"), "{error:?}");
    }
    assert_eq!(
        *failures.lock().unwrap(),
        [AuthFailed {
            connection: "acme/crm".to_owned(),
            reason: "invalid_grant".to_owned(),
        }],
        "reported once, not once per call"
    );
    assert_eq!(server.hits("/token").len(), 2);
    assert!(
        server.hits("/api").is_empty(),
        "no call went out without a token"
    );
}

#[tokio::test]
async fn a_token_near_its_expiry_is_refreshed_before_the_call() {
    let (server, state) = authority(Authority {
        refresh: "refresh-0".to_owned(),
        expires_in: Some(3600),
        ..Authority::default()
    })
    .await;
    let grant = grant(&server, Grant::RefreshToken(Secret("refresh-0".to_owned())));
    let store = Arc::new(MemoryTokenStore::default());
    // 30 s left of an hour: inside the 60 s margin, and the system still accepts it.
    store
        .save(
            "acme/crm",
            &kept(&grant, "access-0", "refresh-0", 3570, Some(3600)),
        )
        .await
        .unwrap();
    state.lock().unwrap().valid = Some("access-0".to_owned());
    let (api, _) = oauth_api(grant.clone(), store.clone()).await;
    api.send(Method::GET, server.url("api"), None)
        .await
        .unwrap();
    assert_eq!(server.hits("/token").len(), 1);
    let calls: Vec<_> = server
        .hits("/api")
        .into_iter()
        .map(|h| h.authorization)
        .collect();
    assert_eq!(calls, [Some("Bearer access-1".to_owned())], "no 401 first");

    // A token with most of its life left is used as it is.
    store
        .save(
            "acme/crm",
            &kept(&grant, "access-1", "refresh-1", 60, Some(3600)),
        )
        .await
        .unwrap();
    let (api, _) = oauth_api(grant, store).await;
    api.send(Method::GET, server.url("api"), None)
        .await
        .unwrap();
    assert_eq!(server.hits("/token").len(), 1);
}

#[tokio::test]
async fn a_kept_token_of_other_credentials_is_not_used() {
    let (server, _) = authority(Authority::default()).await;
    let old = grant(
        &server,
        Grant::RefreshToken(Secret("refresh-old".to_owned())),
    );
    let store = Arc::new(MemoryTokenStore::default());
    store
        .save(
            "acme/crm",
            &kept(&old, "access-old", "refresh-old", 60, None),
        )
        .await
        .unwrap();
    // The tenant authorized again: its config now holds other credentials.
    let tokens = Tokens::new("acme/crm", store, |_| {});
    let first = api(Auth::OAuth2 {
        grant: grant(&server, Grant::ClientCredentials),
        tokens: tokens.clone(),
    });
    first
        .send(Method::GET, server.url("api"), None)
        .await
        .unwrap();
    // The same handle, kept across one more change of credentials (a hot swap).
    let second = api(Auth::OAuth2 {
        grant: grant(&server, Grant::RefreshToken(Secret("refresh-1".to_owned()))),
        tokens,
    });
    second
        .send(Method::GET, server.url("api"), None)
        .await
        .unwrap();
    let calls: Vec<_> = server
        .hits("/api")
        .into_iter()
        .map(|h| h.authorization)
        .collect();
    assert_eq!(
        calls,
        [
            Some("Bearer access-1".to_owned()),
            Some("Bearer access-2".to_owned())
        ]
    );
    assert_eq!(server.hits("/token")[1].form["refresh_token"], "refresh-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_refresh() {
    let (server, _) = authority(Authority {
        token_delay: Duration::from_millis(200),
        ..Authority::default()
    })
    .await;
    let grant = grant(&server, Grant::ClientCredentials);
    let store = Arc::new(MemoryTokenStore::default());
    // Sixteen calls with no token yet, then sixteen whose token the system refuses.
    for round in 1..=2 {
        let (api, _) = oauth_api(grant.clone(), store.clone()).await;
        let api = Arc::new(api);
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (api, url) = (api.clone(), server.url("api"));
            calls.spawn(async move { api.send(Method::GET, url, None).await.map(|r| r.status) });
        }
        while let Some(status) = calls.join_next().await {
            assert_eq!(status.unwrap().unwrap(), StatusCode::OK);
        }
        assert_eq!(
            server.hits("/token").len(),
            round,
            "one refresh in round {round}"
        );
        // The next round's token, kept in the store, is refused by the system.
        store
            .save(
                "acme/crm",
                &kept(&grant, "access-revoked", "refresh", 60, None),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_new_connection_learns_where_its_api_lives_from_its_first_token() {
    let (server, _) = authority(Authority::default()).await;
    let (oauth, _) = oauth_api(
        grant(&server, Grant::ClientCredentials),
        Arc::new(MemoryTokenStore::default()),
    )
    .await;
    assert_eq!(
        oauth.instance_url().await.unwrap().as_deref(),
        Some("https://acme.my.example.com")
    );
    assert_eq!(server.hits("/token").len(), 1);
    assert_eq!(api(key()).instance_url().await.unwrap(), None);
}

#[tokio::test]
async fn a_refusal_of_other_credentials_on_the_same_handle_is_reported_again() {
    let (server, _) = authority(Authority {
        refuse: true,
        ..Authority::default()
    })
    .await;
    let failures = Arc::new(Mutex::new(Vec::new()));
    let heard = failures.clone();
    let tokens = Tokens::new(
        "acme/crm",
        Arc::new(MemoryTokenStore::default()),
        move |f| heard.lock().unwrap().push(f),
    );
    for refresh in ["refresh-a", "refresh-a", "refresh-b"] {
        let grant = grant(&server, Grant::RefreshToken(Secret(refresh.to_owned())));
        let oauth = api(Auth::OAuth2 {
            grant,
            tokens: tokens.clone(),
        });
        let error = oauth
            .send(Method::GET, server.url("api"), None)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    }
    assert_eq!(failures.lock().unwrap().len(), 2, "once for a, once for b");
}
