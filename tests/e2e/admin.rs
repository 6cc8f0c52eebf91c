//! The platform operator's plane through the real binary: an operator key from the CLI,
//! tenants created, suspended, resumed and deleted through `/admin/*`, limits, per-tenant policy
//! data in the next bundle revision (and in no other tenant's bundle), usage, and every
//! `/admin/*` route refused to a tenant's own key.

use crate::common;

use std::io::Read;
use std::time::Duration;

use common::{Api, Server, cli, eventually, policy_bundle, tenant_with_key, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every route of the plane, with a body where it takes one.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/tenants"),
    ("POST", "/admin/tenants"),
    ("GET", "/admin/tenants/acme"),
    ("DELETE", "/admin/tenants/acme"),
    ("POST", "/admin/tenants/acme/suspend"),
    ("POST", "/admin/tenants/acme/resume"),
    ("GET", "/admin/tenants/acme/export"),
    ("GET", "/admin/tenants/acme/usage"),
    ("POST", "/admin/tenants/acme/keys"),
    ("GET", "/admin/tenants/acme/limits"),
    ("PUT", "/admin/tenants/acme/limits"),
    ("GET", "/admin/tenants/acme/policy"),
    ("PUT", "/admin/tenants/acme/policy"),
];

struct Operator {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Operator {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        call(&self.http, &self.base, &self.key, method, path, body).await
    }
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    common::decode(request.send().await.unwrap()).await
}

fn operator_key(dir: &std::path::Path) -> String {
    cli(dir, &["operator", "create-key", "--name", "ops-alice"])
        .trim()
        .to_owned()
}

#[tokio::test]
async fn an_operator_creates_suspends_resumes_and_deletes_a_tenant_and_tenant_keys_are_refused_everywhere()
 {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[admin]\ndeletion_grace_seconds = 2\npurge_interval_ms = 200\n",
    );
    let operator_key = operator_key(dir.path());
    let tenant_admin = tenant_with_key(dir.path(), "globex", "*");
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let op = Operator {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        key: operator_key.clone(),
    };

    // A tenant's key, even with every scope, is refused on every route; no credentials is 401.
    for (method, path) in ROUTES {
        let (status, body) = call(
            &op.http,
            &op.base,
            &tenant_admin,
            method,
            path,
            Some(json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(body["code"], "operator_only", "{method} {path}");
        let response = op
            .http
            .request(method.parse().unwrap(), format!("{}{path}", op.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }

    // Create, then issue the tenant's first key.
    let (status, body) = op
        .call("POST", "/admin/tenants", Some(json!({"id": "acme"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tenant"]["status"], "active");
    let (status, body) = op
        .call("POST", "/admin/tenants", Some(json!({"id": "acme"})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, body) = op
        .call(
            "POST",
            "/admin/tenants",
            Some(json!({"id": "Not A Tenant"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = op
        .call(
            "POST",
            "/admin/tenants/acme/keys",
            Some(json!({"scopes": "*"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let acme = Api::new(&server, body["key"].as_str().unwrap());
    acme.ok("cache/memory", "set", json!({"key": "k", "value": 1}))
        .await;

    let (status, body) = op.call("GET", "/admin/tenants", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "globex"]);

    // Suspended: the very next call is refused with a stable code; another tenant is not.
    let (status, body) = op.call("POST", "/admin/tenants/acme/suspend", None).await;
    assert_eq!(
        (status, &body["tenant"]["status"]),
        (StatusCode::OK, &json!("suspended"))
    );
    let (status, body) = acme
        .post(
            "/providers/cache/memory/get",
            json!({"params": {"key": "k"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "tenant_suspended");
    let (status, _) = acme.get("/providers").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let globex = Api::new(&server, &tenant_admin);
    globex
        .ok("cache/memory", "set", json!({"key": "k", "value": 2}))
        .await;

    // Resumed: served again, with its data intact.
    let (status, _) = op.call("POST", "/admin/tenants/acme/resume", None).await;
    assert_eq!(status, StatusCode::OK);
    let got = acme.ok("cache/memory", "get", json!({"key": "k"})).await;
    assert_eq!(got["value"], 1, "{got}");

    // Usage counts what acme did, from the store, whichever replica served it.
    let usage = eventually(
        "acme's usage is counted",
        Duration::from_secs(10),
        || async {
            let (status, body) = op
                .call("GET", "/admin/tenants/acme/usage?days=1", None)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            (body["total"]["calls"].as_i64().unwrap_or(0) >= 4).then_some(body)
        },
    )
    .await;
    assert!(usage["total"]["errors"].as_i64().unwrap() >= 2, "{usage}");
    assert!(
        usage["stored"]["api_keys"].as_i64().unwrap() >= 1,
        "{usage}"
    );
    let (status, body) = op
        .call("GET", "/admin/tenants/acme/usage?weeks=1", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("request_invalid"))
    );

    // Limits: validated, stored, shown.
    let (status, body) = op
        .call(
            "PUT",
            "/admin/tenants/acme/limits",
            Some(json!({"decision_retention_days": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/decision_retention_days");
    let (status, body) = op
        .call(
            "PUT",
            "/admin/tenants/acme/limits",
            Some(json!({"max_keys": 3})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an unknown field is refused: {body}"
    );
    let limits = json!({"decision_retention_days": 30, "rate_limit": {"requests": 100, "per_seconds": 1, "burst": 100}});
    let (status, body) = op
        .call("PUT", "/admin/tenants/acme/limits", Some(limits.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = op.call("GET", "/admin/tenants/acme/limits", None).await;
    assert_eq!(body["limits"], limits);

    // Limits are enforced: a tight request budget (no [rate_limit] in the file at all) and a
    // cap on live keys; globex is not touched.
    let limits =
        json!({"rate_limit": {"requests": 1, "per_seconds": 600, "burst": 2}, "max_api_keys": 1});
    let (status, _) = op
        .call("PUT", "/admin/tenants/acme/limits", Some(limits.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(acme.get("/providers").await.0.as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 429],
        "the operator's budget applies at once"
    );
    for _ in 0..3 {
        assert_eq!(globex.get("/providers").await.0, StatusCode::OK);
    }
    let (status, body) = op
        .call(
            "POST",
            "/admin/tenants/acme/keys",
            Some(json!({"scopes": "read"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("quota_exceeded")),
        "{body}"
    );

    // Deleted: refused at once, exportable during the grace period, then purged.
    let (status, body) = op.call("DELETE", "/admin/tenants/acme", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["tenant"]["status"], "deleting");
    let (status, body) = acme
        .post(
            "/providers/cache/memory/get",
            json!({"params": {"key": "k"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("tenant_suspended"))
    );
    let (status, export) = op.call("GET", "/admin/tenants/acme/export", None).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["tenant"]["id"], "acme");
    assert_eq!(export["limits"], limits);
    assert!(!export["keys"].as_array().unwrap().is_empty());
    assert!(
        !export.to_string().contains(acme.key()),
        "the export never holds a key's secret"
    );
    eventually(
        "acme is purged after its grace period",
        Duration::from_secs(15),
        || async {
            let (status, _) = op.call("GET", "/admin/tenants/acme", None).await;
            (status == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    // Refused all along; once the authenticator's cache has let go of it, unknown.
    eventually(
        "a purged tenant's key is unknown",
        Duration::from_secs(15),
        || async {
            let (status, body) = acme.get("/providers").await;
            assert!(matches!(status.as_u16(), 401 | 403), "{status} {body}");
            (status == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    let (_, body) = op.call("GET", "/admin/tenants", None).await;
    assert_eq!(body["tenants"].as_array().unwrap().len(), 1, "{body}");

    // The tenant's audit chain outlives it, with every operator action in order.
    let store = switchyard_runtime::PlatformStore::open(dir.path())
        .await
        .unwrap();
    let records = store
        .list_audit(
            &switchyard_contracts::TenantId::parse("acme").unwrap(),
            &switchyard_runtime::store::AuditFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut operations: Vec<String> = records.iter().map(|r| r.operation.clone()).collect();
    operations.sort();
    for expected in ["create", "suspend", "resume", "update", "delete", "purge"] {
        assert!(
            operations.iter().any(|o| o == expected),
            "{expected} missing from {operations:?}"
        );
    }
    assert!(
        records
            .iter()
            .filter(|r| r.actor.starts_with("operator:"))
            .count()
            >= 5
    );
    assert!(
        records
            .iter()
            .all(|r| r.request_id.is_some() || r.actor.starts_with("system:")),
        "every operator record names its request"
    );
}

/// The files of a gzip'd tar bundle, by path.
fn bundle_files(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('/')
            .to_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(path, data);
    }
    files
}

#[tokio::test]
async fn per_tenant_policy_data_decides_from_the_next_revision_and_each_auditor_sees_only_their_own()
 {
    let dir = tempfile::tempdir().unwrap();
    let bundle = policy_bundle(dir.path(), "r1");
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\nbundle = \"{}\"\npoll_interval_ms = 200\n",
            bundle.display()
        ),
    );
    let operator_key = operator_key(dir.path());
    let acme_key = tenant_with_key(dir.path(), "acme", "*");
    let globex_key = tenant_with_key(dir.path(), "globex", "*");
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let op = Operator {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        key: operator_key,
    };
    let acme = Api::new(&server, &acme_key);
    let globex = Api::new(&server, &globex_key);
    acme.ok("cache/memory", "set", json!({"key": "k", "value": 1}))
        .await;

    // A bad document is refused at its field; nothing is written.
    let (status, body) = op
        .call(
            "PUT",
            "/admin/tenants/acme/policy",
            Some(json!({"deny_actions": ["cache/set"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/deny_actions/0");

    let (status, body) = op
        .call(
            "PUT",
            "/admin/tenants/acme/policy",
            Some(
                json!({"deny_actions": ["cache/*/set"], "roles": {"night_clerk": [
                {"operation": "read", "domain": "*", "provider": "*", "action": "*"}]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let revision = body["revision"].as_str().unwrap().to_owned();
    assert!(revision.starts_with("r1+tenants."), "{revision}");

    // In force at once on this replica: acme's set is denied, its get and globex's set are not.
    let (status, body) = acme
        .post(
            "/providers/cache/memory/set",
            json!({"params": {"key": "k", "value": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "policy_denied");
    acme.ok("cache/memory", "get", json!({"key": "k"})).await;
    globex
        .ok("cache/memory", "set", json!({"key": "k", "value": 3}))
        .await;
    let (_, body) = acme.get("/policies/revision").await;
    assert_eq!(body["revision"], revision.as_str());

    // Each tenant's auditor downloads the global data and their own part only.
    let download = |key: String| {
        let base = server.base.clone();
        async move {
            let response = reqwest::Client::new()
                .get(format!("{base}/policies/bundle"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            bundle_files(&response.bytes().await.unwrap())
        }
    };
    let acme_files = download(acme_key.clone()).await;
    let data: Value = serde_json::from_slice(&acme_files["data.json"]).unwrap();
    assert_eq!(
        data["switchyard"]["tenants"]["acme"]["deny_actions"],
        json!(["cache/*/set"])
    );
    assert!(
        data["switchyard"]["roles"]["admin"].is_array(),
        "global data is there"
    );
    let globex_files = download(globex_key.clone()).await;
    let data: Value = serde_json::from_slice(&globex_files["data.json"]).unwrap();
    assert!(
        data["switchyard"]["tenants"].get("acme").is_none(),
        "{data}"
    );
    assert!(
        !String::from_utf8_lossy(&globex_files["data.json"]).contains("night_clerk"),
        "globex never sees acme's roles"
    );

    // Emptied again: acme's set is allowed from the next revision on.
    let (status, body) = op
        .call("PUT", "/admin/tenants/acme/policy", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acme.ok("cache/memory", "set", json!({"key": "k", "value": 4}))
        .await;
    let (_, body) = op.call("GET", "/admin/tenants/acme/policy", None).await;
    assert_eq!(body["policy"], json!({}));
}
