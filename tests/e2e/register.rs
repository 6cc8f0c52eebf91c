//! Runtime registration, end to end through the real binary: the platform operator registers a
//! remote provider while `switchyard serve` runs (`POST /providers/register`), the runtime
//! certifies it at its domain's core level first, tenants find it in the catalog and use it
//! (each seeing only its own data), a restart keeps it, and `DELETE` removes it. A service that
//! breaks the contract is refused with its failing checks named; a tenant's key registers
//! nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, Server, decode, free_port, tenant_with_key};
use crate::plugins::{RemoteService, example_manifest, example_service, token};

/// The operator's token the servers below are started with.
const OPERATOR_TOKEN: &str = "operator-token-for-the-register-test";

/// A cache service that answers every call with empty data: it speaks the protocol (start,
/// health, problem-free answers) but remembers nothing, so the cache suite's core checks fail.
const FORGETFUL_SERVICE: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer({"status": "up", "dependencies": []})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer({"data": {"instance": "i"} if self.path == "/start" else {}})

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
"#;

fn serve(data_dir: &std::path::Path, extra: &[&str], remote_token: &str) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--listen", listen.as_str()];
    args.extend_from_slice(extra);
    Server::spawn_with_env(
        data_dir,
        &args,
        port,
        &mut vec![
            ("SWITCHYARD_OPERATOR_TOKEN", OPERATOR_TOKEN.to_owned()),
            ("REMOTE_PROVIDER_TOKEN", remote_token.to_owned()),
        ],
    )
}

fn manifest_of(service: &RemoteService, dir: &std::path::Path) -> Value {
    let path = service.manifest(&example_manifest(), dir);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn in_catalog(catalog: &Value, provider: &str) -> Option<Value> {
    catalog["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            format!(
                "{}/{}",
                p["domain"].as_str().unwrap(),
                p["name"].as_str().unwrap()
            ) == provider
        })
        .cloned()
}

async fn delete(api: &Api, path: &str) -> (StatusCode, Value) {
    let response = api
        .raw()
        .delete(format!("{}{path}", api.base))
        .bearer_auth(api.key())
        .send()
        .await
        .unwrap();
    decode(response).await
}

#[tokio::test]
async fn a_remote_provider_is_registered_certified_used_per_tenant_kept_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let remote_token = token();
    let service = RemoteService::start(&example_service(), &remote_token);
    let manifest = manifest_of(&service, dir.path());
    let provider = "cache/example-remote";

    let server = serve(dir.path(), &[], &remote_token);
    let operator = Api::new(&server, OPERATOR_TOKEN);
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));

    // Not a tenant's to do, not even with every scope; nor anyone's without a token.
    let (status, problem) = acme.post("/providers/register", manifest.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "operator_only", "{problem}");
    let (status, problem) = Api::new(&server, "").get("/providers/register").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["code"], "unauthenticated", "{problem}");
    let (_, catalog) = acme.get("/providers").await;
    assert!(in_catalog(&catalog, provider).is_none(), "{catalog}");

    // Registered while serving, certified first.
    let (status, registered) = operator.post("/providers/register", manifest.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["provider"], provider);
    assert!(
        registered["certification"]
            .as_str()
            .unwrap()
            .starts_with("core"),
        "{registered}"
    );
    let (status, problem) = operator.post("/providers/register", manifest.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "registered twice: {problem}");
    let (status, listed) = operator.get("/providers/register").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["registrations"][0]["provider"], provider, "{listed}");

    // Listed for tenants, with its certification, and served per tenant.
    let (_, catalog) = acme.get("/providers").await;
    let entry = in_catalog(&catalog, provider).unwrap_or_else(|| panic!("not listed: {catalog}"));
    assert_eq!(entry["status"], "running", "{entry}");
    assert_eq!(
        entry["certification"]["level"], registered["certification"],
        "{entry}"
    );
    acme.ok(provider, "set", json!({"key": "k", "value": "acme-only"}))
        .await;
    assert_eq!(
        acme.ok(provider, "get", json!({"key": "k"})).await["value"],
        "acme-only"
    );
    let theirs = globex.ok(provider, "get", json!({"key": "k"})).await;
    assert_eq!(theirs["found"], false, "leaked across tenants: {theirs}");
    let (_, openapi) = acme.get("/openapi.json").await;
    assert!(
        openapi["paths"]
            .get("/providers/cache/example-remote/get")
            .is_some(),
        "the registered provider's actions are not published"
    );

    // A service that breaks the contract is refused, its failing checks named, and not listed.
    let forgetful = dir.path().join("forgetful.py");
    std::fs::write(&forgetful, FORGETFUL_SERVICE).unwrap();
    let broken_service = RemoteService::start(&forgetful, &remote_token);
    let mut broken = manifest_of(&broken_service, dir.path());
    broken["name"] = json!("forgetful");
    let (status, problem) = operator.post("/providers/register", broken).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "conformance_failed", "{problem}");
    let failing: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        failing.contains(&"/checks/set_then_get_returns_the_json_value"),
        "{problem}"
    );
    let (_, catalog) = acme.get("/providers").await;
    assert!(
        in_catalog(&catalog, "cache/forgetful").is_none(),
        "{catalog}"
    );
    // A manifest the runtime cannot use at all.
    let (status, problem) = operator
        .post(
            "/providers/register",
            json!({"domain": "cache", "name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "manifest_invalid", "{problem}");

    // A restart keeps the registration; this time over the runtime's own HTTP listener, so
    // the operator's token also crosses the gateway's proxy path.
    drop(server);
    let server = serve(dir.path(), &["--dispatch", "http"], &remote_token);
    let operator = Api::new(&server, OPERATOR_TOKEN);
    let acme = Api::new(&server, acme.key());
    assert_eq!(
        acme.ok(provider, "get", json!({"key": "k"})).await["value"],
        "acme-only",
        "the registration did not survive the restart"
    );
    let (status, problem) = delete(&acme, "/providers/register/cache/example-remote").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "operator_only");

    // Only what an operator registered can be removed; once removed, it is unknown.
    let (status, problem) = delete(&operator, "/providers/register/cache/memory").await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, removed) = delete(&operator, "/providers/register/cache/example-remote").await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(
        removed["instances_stopped"], 1,
        "acme's instance: {removed}"
    );
    let (status, problem) = acme
        .post(
            &format!("/providers/{provider}/get"),
            json!({"params": {"key": "k"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(problem["code"], "provider_not_found");
    let (_, catalog) = acme.get("/providers").await;
    assert!(in_catalog(&catalog, provider).is_none(), "{catalog}");
    let (status, _) = delete(&operator, "/providers/register/cache/example-remote").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // And it stays removed across a restart.
    drop(server);
    let server = serve(dir.path(), &[], &remote_token);
    let (_, catalog) = Api::new(&server, acme.key()).get("/providers").await;
    assert!(in_catalog(&catalog, provider).is_none(), "{catalog}");
}
