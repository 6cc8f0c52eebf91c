//! Runtime registration, end to end through the real binary: the platform operator registers a
//! remote provider while `switchyard serve` runs (`POST /providers/register`), the runtime
//! certifies it at its domain's core level first, tenants find it in the catalog and use it
//! (each seeing only its own data), a restart keeps it, and `DELETE` removes it. A service that
//! breaks the contract is refused with its failing checks named; a tenant's key registers
//! nothing, and an address guessing the operator's token is slowed down. Every answer is held to
//! the operation the served OpenAPI document declares for it.

use std::net::IpAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_contracts::schema::Compiled;

use crate::common::{Api, Server, decode, free_port, tenant_with_key};
use crate::plugins::{RemoteService, example_manifest, example_service, token};

/// The operator's token the servers below are started with.
const OPERATOR_TOKEN: &str = "operator-token-for-the-register-test";

/// Wrong tokens one address may send before 429 (the runtime's `FAILURES_PER_MINUTE`).
const GUESSES_ALLOWED: usize = 10;

/// The served OpenAPI document, to hold answers to the operations it declares.
struct Contract(Value);

impl Contract {
    async fn served(api: &Api) -> Contract {
        let (status, document) = api.get("/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        Contract(document)
    }

    /// Panics unless `body` is what `method path` declares for `status`: that status (or the
    /// default answer) documented, and the body valid against its schema.
    fn holds(&self, method: &str, path: &str, status: StatusCode, body: &Value) {
        let operation = &self.0["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let mut response = &operation["responses"][status.as_str()];
        if response.is_null() {
            response = &operation["responses"]["default"];
        }
        if let Some(target) = response["$ref"].as_str() {
            let name = target.rsplit('/').next().unwrap();
            response = &self.0["components"]["responses"][name];
        }
        let (_, content) = response["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .unwrap_or_else(|| panic!("{method} {path} {status}: no content declared"));
        let mut schema = content["schema"].clone();
        schema["components"] = self.0["components"].clone();
        let errors = Compiled::new(&schema, path).unwrap().check(body);
        assert!(
            errors.is_empty(),
            "{method} {path} answered {status} off its contract: {errors:?}\n{body}"
        );
    }
}

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
    let contract = Contract::served(&acme).await;
    let register = "/providers/register";
    let one = "/providers/register/{domain}/{name}";
    let (status, problem) = acme.post(register, manifest.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "operator_only", "{problem}");
    contract.holds("post", register, status, &problem);
    let (status, problem) = Api::new(&server, "").get(register).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["code"], "unauthenticated", "{problem}");
    contract.holds("get", register, status, &problem);

    // Guessing the token from one address is slowed down, whatever that address sends next;
    // the operator at another address is not.
    let guesser = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 3]))
        .build()
        .unwrap();
    let guess = |token: &str| {
        guesser
            .get(format!("{}{register}", server.base))
            .bearer_auth(token)
            .send()
    };
    for attempt in 0..GUESSES_ALLOWED {
        let (status, problem) = decode(guess(&format!("guess-{attempt}")).await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "guess {attempt}: {problem}");
    }
    let limited = guess("guess-past-the-budget").await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let (status, problem) = decode(limited).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    contract.holds("get", register, status, &problem);
    let (status, problem) = decode(guess(OPERATOR_TOKEN).await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a limited address learns nothing from the right token: {problem}"
    );
    let (status, listed) = operator.get(register).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another address is not slowed: {listed}"
    );
    contract.holds("get", register, status, &listed);
    let (_, catalog) = acme.get("/providers").await;
    assert!(in_catalog(&catalog, provider).is_none(), "{catalog}");

    // Registered while serving, certified first.
    let (status, registered) = operator.post(register, manifest.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    contract.holds("post", register, status, &registered);
    assert_eq!(registered["provider"], provider);
    assert!(
        registered["certification"]
            .as_str()
            .unwrap()
            .starts_with("core"),
        "{registered}"
    );
    let (status, problem) = operator.post(register, manifest.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "registered twice: {problem}");
    contract.holds("post", register, status, &problem);
    let (status, listed) = operator.get(register).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["registrations"][0]["provider"], provider, "{listed}");
    contract.holds("get", register, status, &listed);
    let (status, shown) = operator
        .get("/providers/register/cache/example-remote")
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown, listed["registrations"][0], "{shown}");
    contract.holds("get", one, status, &shown);
    let (status, problem) = operator.get("/providers/register/cache/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    contract.holds("get", one, status, &problem);

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
    let (status, problem) = operator.post(register, broken).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "conformance_failed", "{problem}");
    contract.holds("post", register, status, &problem);
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
        .post(register, json!({"domain": "cache", "name": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "manifest_invalid", "{problem}");
    contract.holds("post", register, status, &problem);

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
    contract.holds("delete", one, status, &problem);

    // Only what an operator registered can be removed; once removed, it is unknown.
    let (status, problem) = delete(&operator, "/providers/register/cache/memory").await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    contract.holds("delete", one, status, &problem);
    let (status, removed) = delete(&operator, "/providers/register/cache/example-remote").await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    contract.holds("delete", one, status, &removed);
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
    let (status, problem) = delete(&operator, "/providers/register/cache/example-remote").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    contract.holds("delete", one, status, &problem);

    // And it stays removed across a restart.
    drop(server);
    let server = serve(dir.path(), &[], &remote_token);
    let (_, catalog) = Api::new(&server, acme.key()).get("/providers").await;
    assert!(in_catalog(&catalog, provider).is_none(), "{catalog}");
}
