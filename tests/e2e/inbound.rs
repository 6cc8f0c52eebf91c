//! Inbound webhooks through `switchyard serve`, with the runtime in process and behind its
//! loopback HTTP listener: the route takes no API key, and a forged Shopify signature for a
//! tenant that configured Shopify, a tenant that does not exist, a tenant that never
//! configured the engine and an engine that takes no webhooks all answer the same 401
//! `signature_invalid`, so a sender learns no tenant's name. The served OpenAPI document lists
//! the route for each engine that receives, without security. (A signed delivery becoming an
//! order is the integration journey's, in `integration.rs`.)

use crate::common;

use std::path::Path;

use common::{Server, tenant_with_key, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Lets tenants keep secret files under `<dir>/tenant-secrets/<tenant>/` and reach loopback.
fn operator_config(dir: &Path) -> String {
    let secrets = dir.join("tenant-secrets");
    std::fs::create_dir_all(secrets.join("acme")).unwrap();
    std::fs::write(secrets.join("acme/token"), "shpat_test").unwrap();
    std::fs::write(secrets.join("acme/whsec"), "the-apps-client-secret").unwrap();
    write_config(
        dir,
        &format!(
            "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n[tenancy.secrets]\nfile_dir = \"{}/{{tenant}}\"\n",
            secrets.display()
        ),
    )
}

/// Posts a webhook without any Switchyard credential; answers its status and problem, the
/// request id left out.
async fn hook(server: &Server, path: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header(
            "x-shopify-webhook-id",
            "0b0a3f7e-5d7c-4c3e-9f25-6f1d2a1c9e11",
        )
        .header("x-shopify-hmac-sha256", "Zm9yZ2VkIHNpZ25hdHVyZQ==")
        .body(r#"{"id": 1, "updated_at": "2026-12-07T00:00:00Z"}"#)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let mut problem: Value = response.json().await.unwrap();
    problem.as_object_mut().unwrap().remove("request_id");
    (status, problem)
}

async fn refusals_are_indistinguishable(dispatch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    tenant_with_key(dir.path(), "globex", "*");
    let server = Server::start_with(dir.path(), &["--config", &config, "--dispatch", dispatch]);
    let secrets = dir.path().join("tenant-secrets/acme");
    let shopify = json!({"config": {
        "shop_url": "http://127.0.0.1:9",
        "access_token": format!("secret://file{}", secrets.join("token").display()),
        "webhook_secret": format!("secret://file{}", secrets.join("whsec").display()),
        "allowed_networks": ["127.0.0.0/8"],
    }});
    let configured = reqwest::Client::new()
        .post(format!(
            "{}/providers/integration/shopify/configure",
            server.base
        ))
        .bearer_auth(&key)
        .json(&shopify)
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), StatusCode::OK, "{dispatch}");

    let forged = hook(&server, "/inbound/acme/integration/shopify").await;
    assert_eq!(
        forged.0,
        StatusCode::UNAUTHORIZED,
        "{dispatch}: {}",
        forged.1
    );
    assert_eq!(forged.1["code"], "signature_invalid", "{dispatch}");
    for other in [
        "/inbound/nobody/integration/shopify",
        "/inbound/globex/integration/shopify",
        "/inbound/acme/integration/salesforce",
        "/inbound/acme/integration/webhook",
    ] {
        assert_eq!(hook(&server, other).await, forged, "{dispatch}: {other}");
    }

    let document: Value = reqwest::get(format!("{}/openapi.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let post = &document["paths"]["/inbound/{tenant}/integration/shopify"]["post"];
    assert_eq!(post["security"], json!([]), "{dispatch}: {post}");
    assert!(
        document["paths"]
            .get("/inbound/{tenant}/integration/webhook")
            .is_none(),
        "{dispatch}: integration/webhook takes no webhooks"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_refusals_name_no_tenant_with_the_runtime_in_process() {
    refusals_are_indistinguishable("in-process").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_refusals_name_no_tenant_with_the_runtime_behind_http() {
    refusals_are_indistinguishable("http").await;
}
