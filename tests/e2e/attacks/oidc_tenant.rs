//! Issue 17, point 8: an OIDC token whose tenant claim names a tenant the platform does not
//! have. The identity provider is the operator's, but what it writes into the tenant claim is
//! not the platform's to trust blindly: a token for a deleted, mistyped or never created tenant
//! must not reach providers (whose instances would then be started for a tenant nobody
//! created). Refused with 401 `unauthenticated`, like a client certificate naming an unknown
//! tenant; a token for an existing tenant still works.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Api, Idp, Server, tenant_with_key, write_config};

#[tokio::test(flavor = "multi_thread")]
async fn a_token_for_a_tenant_that_does_not_exist_is_refused() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    // The IdP's JWKS listens on loopback: its config opens loopback to the gateway's fetch.
    let config = write_config(dir.path(), &idp.oidc_config());
    let server = Server::start_with(dir.path(), &["--config", &config]);
    tenant_with_key(dir.path(), "acme", "*");

    let known = Api::new(&server, &idp.token("ann", "acme", "read invoke", &[]));
    let (status, body) = known
        .post(
            "/providers/cache/memory/set",
            json!({"params": {"key": "k", "value": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let ghost = Api::new(
        &server,
        &idp.token("eve", "ghost", "read invoke admin", &["admin"]),
    );
    for (method, path, body) in [
        ("GET", "/providers", None),
        ("GET", "/providers/cache/memory", None),
        (
            "POST",
            "/providers/cache/memory/set",
            Some(json!({"params": {"key": "k", "value": 2}})),
        ),
        (
            "POST",
            "/providers/cache/memory/configure",
            Some(json!({"config": {}})),
        ),
    ] {
        let (status, answer) = match body {
            None => ghost.get(path).await,
            Some(body) => ghost.post(path, body).await,
        };
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
            "{method} {path}: {answer}"
        );
        assert!(
            answer["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("tenant"),
            "{answer}"
        );
    }
}
