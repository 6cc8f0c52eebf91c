//! `ai/anthropic` against the fake upstream (switchyard-ai-fakes, which speaks the Messages
//! API and fails by model name): the request it makes of the domain's chat, the answer it
//! makes of Anthropic's, streaming, error codes, an unconfigured tenant, egress.

#[path = "support/stream.rs"]
mod stream;

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_ai_fakes::{FakeAi, FakeAiSettings};
use switchyard_provider_ai::AnthropicFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, HealthStatus, ProviderFactory, StartContext, TenantId};

const KEY: &str = "sk-ant-test-5ecret-key-0123456789";

fn factory() -> Arc<AnthropicFactory> {
    Arc::new(AnthropicFactory::new().with_egress(&stream::loopback()))
}

/// The fake, taking only [`KEY`].
async fn fake() -> FakeAi {
    FakeAi::start(FakeAiSettings {
        api_key: Some(KEY.into()),
        ..FakeAiSettings::default()
    })
    .await
}

/// A tenant of `ai/anthropic` on `fake` with `config` over the fake's address and key.
async fn tenant(fake: &FakeAi, config: Value) -> TenantInstance {
    let mut full = json!({"base_url": fake.base_url(), "api_key": KEY, "timeout_ms": 1000});
    full.as_object_mut()
        .unwrap()
        .extend(config.as_object().unwrap().clone());
    Harness::new(factory())
        .tenant_with_config("acme", full)
        .await
}

async fn fake_tenant(chat_model: &str) -> (FakeAi, TenantInstance) {
    let fake = fake().await;
    let tenant = tenant(&fake, json!({"chat_model": chat_model})).await;
    (fake, tenant)
}

/// System messages before and among the turns.
fn conversation() -> Value {
    json!({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "hi"},
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "status of SO-1042?"}
    ]})
}

#[tokio::test]
async fn fake_chat_puts_the_system_messages_on_top_and_maps_the_answer_and_usage() {
    let (fake, acme) = fake_tenant("claude-fake").await;
    let answer = acme.ok("chat", conversation()).await;
    // Prompt: 5 words of system, 6 of turns; the answer is 4 words.
    assert_eq!(
        answer,
        json!({"message": {"role": "assistant", "content": "echo: status of SO-1042?"},
               "model": "claude-fake", "finish_reason": "stop",
               "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}})
    );
    let sent = &fake.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(sent.headers["x-api-key"], KEY);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(!sent.headers.contains_key("authorization"));
    assert_eq!(sent.body["system"], "Be brief.\n\nAnswer in English.");
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": "hello there"},
               {"role": "assistant", "content": "hi"},
               {"role": "user", "content": "status of SO-1042?"}])
    );
    assert_eq!(sent.body["max_tokens"], 1024);
    assert_eq!(sent.body["model"], "claude-fake");
    assert!(sent.body.get("stream").is_none());

    // max_tokens is the call's when it names one, and Anthropic's max_tokens stop is length.
    let mut short = conversation();
    short["max_tokens"] = json!(2);
    short["temperature"] = json!(0.5);
    let answer = acme.ok("chat", short).await;
    assert_eq!(answer["message"]["content"], "echo: status");
    assert_eq!(answer["finish_reason"], "length");
    assert_eq!(answer["usage"]["completion_tokens"], 2);
    let sent = &fake.requests()[1];
    assert_eq!(
        (
            sent.body["max_tokens"].clone(),
            sent.body["temperature"].clone()
        ),
        (json!(2), json!(0.5))
    );
    assert!(fake.requests()[0].body.get("system").is_some());
    let plain = acme
        .ok(
            "chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(plain["message"]["content"], "echo: hi");
    assert!(
        fake.requests()[2].body.get("system").is_none(),
        "no system: none sent"
    );
}

#[tokio::test]
async fn fake_streamed_chat_arrives_in_pieces_and_the_last_carries_usage() {
    let (fake, acme) = fake_tenant("claude-fake").await;
    let (deltas, last) = stream::chat(&acme, conversation()).await;
    assert_eq!(deltas, ["echo:", " status", " of", " SO-1042?"]);
    assert_eq!(
        last,
        json!({"delta": "", "finish_reason": "stop", "model": "claude-fake",
               "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}})
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["system"], "Be brief.\n\nAnswer in English.");

    let mut short = conversation();
    short["max_tokens"] = json!(3);
    let (deltas, last) = stream::chat(&acme, short).await;
    assert_eq!(deltas.concat(), "echo: status of");
    assert_eq!(last["finish_reason"], "length");
    assert_eq!(last["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn fake_errors_map_to_stable_codes_whole_and_streamed() {
    let fake = fake().await;
    for (model, code, retryable) in [
        ("claude-fake-429", ErrorCode::RateLimited, true),
        ("claude-fake-529", ErrorCode::ProviderUnavailable, true),
        ("claude-fake-503", ErrorCode::ProviderUnavailable, true),
        ("claude-fake-500", ErrorCode::ProviderUnavailable, true),
    ] {
        let acme = tenant(&fake, json!({"chat_model": model})).await;
        let err = acme.err("chat", conversation()).await;
        assert_eq!(
            (err.code, err.retryable),
            (code, retryable),
            "{model}: {err:?}"
        );
        let Err(streamed) = stream::open(&acme, "chat", conversation()).await else {
            panic!("{model}: a stream opened");
        };
        assert_eq!(
            (streamed.code, streamed.retryable),
            (code, retryable),
            "{model}"
        );
        for detail in [&err.detail, &streamed.detail] {
            assert!(detail.contains("5xx") || detail.contains("4xx"), "{detail}");
            assert!(
                !detail.contains("Overloaded") && !detail.contains("request tokens"),
                "{detail}"
            );
        }
    }

    // A key the server refuses: not retryable, and the key is never shown.
    let wrong = tenant(
        &fake,
        json!({"chat_model": "claude-fake", "api_key": "sk-ant-wrong-5ecret"}),
    )
    .await;
    let err = wrong.err("chat", conversation()).await;
    assert_eq!(
        (err.code, err.retryable),
        (ErrorCode::ProviderUnavailable, false),
        "{err:?}"
    );
    assert!(err.detail.contains("api_key") && !format!("{err:?}").contains("5ecret"));
    assert_eq!(wrong.provider.health().await.status, HealthStatus::Down);

    // A server that takes the key is healthy: health asks it for its models.
    let acme = tenant(&fake, json!({"chat_model": "claude-fake"})).await;
    assert_eq!(acme.provider.health().await.status, HealthStatus::Up);
    let health = fake.requests().into_iter().last().unwrap();
    assert_eq!(
        (health.method.as_str(), health.path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(health.headers["x-api-key"], KEY);
    assert_eq!(health.headers["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn a_fake_stream_cut_mid_answer_ends_in_an_error_item() {
    let (_fake, acme) = fake_tenant("claude-fake-cut").await;
    let stream = stream::open(&acme, "chat", conversation())
        .await
        .expect("the first pieces arrived, so the stream opens");
    let items = stream::items(stream).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &json!({"delta": "echo:"}));
    assert_eq!(items[1].as_ref().unwrap(), &json!({"delta": " status"}));
    let err = items[2].as_ref().unwrap_err();
    assert_eq!(
        (err.code, err.retryable),
        (ErrorCode::ProviderUnavailable, true)
    );
    assert_eq!(err.detail, "the AI server's stream broke off");
}

#[tokio::test]
async fn the_model_a_call_names_overrides_the_configured_one_at_the_fake() {
    let fake = fake().await;
    let configured = tenant(
        &fake,
        json!({"chat_model": "claude-configured", "anthropic_version": "2024-01-01"}),
    )
    .await;
    let mut named = conversation();
    named["model"] = json!("claude-named");
    assert_eq!(
        configured.ok("chat", named.clone()).await["model"],
        "claude-named"
    );
    let (_, last) = stream::chat(&configured, named.clone()).await;
    assert_eq!(last["model"], "claude-named");
    assert_eq!(
        configured.ok("chat", conversation()).await["model"],
        "claude-configured"
    );
    let sent: Vec<(Value, String)> = fake
        .requests()
        .into_iter()
        .map(|r| {
            (
                r.body["model"].clone(),
                r.headers["anthropic-version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (json!("claude-named"), "2024-01-01".to_owned()),
            (json!("claude-named"), "2024-01-01".to_owned()),
            (json!("claude-configured"), "2024-01-01".to_owned())
        ]
    );

    // Without a configured model only a call that names one can chat.
    let bare = tenant(&fake, json!({})).await;
    let err = bare.err("chat", conversation()).await;
    assert_eq!(err.code, ErrorCode::ProviderNotConfigured);
    assert!(err.detail.contains("chat_model"), "{}", err.detail);
    assert_eq!(
        bare.ok("chat", named).await["message"]["content"],
        "echo: status of SO-1042?"
    );
}

#[tokio::test]
async fn what_the_messages_api_cannot_take_is_refused_before_the_fake_sees_it() {
    let (fake, acme) = fake_tenant("claude-fake").await;
    for (params, pointer) in [
        (
            json!({"messages": [{"role": "system", "content": "Be brief."}]}),
            "/messages",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 1.5}),
            "/temperature",
        ),
    ] {
        let err = acme.err("chat", params.clone()).await;
        assert_eq!(err.code, ErrorCode::ParamsUnprocessable, "{params}");
        assert_eq!(err.errors[0].pointer, pointer, "{params}");
        let Err(err) = stream::open(&acme, "chat", params.clone()).await else {
            panic!("{params} streamed");
        };
        assert_eq!(err.code, ErrorCode::ParamsUnprocessable, "{params}");
    }
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn an_unconfigured_tenant_is_told_what_to_configure() {
    let acme = Harness::new(factory()).tenant("acme").await;
    let err = acme.err("chat", conversation()).await;
    assert_eq!(
        (err.code, err.retryable),
        (ErrorCode::ProviderNotConfigured, false)
    );
    assert_eq!(err.code.status(), 409);
    assert!(err.detail.contains("base_url"), "{}", err.detail);
    let Err(err) = stream::open(&acme, "chat", conversation()).await else {
        panic!("an unconfigured tenant streamed");
    };
    assert_eq!(err.code, ErrorCode::ProviderNotConfigured);
    assert_eq!(acme.provider.health().await.status, HealthStatus::Down);
    let Err(err) = stream::open(&acme, "embed", json!({"texts": ["a"]})).await else {
        panic!("embed streamed");
    };
    assert_eq!(err.code, ErrorCode::ActionNotFound);
}

#[tokio::test]
async fn a_loopback_fake_is_refused_under_the_default_ceiling_before_anything_is_sent() {
    let fake = fake().await;
    let localhost = format!("http://localhost:{}", fake.addr().port());
    for base_url in [fake.base_url(), localhost] {
        let Err(err) = AnthropicFactory::new()
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"base_url": base_url, "api_key": KEY, "chat_model": "claude-fake"}),
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
            !err.detail.contains("http://"),
            "the URL is not quoted: {}",
            err.detail
        );
    }
    assert_eq!(fake.calls(), 0);
}
