//! `ai/openai`, engine by engine: against a stub OpenAI-compatible server on loopback (always:
//! request shape, answer mapping, error codes, the key never shown), against the fake
//! upstream (switchyard-ai-fakes: streaming, its faults, the model a call names), against a
//! server that streams what the test hands it when it hands it, and against a real
//! OpenAI-compatible server when the tests were built with `SWITCHYARD_TEST_OPENAI_URL` —
//! without it those tests are reported as ignored ("skipped: no OpenAI-compatible server"),
//! see build.rs.

#[path = "support/server.rs"]
mod server;
#[path = "support/stream.rs"]
mod stream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchyard_ai_fakes::{FakeAi, FakeAiSettings};
use switchyard_provider_ai::OpenAiFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, HealthStatus, ProviderFactory, StartContext, TenantId};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const KEY: &str = "sk-test-5ecret-key-0123456789";

/// The engine as an operator who opens loopback (where the stub listens) runs it.
fn factory() -> Arc<OpenAiFactory> {
    Arc::new(OpenAiFactory::new().with_egress(&stream::loopback()))
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

/// The fake upstream, taking only [`KEY`], and a tenant of `ai/openai` on it whose chat model
/// is `chat_model` (faults are asked for by model name, see switchyard-ai-fakes).
async fn fake_tenant(chat_model: &str) -> (FakeAi, TenantInstance) {
    let fake = FakeAi::start(FakeAiSettings {
        api_key: Some(KEY.into()),
        ..FakeAiSettings::default()
    })
    .await;
    let tenant = Harness::new(factory())
        .tenant_with_config(
            "acme",
            json!({"base_url": format!("{}/v1", fake.base_url()), "api_key": KEY,
                   "chat_model": chat_model, "embedding_model": "fake-embed", "timeout_ms": 1000}),
        )
        .await;
    (fake, tenant)
}

fn hello() -> Value {
    json!({"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "where is my parcel"}]})
}

#[tokio::test]
async fn a_fake_streamed_chat_arrives_in_pieces_in_order_and_the_last_carries_usage() {
    let (fake, acme) = fake_tenant("gpt-fake").await;
    let (deltas, last) = stream::chat(&acme, hello()).await;
    assert_eq!(deltas.len(), 5, "one piece per word: {deltas:?}");
    assert_eq!(deltas.concat(), "echo: where is my parcel");
    assert_eq!(
        last,
        json!({"delta": "", "finish_reason": "stop", "model": "gpt-fake",
               "usage": {"prompt_tokens": 6, "completion_tokens": 5, "total_tokens": 11}})
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent.headers["authorization"], format!("Bearer {KEY}"));

    // Cut short by max_tokens: the last chunk says so.
    let mut short = hello();
    short["max_tokens"] = json!(2);
    let (deltas, last) = stream::chat(&acme, short).await;
    assert_eq!(deltas.concat(), "echo: where");
    assert_eq!(last["finish_reason"], "length");
    assert_eq!(last["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn a_fake_429_before_the_stream_is_the_error_of_the_call_itself() {
    for (model, code, retryable) in [
        ("gpt-fake-429", ErrorCode::RateLimited, true),
        ("gpt-fake-503", ErrorCode::ProviderUnavailable, true),
    ] {
        let (fake, acme) = fake_tenant(model).await;
        let Err(err) = stream::open(&acme, "chat", hello()).await else {
            panic!("{model}: a stream opened");
        };
        assert_eq!(
            (err.code, err.retryable),
            (code, retryable),
            "{model}: {err:?}"
        );
        assert!(
            !err.detail.contains(KEY) && !err.detail.contains("Rate limit"),
            "{}",
            err.detail
        );
        assert_eq!(fake.calls(), 1);
    }
}

#[tokio::test]
async fn a_fake_stream_cut_mid_answer_ends_in_an_error_item() {
    let (_fake, acme) = fake_tenant("gpt-fake-cut").await;
    let stream = stream::open(&acme, "chat", hello())
        .await
        .expect("the first pieces arrived, so the stream opens");
    let items = stream::items(stream).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &json!({"delta": "echo:"}));
    assert_eq!(items[1].as_ref().unwrap(), &json!({"delta": " where"}));
    let err = items[2].as_ref().unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
    assert!(err.retryable);
    assert_eq!(err.detail, "the AI server's stream broke off");
}

#[tokio::test]
async fn a_slow_fake_is_a_timeout_before_the_first_piece() {
    let (_fake, acme) = fake_tenant("gpt-fake-slow").await;
    let Err(err) = stream::open(&acme, "chat", hello()).await else {
        panic!("a stream opened past the timeout");
    };
    assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
}

#[tokio::test]
async fn the_model_a_call_names_overrides_the_configured_one_at_the_fake() {
    let (fake, acme) = fake_tenant("gpt-configured").await;
    let mut params = hello();
    params["model"] = json!("gpt-named");
    assert_eq!(acme.ok("chat", params.clone()).await["model"], "gpt-named");
    let (_, last) = stream::chat(&acme, params).await;
    assert_eq!(last["model"], "gpt-named");
    assert_eq!(acme.ok("chat", hello()).await["model"], "gpt-configured");
    let embedded = acme
        .ok("embed", json!({"texts": ["a b"], "model": "embed-named"}))
        .await;
    assert_eq!(embedded["model"], "embed-named");
    assert_eq!(embedded["dimensions"], 8);
    acme.ok("embed", json!({"texts": ["a b"]})).await;
    let models: Vec<Value> = fake
        .requests()
        .iter()
        .map(|r| r.body["model"].clone())
        .collect();
    assert_eq!(
        models,
        [
            "gpt-named",
            "gpt-named",
            "gpt-configured",
            "embed-named",
            "fake-embed"
        ]
    );

    // A tenant without models configured can still be told one by the call.
    let bare = Harness::new(factory())
        .tenant_with_config(
            "acme",
            json!({"base_url": format!("{}/v1", fake.base_url()), "api_key": KEY}),
        )
        .await;
    assert_eq!(
        bare.err("chat", hello()).await.code,
        ErrorCode::ProviderNotConfigured
    );
    let mut named = hello();
    named["model"] = json!("gpt-named");
    assert_eq!(
        bare.ok("chat", named).await["message"]["content"],
        "echo: where is my parcel"
    );
    let Err(err) = stream::open(&bare, "chat", hello()).await else {
        panic!("streamed without a model");
    };
    assert_eq!(err.code, ErrorCode::ProviderNotConfigured);
}

#[tokio::test]
async fn only_chat_streams_from_the_fake_and_an_unconfigured_tenant_cannot_stream() {
    let (_fake, acme) = fake_tenant("gpt-fake").await;
    let Err(err) = stream::open(&acme, "embed", json!({"texts": ["a"]})).await else {
        panic!("embed streamed");
    };
    assert_eq!(err.code, ErrorCode::ActionNotFound);
    let unconfigured = Harness::new(factory()).tenant("acme").await;
    let Err(err) = stream::open(&unconfigured, "chat", hello()).await else {
        panic!("an unconfigured tenant streamed");
    };
    assert_eq!(err.code, ErrorCode::ProviderNotConfigured);
}

/// A server that answers one streamed chat with the bytes the test sends it, when it sends
/// them: what the engine passes on before the server sends more was not held back.
struct Held {
    base_url: String,
    send: mpsc::UnboundedSender<Bytes>,
}

impl Held {
    async fn start() -> Held {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let (send, receive) = mpsc::unbounded_channel::<Bytes>();
        let receive = Arc::new(Mutex::new(Some(receive)));
        tokio::spawn(async move {
            let (connection, _) = listener.accept().await.unwrap();
            let service = service_fn(move |_request: Request<Incoming>| {
                let receive = receive.lock().unwrap().take().expect("one request");
                let frames = futures_util::stream::unfold(receive, |mut receive| async move {
                    let bytes = receive.recv().await?;
                    Some((Ok::<_, Infallible>(Frame::data(bytes)), receive))
                });
                async move {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(StreamBody::new(frames))
                            .unwrap(),
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(connection), service)
                .await;
        });
        Held { base_url, send }
    }

    fn chunk(&self, chunk: Value) {
        self.send
            .send(Bytes::from(format!("data: {chunk}\n\n")))
            .unwrap();
    }

    async fn tenant(&self) -> TenantInstance {
        Harness::new(factory())
            .tenant_with_config(
                "acme",
                json!({"base_url": self.base_url, "chat_model": "held", "timeout_ms": 5000}),
            )
            .await
    }
}

fn content(text: &str) -> Value {
    json!({"object": "chat.completion.chunk", "model": "held-1",
           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
}

/// How long a piece the server has not sent yet is waited for: long enough that one sent
/// would have arrived.
const NOTHING_YET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn each_streamed_piece_is_passed_on_before_the_server_sends_the_next() {
    let held = Held::start().await;
    let acme = held.tenant().await;
    held.chunk(json!({"object": "chat.completion.chunk", "model": "held-1",
                      "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}));
    held.chunk(content("Hello"));
    let mut stream = stream::open(&acme, "chat", hello()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        json!({"delta": "Hello"})
    );
    assert!(
        tokio::time::timeout(NOTHING_YET, stream.next())
            .await
            .is_err(),
        "an item came that the server never sent"
    );
    held.chunk(content(" world"));
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        json!({"delta": " world"})
    );
    held.chunk(json!({"object": "chat.completion.chunk", "model": "held-1",
                      "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    held.chunk(
        json!({"object": "chat.completion.chunk", "model": "held-1", "choices": [],
                      "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}),
    );
    held.send
        .send(Bytes::from_static(b"data: [DONE]\n\n"))
        .unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        json!({"delta": "", "finish_reason": "stop", "model": "held-1",
               "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}})
    );
    assert!(
        stream.next().await.is_none(),
        "nothing after the last chunk"
    );
}

#[tokio::test]
async fn an_unreadable_event_after_the_first_piece_is_an_error_item() {
    for bad in [
        "data: {not json\n\n",
        "data: {\"error\": {\"message\": \"sk-leak\"}}\n\n",
    ] {
        let held = Held::start().await;
        let acme = held.tenant().await;
        held.chunk(content("Hello"));
        let mut stream = stream::open(&acme, "chat", hello()).await.unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            json!({"delta": "Hello"})
        );
        held.send.send(Bytes::from(bad)).unwrap();
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{bad}: {err:?}");
        assert_eq!(err.detail, "the AI server's stream broke off");
        assert!(stream.next().await.is_none(), "the error ends the stream");
    }
}
