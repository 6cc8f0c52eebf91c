//! The operator's daily AI token ceiling per tenant (`[tenancy.quotas] ai_tokens_per_day`),
//! on the real binary with a FAKE upstream: a call whose reservation would pass it is refused
//! with 429 `quota_exceeded` in OpenAI's error shape before anything is sent, whatever budget
//! the tenant gives itself; another tenant's calls count against their own ceiling only.

use crate::common;

use common::{Api, Server, tenant_with_key, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_ai_fakes::{FakeAi, FakeAiSettings};

/// A short prompt reserves about 20 tokens plus `max_tokens`.
const CEILING: u64 = 200;

async fn configure(api: &Api, fake: &FakeAi) {
    let (status, body) = api
        .post(
            "/providers/ai/openai/configure",
            json!({"config": {"base_url": format!("{}/v1", fake.base_url())}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The tenant's own budget is far above the operator's ceiling: it cannot widen it.
    let (status, body) = api
        .post(
            "/providers/ai/gateway/configure",
            json!({"config": {
                "aliases": {"smart": {"targets": [{"provider": "openai", "model": "fake-ok"}]}},
                "limits": [{"scope": "tenant", "unit": "tokens", "window": "day", "cap": 1_000_000}],
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn chat(api: &Api, max_tokens: u64) -> (StatusCode, Value) {
    let response = api
        .raw()
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(api.key())
        .json(&json!({
            "model": "smart",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "hello there"}],
        }))
        .send()
        .await
        .unwrap();
    common::decode(response).await
}

#[tokio::test]
async fn the_operator_s_daily_token_ceiling_holds_whatever_the_tenant_s_budget_fake_upstream() {
    let fake = FakeAi::start(FakeAiSettings::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n[tenancy.quotas]\nai_tokens_per_day = {CEILING}\n"
        ),
    );
    let acme = tenant_with_key(dir.path(), "acme", "*");
    let globex = tenant_with_key(dir.path(), "globex", "*");
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let (acme, globex) = (Api::new(&server, &acme), Api::new(&server, &globex));
    configure(&acme, &fake).await;
    configure(&globex, &fake).await;

    let (status, body) = chat(&acme, 50).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Past the ceiling: refused before the fake is called, in OpenAI's shape.
    let calls = fake.calls();
    let (status, body) = chat(&acme, 1000).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(fake.calls(), calls, "nothing was sent past the ceiling");
    // Another tenant's ceiling is its own.
    let (status, body) = chat(&globex, 50).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // What acme spent is what the fake reported, under the operator's bucket too.
    let (status, usage) = acme
        .post("/providers/ai/gateway/usage", json!({"params": {}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let buckets = usage["data"]["buckets"].as_array().unwrap();
    let ceiling = buckets
        .iter()
        .find(|b| b["bucket"].as_str().unwrap().starts_with("operator|"))
        .expect("the operator's bucket is listed");
    assert_eq!(ceiling["cap"], CEILING);
    assert_eq!(ceiling["reserved"], 0);
    assert_eq!(
        ceiling["spent"],
        2 + 3,
        "the fake's words: prompt 2, answer 3"
    );
}
