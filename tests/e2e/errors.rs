//! Every refusal is problem+json with a stable code, whichever component refuses.

use crate::common;

use common::{Api, Server, decode, tenant_with_key};
use serde_json::{Value, json};

fn assert_problem(status: reqwest::StatusCode, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected_status, "{body}");
    assert!(
        body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_carry_their_codes_pointers_and_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    let api = Api::new(&server, &key);
    let http = reqwest::Client::new();

    // No key, a malformed key, a forged key: 401, and the request id is echoed.
    let response = http
        .get(format!("{}/providers", server.base))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, body) = decode(response).await;
    assert_problem(status, &body, 401, "unauthenticated");
    assert_eq!(body["request_id"], "trace-me-1");
    for bad in [
        "Bearer nope",
        "Basic YTpi",
        "Bearer sy_0123456789abcdef_forged",
    ] {
        let (status, body) = decode(
            http.get(format!("{}/providers", server.base))
                .header("authorization", bad)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_problem(status, &body, 401, "unauthenticated");
    }

    // Params outside the schema: 400 with a pointer per problem.
    let (status, body) = api
        .post(
            "/providers/db/sqlite/query",
            json!({"params": {"sql": 42, "extra": 1}}),
        )
        .await;
    assert_problem(status, &body, 400, "params_invalid");
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/sql") && pointers.contains(&"/extra"),
        "{pointers:?}"
    );

    // Not an envelope at all.
    let (status, body) = api
        .post("/providers/cache/memory/get", json!({"key": "k"}))
        .await;
    assert_problem(status, &body, 400, "request_invalid");

    // Unknown provider, unknown action, unknown route, wrong method.
    let (status, body) = api
        .post("/providers/db/oracle/query", json!({"params": {}}))
        .await;
    assert_problem(status, &body, 404, "provider_not_found");
    let (status, body) = api
        .post(
            "/providers/db/sqlite/drop_everything",
            json!({"params": {}}),
        )
        .await;
    assert_problem(status, &body, 404, "action_not_found");
    let (status, body) = api.get("/nowhere").await;
    assert_problem(status, &body, 404, "route_not_found");
    let (status, body) = api.get("/providers/db/sqlite/query").await;
    assert_problem(status, &body, 405, "method_not_allowed");

    // A provider error keeps its own code.
    let (status, body) = api
        .post(
            "/providers/storage/fs/get",
            json!({"params": {"key": "missing.txt"}}),
        )
        .await;
    assert_problem(status, &body, 404, "resource_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_is_bound_to_its_tenant_and_its_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let reader_key = common::cli(
        dir.path(),
        &[
            "key",
            "create",
            "--tenant",
            "acme",
            "--scopes",
            "read,invoke:cache",
        ],
    );
    let reader = Api::new(&server, reader_key.trim());
    let http = reqwest::Client::new();

    // X-Tenant-Id naming another tenant: 403, whatever the key may otherwise do.
    let response = http
        .get(format!("{}/providers", server.base))
        .bearer_auth(acme.key())
        .header("x-tenant-id", "globex")
        .send()
        .await
        .unwrap();
    let (status, body) = decode(response).await;
    assert_problem(status, &body, 403, "tenant_forbidden");

    // Scopes: this key may read the catalog and use the cache, nothing else.
    assert_eq!(reader.get("/providers").await.0, 200);
    assert_eq!(
        reader
            .post(
                "/providers/cache/memory/get",
                json!({"params": {"key": "k"}})
            )
            .await
            .0,
        200
    );
    let (status, body) = reader
        .post(
            "/providers/db/sqlite/query",
            json!({"params": {"sql": "select 1"}}),
        )
        .await;
    assert_problem(status, &body, 403, "scope_forbidden");
    let (status, body) = reader.post("/providers/cache/memory/stop", json!({})).await;
    assert_problem(status, &body, 403, "scope_forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_internal_headers_never_change_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    acme.ok(
        "cache/memory",
        "set",
        json!({"key": "secret", "value": "acme-only"}),
    )
    .await;

    // globex sends internal headers claiming to be acme: the gateway drops them and signs its own.
    let response = globex
        .raw()
        .post(format!("{}/providers/cache/memory/get", server.base))
        .bearer_auth(globex.key())
        .header("x-switchyard-context", "eyJ0ZW5hbnQiOiJhY21lIn0")
        .header("x-switchyard-signature", "00")
        .json(&json!({"params": {"key": "secret"}}))
        .send()
        .await
        .unwrap();
    let (status, body) = decode(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["found"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_refuses_requests_that_did_not_come_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(common::BIN)
        .args(["runtime", "--listen", &format!("127.0.0.1:{port}")])
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_LOG", "warn")
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/providers");
    let mut answer = None;
    for _ in 0..200 {
        if let Ok(response) = http
            .get(&url)
            .header("x-switchyard-context", "eyJ0ZW5hbnQiOiJhY21lIn0")
            .header("x-switchyard-signature", "00")
            .send()
            .await
        {
            answer = Some(decode(response).await);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let (status, body) = answer.expect("the runtime answered");
    assert_problem(status, &body, 401, "unauthenticated");
}
