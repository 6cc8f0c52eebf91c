//! `ai/openai`, engine by engine: against a stub OpenAI-compatible server on loopback (always:
//! request shape, answer mapping, error codes, the key never shown), and against a real
//! OpenAI-compatible server when the tests were built with `SWITCHYARD_TEST_OPENAI_URL` —
//! without it those tests are reported as ignored ("skipped: no OpenAI-compatible server"),
//! see build.rs.

#[path = "support/server.rs"]
mod server;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchyard_provider_ai::OpenAiFactory;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, HealthStatus, ProviderFactory, StartContext, TenantId};
use tokio::net::TcpListener;

const KEY: &str = "sk-test-5ecret-key-0123456789";

/// The engine as an operator who opens loopback (where the stub listens) runs it.
fn factory() -> Arc<OpenAiFactory> {
    Arc::new(
        OpenAiFactory::new().with_egress(&EgressCeiling {
            allowed_networks: ["127.0.0.0/8", "::1/128"]
                .map(|network| network.parse().unwrap())
                .to_vec(),
            allowed_ports: Vec::new(),
        }),
    )
}

/// What the stub saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
}

/// An OpenAI-compatible server that behaves by model name: `echo` answers the last message
/// back, `fail-<status>` answers that status with an OpenAI error whose message quotes the
/// bearer token (as a careless server might), `slow` answers after 2 s. Embeddings come back in
/// reverse order (with their `index`), as the API allows.
struct Stub {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    async fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = shared.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(answer(request, &seen).await) }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Stub { addr, seen }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A tenant of `ai/openai` on this stub with the given models, the key resolved.
    async fn tenant(&self, chat_model: &str, embedding_model: &str) -> TenantInstance {
        Harness::new(factory())
            .tenant_with_config(
                "acme",
                json!({"base_url": self.base_url(), "api_key": KEY, "chat_model": chat_model,
                       "embedding_model": embedding_model, "timeout_ms": 1000}),
            )
            .await
    }
}

async fn answer(request: Request<Incoming>, seen: &Mutex<Vec<Seen>>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock().unwrap().push(Seen {
        path: parts.uri.path().to_owned(),
        authorization: authorization.clone(),
        body: body.clone(),
    });
    let model = body["model"].as_str().unwrap_or_default();
    let (status, answer) = if let Some(status) = model.strip_prefix("fail-") {
        let message = format!(
            "upstream says no; you sent {}",
            authorization.unwrap_or_default()
        );
        (
            status.parse().expect("a status"),
            json!({"error": {"message": message, "type": "error"}}),
        )
    } else if model == "slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
        (200, json!({}))
    } else {
        match parts.uri.path() {
            "/v1/models" => (200, json!({"object": "list", "data": [{"id": "echo"}]})),
            "/v1/chat/completions" => {
                let last = body["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .map(|m| m["content"].clone())
                    .unwrap_or_default();
                (
                    200,
                    json!({
                        "id": "chatcmpl-1", "object": "chat.completion", "model": "echo-2024",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": format!("echo: {}", last.as_str().unwrap_or_default())}}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
                    }),
                )
            }
            "/v1/embeddings" => {
                let texts = body["input"].as_array().cloned().unwrap_or_default();
                let data: Vec<Value> = texts
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, t)| {
                        let len = t.as_str().unwrap_or_default().len() as f64;
                        json!({"object": "embedding", "index": i, "embedding": [len, 1.0, 0.5]})
                    })
                    .collect();
                (
                    200,
                    json!({"object": "list", "model": "embed-2024", "data": data}),
                )
            }
            _ => (404, json!({"error": {"message": "no such route"}})),
        }
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .expect("a response")
}

#[tokio::test]
async fn chat_sends_the_tenants_model_and_key_and_answers_the_first_choice() {
    let stub = Stub::start().await;
    let acme = stub.tenant("echo", "embed").await;
    let answer = acme
        .ok(
            "chat",
            json!({"messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Status of SO-1042?"}],
                   "temperature": 0, "max_tokens": 50}),
        )
        .await;
    assert_eq!(
        answer,
        json!({
            "message": {"role": "assistant", "content": "echo: Status of SO-1042?"},
            "model": "echo-2024", "finish_reason": "stop",
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        })
    );
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(seen.body["model"], "echo");
    assert_eq!(seen.body["max_tokens"], 50);
    assert_eq!(seen.body["messages"][1]["content"], "Status of SO-1042?");
}

#[tokio::test]
async fn embed_answers_in_the_order_of_the_texts_whatever_the_servers_order() {
    let stub = Stub::start().await;
    let acme = stub.tenant("echo", "embed").await;
    let answer = acme.ok("embed", json!({"texts": ["a", "bbb", "cc"]})).await;
    assert_eq!(answer["model"], "embed-2024");
    assert_eq!(answer["dimensions"], 3);
    let firsts: Vec<f64> = answer["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_f64().unwrap())
        .collect();
    assert_eq!(firsts, [1.0, 3.0, 2.0]);
    assert_eq!(stub.seen()[0].body["input"], json!(["a", "bbb", "cc"]));
}

#[tokio::test]
async fn server_errors_map_to_stable_codes_and_never_show_the_key() {
    let stub = Stub::start().await;
    for (model, code, retryable) in [
        ("fail-401", ErrorCode::ProviderUnavailable, false),
        ("fail-403", ErrorCode::ProviderUnavailable, false),
        ("fail-429", ErrorCode::RateLimited, true),
        ("fail-500", ErrorCode::ProviderUnavailable, true),
        ("fail-503", ErrorCode::ProviderUnavailable, true),
        ("fail-400", ErrorCode::ParamsInvalid, false),
    ] {
        let acme = stub.tenant(model, model).await;
        for (action, params) in [
            (
                "chat",
                json!({"messages": [{"role": "user", "content": "hi"}]}),
            ),
            ("embed", json!({"texts": ["hi"]})),
        ] {
            let err = acme.err(action, params).await;
            assert_eq!(err.code, code, "{model} {action}: {err:?}");
            assert_eq!(err.retryable, retryable, "{model} {action}");
            assert!(
                !err.detail.contains(KEY),
                "{model} {action}: {}",
                err.detail
            );
            assert!(!format!("{err:?}").contains("5ecret"), "{model} {action}");
        }
    }
    // The server's words are never quoted, only its status class.
    let err = stub
        .tenant("fail-400", "x")
        .await
        .err(
            "chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert!(!err.detail.contains("upstream says no"), "{}", err.detail);
    assert!(!err.detail.contains("400"), "{}", err.detail);
    assert!(err.detail.contains("4xx"), "{}", err.detail);
}

#[tokio::test]
async fn an_address_the_operator_did_not_open_is_refused_before_anything_is_sent() {
    let stub = Stub::start().await;
    let localhost = format!("http://localhost:{}/v1", stub.addr.port());
    for base_url in [stub.base_url(), localhost] {
        let Err(err) = OpenAiFactory::new()
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"base_url": base_url, "api_key": KEY, "chat_model": "echo"}),
                client: None,
            })
            .await
        else {
            panic!("{base_url} was accepted without the operator opening loopback");
        };
        assert_eq!(err.code, ErrorCode::EgressForbidden, "{err:?}");
        assert_eq!(err.errors[0].pointer, "/base_url");
        assert!(!err.retryable);
        assert!(
            !err.detail.contains("/v1"),
            "the URL is not quoted: {}",
            err.detail
        );
    }
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn a_slow_server_is_a_timeout_and_a_missing_one_is_unavailable() {
    let stub = Stub::start().await;
    let slow = stub.tenant("slow", "slow").await;
    let err = slow
        .err(
            "chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let acme = Harness::new(factory())
        .tenant_with_config("acme", json!({"base_url": gone, "embedding_model": "e"}))
        .await;
    let err = acme.err("embed", json!({"texts": ["hi"]})).await;
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
    assert!(err.retryable);
    assert_eq!(acme.provider.health().await.status, HealthStatus::Down);
}

#[tokio::test]
async fn an_unconfigured_tenant_is_told_what_to_configure() {
    let acme = Harness::new(factory()).tenant("acme").await;
    let err = acme.err("embed", json!({"texts": ["hi"]})).await;
    assert_eq!(err.code, ErrorCode::ProviderNotConfigured);
    assert_eq!(err.code.status(), 409);
    assert!(!err.retryable);
    assert!(err.detail.contains("base_url"), "{}", err.detail);
    assert_eq!(acme.provider.health().await.status, HealthStatus::Down);

    // A configured server without a chat model cannot chat, and says so.
    let stub = Stub::start().await;
    let no_chat = Harness::new(factory())
        .tenant_with_config("acme", json!({"base_url": stub.base_url()}))
        .await;
    let err = no_chat
        .err(
            "chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::ProviderNotConfigured);
    assert!(err.detail.contains("chat_model"), "{}", err.detail);
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn health_asks_the_server_for_its_models() {
    let stub = Stub::start().await;
    let acme = stub.tenant("echo", "embed").await;
    assert_eq!(acme.provider.health().await.status, HealthStatus::Up);
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/v1/models");
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
}

fn real_server() -> Harness {
    Harness::new(factory())
}

#[tokio::test]
#[cfg_attr(
    not(openai_server),
    ignore = "skipped: no OpenAI-compatible server (set SWITCHYARD_TEST_OPENAI_URL)"
)]
async fn a_real_server_chats() {
    let acme = real_server()
        .tenant_with_config("acme", server::config())
        .await;
    let answer = acme
        .ok(
            "chat",
            json!({"messages": [{"role": "user", "content": "Answer with the single word: pong"}],
                   "temperature": 0, "max_tokens": 16}),
        )
        .await;
    assert_eq!(answer["message"]["role"], "assistant");
    assert!(
        !answer["message"]["content"].as_str().unwrap().is_empty(),
        "{answer}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(openai_server),
    ignore = "skipped: no OpenAI-compatible server (set SWITCHYARD_TEST_OPENAI_URL)"
)]
async fn a_real_server_embeds_and_is_healthy() {
    let acme = real_server()
        .tenant_with_config("acme", server::config())
        .await;
    let answer = acme
        .ok(
            "embed",
            json!({"texts": ["invoice overdue", "parcel shipped"]}),
        )
        .await;
    assert_eq!(answer["vectors"].as_array().unwrap().len(), 2);
    assert!(answer["dimensions"].as_u64().unwrap() > 0);
    assert_eq!(acme.provider.health().await.status, HealthStatus::Up);
}
