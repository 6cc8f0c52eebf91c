//! Issue 17, point 8 (part): reserved names cannot become tenants; the internal signature
//! covers the body, so a body swapped between gateway and runtime does not run; and a provider
//! the tenant (or the deployment) has not configured answers 409 `provider_not_configured`, a
//! state the caller controls, instead of a 503 outage.

use crate::common::{self, Api, Server, cli, free_port, tenant_with_key};

use reqwest::StatusCode;
use serde_json::json;
use switchyard_runtime::internal_auth::{
    BodySeal, CONTEXT_HEADER, InternalKey, SIGNATURE_HEADER, VerifiedContext, unix_now,
};

#[test]
fn reserved_names_cannot_be_created_as_tenants() {
    let dir = tempfile::tempdir().unwrap();
    for reserved in [
        "readyz",
        "healthz",
        "metrics",
        "providers",
        "services",
        "policies",
        "console",
        "admin",
        "keys",
    ] {
        let out = std::process::Command::new(common::BIN)
            .args(["tenant", "create", reserved])
            .env("SWITCHYARD_DATA_DIR", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "tenant {reserved} was created");
        assert!(stderr.contains("reserved"), "{reserved}: {stderr}");
    }
    // An ordinary name still is, and a reserved name with more to it is an ordinary name.
    cli(dir.path(), &["tenant", "create", "acme"]);
    cli(dir.path(), &["tenant", "create", "metrics-team"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_swapped_after_signing_is_refused_by_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    cli(dir.path(), &["tenant", "create", "acme"]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let runtime = Server::spawn(dir.path(), &["runtime", "--listen", &listen], port);
    // The key the gateway would sign with: the runtime's own, from the shared data directory.
    let key = InternalKey::load(dir.path()).unwrap();
    let path = "/providers/cache/memory/set";
    let signed = json!({"params": {"key": "limit", "value": 100}}).to_string();
    let swapped = json!({"params": {"key": "limit", "value": 1_000_000}}).to_string();
    let context = VerifiedContext {
        tenant: "acme".into(),
        subject: "key:attacker".into(),
        scopes: "*".into(),
        request_id: "swap".into(),
        issued_at: unix_now(),
        body: BodySeal::of(signed.as_bytes()),
    };
    let (context, signature) = key.sign("POST", path, &context);
    let http = reqwest::Client::new();
    let send = |body: String| {
        http.post(format!("{}{path}", runtime.base))
            .header(CONTEXT_HEADER, &context)
            .header(SIGNATURE_HEADER, &signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, refused) = common::decode(send(swapped).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["code"], "unauthenticated", "{refused}");
    // The same headers with the body they were signed for pass: the refusal was the body's.
    let (status, accepted) = common::decode(send(signed).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unconfigured_auth_providers_answer_409_provider_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    // No policy bundle: auth/opa has nothing to evaluate; acme never configured auth/jwt.
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    for (path, params) in [
        ("/providers/auth/jwt/verify", json!({"token": "a.b.c"})),
        ("/providers/auth/jwt/introspect", json!({"token": "a.b.c"})),
        (
            "/providers/auth/opa/evaluate",
            json!({"input": {"action": "query"}}),
        ),
    ] {
        let (status, problem) = api.post(path, json!({"params": params})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {problem}");
        assert_eq!(
            problem["code"], "provider_not_configured",
            "{path}: {problem}"
        );
        assert_eq!(problem["retryable"], false, "{path}: {problem}");
    }
}
