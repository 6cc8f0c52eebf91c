//! OIDC tokens, rate limits and idempotency keys through the real gateway.

use crate::common;

use std::sync::Arc;

use common::{Api, Idp, RedisServer, Server, decode, free_port, tenant_with_key, write_config};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_token_is_an_identity_and_its_tenant_claim_wins() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &idp.oidc_config());
    let server = Server::start_with(dir.path(), &["--config", &config]);
    tenant_with_key(dir.path(), "acme", "*");
    let token = idp.token("ann", "acme", "read invoke", &[]);

    let api = Api::new(&server, &token);
    let (status, body) = api
        .post(
            "/providers/cache/memory/set",
            json!({"params": {"key": "k", "value": 1}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{}/providers", server.base))
        .bearer_auth(&token)
        .header("x-tenant-id", "globex")
        .send()
        .await
        .unwrap();
    let (status, body) = decode(response).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("tenant_forbidden")),
        "{body}"
    );
    let (status, body) = api.post("/providers/cache/memory/stop", json!({})).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("scope_forbidden")),
        "{body}"
    );
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let (status, body) = decode(
        http.get(format!("{}/providers", server.base))
            .bearer_auth(tampered)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (401, Some("token_invalid")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_quota_is_429_with_retry_after_and_ratelimit_headers() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[rate_limit.per_tenant]\nrequests = 5\nper_seconds = 60\n",
    );
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let other = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    for n in 0..5 {
        let response = api
            .raw()
            .get(format!("{}/providers", server.base))
            .bearer_auth(api.key())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            (4 - n).to_string()
        );
    }
    let response = api
        .raw()
        .get(format!("{}/providers", server.base))
        .bearer_auth(api.key())
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (status, body) = decode(response).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert_eq!(
        other.get("/providers").await.0,
        200,
        "another tenant's budget is its own"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_sharing_redis_enforce_one_budget() {
    let redis_port = free_port();
    let _redis = RedisServer::start(redis_port, None);
    let dir = tempfile::tempdir().unwrap();
    let runtime_port = free_port();
    let _runtime = Server::spawn(
        dir.path(),
        &["runtime", "--listen", &format!("127.0.0.1:{runtime_port}")],
        runtime_port,
    );
    let config = write_config(
        dir.path(),
        &format!(
            "[rate_limit]\nredis_url = \"redis://127.0.0.1:{redis_port}\"\nfail_open = false\n[rate_limit.per_tenant]\nrequests = 6\nper_seconds = 60\n"
        ),
    );
    let gateways: Vec<Server> = (0..2)
        .map(|_| {
            let port = free_port();
            Server::spawn(
                dir.path(),
                &[
                    "gateway",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--runtime",
                    &format!("127.0.0.1:{runtime_port}"),
                    "--config",
                    &config,
                ],
                port,
            )
        })
        .collect();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let mut statuses = Vec::new();
    for n in 0..8 {
        statuses.push(
            Api::new(&gateways[n % 2], &key)
                .get("/providers")
                .await
                .0
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 200, 429, 429],
        "one budget across both gateways"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_hundred_concurrent_identical_requests_have_exactly_one_effect() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    api.ok(
        "db/sqlite",
        "execute",
        json!({"sql": "CREATE TABLE payments (id INTEGER PRIMARY KEY, amount TEXT)"}),
    )
    .await;
    let body = json!({"params": {"sql": "INSERT INTO payments (amount) VALUES (?1)", "params": ["10.00"]}});
    let url = format!("{}/providers/db/sqlite/execute", server.base);
    let mut tasks = Vec::new();
    let http = Arc::new(reqwest::Client::new());
    for _ in 0..100 {
        let (http, url, body, key) = (
            http.clone(),
            url.clone(),
            body.clone(),
            api.key().to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(key)
                .header("idempotency-key", "pay-42")
                .json(&body)
                .send()
                .await
                .unwrap();
            let replayed = response.headers().get("idempotent-replayed").is_some();
            let (status, body) = decode(response).await;
            (status.as_u16(), replayed, body)
        }));
    }
    let mut originals = 0;
    for task in tasks {
        let (status, replayed, body) = task.await.unwrap();
        match (status, replayed) {
            (200, false) => originals += 1,
            (200, true) => assert_eq!(
                body["data"]["rows_affected"], 1,
                "a replay answers the original"
            ),
            (409, false) => assert_eq!(body["code"], "idempotency_in_flight"),
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    assert_eq!(originals, 1, "exactly one request ran");
    let rows = api
        .ok(
            "db/sqlite",
            "query",
            json!({"sql": "SELECT COUNT(*) AS n FROM payments"}),
        )
        .await;
    assert_eq!(
        rows["rows"][0]["n"], 1,
        "exactly one effect in the database"
    );

    let other_body = json!({"params": {"sql": "INSERT INTO payments (amount) VALUES (?1)", "params": ["99.00"]}});
    let response = http
        .post(&url)
        .bearer_auth(api.key())
        .header("idempotency-key", "pay-42")
        .json(&other_body)
        .send()
        .await
        .unwrap();
    let (status, body) = decode(response).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{body}"
    );
    let other_tenant = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    other_tenant
        .ok(
            "db/sqlite",
            "execute",
            json!({"sql": "CREATE TABLE payments (id INTEGER PRIMARY KEY, amount TEXT)"}),
        )
        .await;
    let response = http
        .post(&url)
        .bearer_auth(other_tenant.key())
        .header("idempotency-key", "pay-42")
        .json(&other_body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the same key in another tenant is another record"
    );
    assert!(response.headers().get("idempotent-replayed").is_none());
}
