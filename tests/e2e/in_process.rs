//! `serve --dispatch in-process`: the gateway calls the runtime in its own process instead of
//! over loopback (ADR 16). The filters in front are the same, and so are the answers.

use crate::common;

use common::{Api, Server, tenant_with_key, write_config};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn in_process_dispatch_answers_like_the_proxy_behind_the_same_filters() {
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let config = write_config(
        dir.path(),
        "[rate_limit.per_tenant]\nrequests = 1000\nper_seconds = 60\n",
    );
    let server = Server::start_with(
        dir.path(),
        &["--dispatch", "in-process", "--config", &config],
    );
    let api = Api::new(&server, &key);

    api.ok(
        "cache/memory",
        "set",
        json!({"key": "k", "value": {"n": 1}}),
    )
    .await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let answer = api
        .raw()
        .post(format!("{}/providers/cache/memory/get", api.base))
        .bearer_auth(&key)
        .header("x-request-id", "req-in-process")
        .header("traceparent", traceparent)
        .json(&json!({"params": {"key": "k"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    assert_eq!(headers["x-request-id"], "req-in-process");
    assert!(headers.contains_key("ratelimit-limit"), "{headers:?}");
    let echoed = headers["traceparent"].to_str().unwrap();
    assert!(
        echoed.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{echoed}"
    );
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["data"]["value"], json!({"n": 1}), "{body}");
    assert_eq!(body["meta"]["request_id"], "req-in-process");

    // The filters still refuse before anything reaches the runtime.
    let anonymous = reqwest::Client::new()
        .post(format!("{}/providers/cache/memory/get", api.base))
        .json(&json!({"params": {"key": "k"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The runtime's own refusals come back as they are, and public routes are served too.
    let (status, problem) = api
        .post("/providers/cache/memory/get", json!({"params": {}}))
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "params_invalid", "{problem}");
    let (status, openapi) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(openapi["openapi"], "3.1.0");

    // An idempotent request is recorded from the in-process answer and replayed.
    let post = |n: u32| {
        api.raw()
            .post(format!("{}/providers/cache/memory/set", api.base))
            .bearer_auth(&key)
            .header("idempotency-key", "once")
            .json(&json!({"params": {"key": "i", "value": n}}))
    };
    let first = post(1).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let replay = post(1).send().await.unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}
