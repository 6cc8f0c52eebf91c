//! Policy as code through the real gateway: RBAC, ABAC, tenancy, the decision log, the
//! auditors' endpoints, and hot reload that refuses a tampered bundle.

use crate::common;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::{Api, Idp, Server, cli, decode, tenant_with_key, write_config};
use serde_json::json;
use switchyard_contracts::openapi;
use switchyard_contracts::schema::Compiled;

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
const SECRET: &str = "bundle-signing-secret-for-tests";

fn build_bundle(dir: &Path, revision: &str, out: &str) -> Vec<u8> {
    let key = dir.join("signing.key");
    std::fs::write(&key, SECRET).unwrap();
    let out_path = dir.join(out);
    cli(
        dir,
        &[
            "policy",
            "build",
            "--dir",
            POLICIES,
            "--revision",
            revision,
            "--out",
            out_path.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
            "--sign-algorithm",
            "HS256",
        ],
    );
    std::fs::read(out_path).unwrap()
}

/// The same bundle with one byte of `data.json` changed and its signature kept.
fn tamper(bundle: &[u8]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bundle));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if path.trim_start_matches('/') == "data.json" {
            let text = String::from_utf8(bytes)
                .unwrap()
                .replacen("10000", "99999", 1);
            bytes = text.into_bytes();
        }
        entries.push((path, bytes));
    }
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path.trim_start_matches('/'), bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

async fn revision(api: &Api) -> String {
    let (status, body) = api.get("/policies/revision").await;
    assert_eq!(status, 200, "{body}");
    body["revision"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundle_decides_logs_and_hot_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start();
    let bundle = build_bundle(dir.path(), "r1", "r1.tar.gz");
    let live = dir.path().join("live.tar.gz");
    std::fs::write(&live, &bundle).unwrap();
    std::fs::write(dir.path().join("verify.key"), SECRET).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "{}[policy]\nbundle = \"{}\"\nverify_key_file = \"{}\"\nverify_algorithm = \"HS256\"\npoll_interval_ms = 200\n",
            idp.oidc_config(),
            live.display(),
            dir.path().join("verify.key").display()
        ),
    );
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let admin_key = tenant_with_key(dir.path(), "acme", "*");
    let auditor = Api::new(
        &server,
        cli(
            dir.path(),
            &["key", "create", "--tenant", "acme", "--scopes", "audit"],
        )
        .trim(),
    );
    tenant_with_key(dir.path(), "globex", "*");
    let globex_auditor = Api::new(
        &server,
        cli(
            dir.path(),
            &["key", "create", "--tenant", "globex", "--scopes", "audit"],
        )
        .trim(),
    );

    let admin = Api::new(&server, &admin_key);
    admin
        .ok(
            "db/sqlite",
            "execute",
            json!({"sql": "CREATE TABLE t (n INTEGER)"}),
        )
        .await;

    // RBAC: a clerk may query but not execute.
    let clerk = Api::new(
        &server,
        &idp.token("carl", "acme", "read invoke", &["clerk"]),
    );
    assert_eq!(
        clerk
            .post(
                "/providers/db/sqlite/query",
                json!({"params": {"sql": "SELECT 1 AS one"}})
            )
            .await
            .0,
        200
    );
    let (status, denied) = clerk
        .post(
            "/providers/db/sqlite/execute",
            json!({"params": {"sql": "DELETE FROM t"}}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), denied["code"].as_str()),
        (403, Some("policy_denied")),
        "{denied}"
    );
    let denied_id = denied["decision_id"]
        .as_str()
        .expect("a denial carries its decision id")
        .to_owned();

    // ABAC: a ledger posting above 10,000 needs an approver.
    let developer = Api::new(
        &server,
        &idp.token("dev", "acme", "read invoke", &["developer"]),
    );
    let approver = Api::new(
        &server,
        &idp.token("ann", "acme", "read invoke", &["approver"]),
    );
    let big = json!({"params": {"amount": 20000, "currency": "EUR"}});
    let (status, body) = developer
        .post("/services/ledger/post_journal", big.clone())
        .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("policy_denied")),
        "{body}"
    );
    let (status, body) = approver.post("/services/ledger/post_journal", big).await;
    assert_ne!(
        status.as_u16(),
        403,
        "the approver passes the policy: {body}"
    );
    let (status, body) = developer
        .post(
            "/services/ledger/post_journal",
            json!({"params": {"amount": 500}}),
        )
        .await;
    assert_ne!(
        status.as_u16(),
        403,
        "a small posting needs no approver: {body}"
    );

    // Tenancy: a tenant admin cannot act in another tenant.
    let tenant_admin = Api::new(&server, &idp.token("root", "acme", "*", &["admin"]));
    let response = tenant_admin
        .raw()
        .post(format!("{}/providers/db/sqlite/query", server.base))
        .bearer_auth(tenant_admin.key())
        .header("x-tenant-id", "globex")
        .json(&json!({"params": {"sql": "SELECT 1"}}))
        .send()
        .await
        .unwrap();
    let (status, body) = decode(response).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("policy_denied")),
        "{body}"
    );

    // Every decision is in the log with the running revision; auditors see only their tenant.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, log) = auditor.get("/policies/decisions?limit=500").await;
    assert_eq!(status, 200, "{log}");
    for (component, body) in [
        ("DecisionPage", &log),
        (
            "PolicyRevision",
            &json!({"revision": revision(&auditor).await}),
        ),
    ] {
        let schema = Compiled::new(&openapi::components()[component], component).unwrap();
        assert_eq!(
            schema.check(body),
            vec![],
            "{component} off-contract: {body}"
        );
    }
    let decisions = log["decisions"].as_array().unwrap();
    assert!(decisions.len() >= 7, "{log}");
    assert!(
        decisions
            .iter()
            .all(|d| d["revision"] == "r1" && d["tenant"] == "acme"),
        "{log}"
    );
    let logged_denial = decisions
        .iter()
        .find(|d| d["decision_id"] == denied_id.as_str())
        .expect("the denial is logged");
    assert_eq!(
        (
            logged_denial["allowed"].clone(),
            logged_denial["subject"].clone()
        ),
        (json!(false), json!("oidc:carl"))
    );
    let (_, denials) = auditor.get("/policies/decisions?result=deny").await;
    assert_eq!(
        denials["decisions"].as_array().unwrap().len(),
        3,
        "{denials}"
    );
    let (_, theirs) = globex_auditor.get("/policies/decisions").await;
    assert!(
        theirs["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["tenant"] == "globex"),
        "{theirs}"
    );
    let (status, body) = clerk.get("/policies/decisions").await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("scope_forbidden")),
        "{body}"
    );

    // Services ask the same questions through auth/opa, in their own tenant's name only.
    let asked = admin
        .ok(
            "auth/opa",
            "evaluate",
            json!({"input": {"tenant": "globex", "roles": ["clerk"], "operation": "invoke",
            "domain": "db", "provider": "sqlite", "action": "execute", "resource": {}}}),
        )
        .await;
    assert_eq!(
        (
            asked["decision"]["allow"].clone(),
            asked["revision"].clone()
        ),
        (json!(false), json!("r1")),
        "{asked}"
    );

    // Auditors download the running bundle byte for byte.
    let served = auditor
        .raw()
        .get(format!("{}/policies/bundle", server.base))
        .bearer_auth(auditor.key())
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["x-bundle-revision"], "r1");
    assert_eq!(served.bytes().await.unwrap().to_vec(), bundle);

    // A tampered bundle is refused and r1 keeps serving; a valid r2 is picked up.
    let r2 = build_bundle(dir.path(), "r2", "r2.tar.gz");
    std::fs::write(&live, tamper(&r2)).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(revision(&auditor).await, "r1");
    assert_eq!(
        clerk
            .post(
                "/providers/db/sqlite/query",
                json!({"params": {"sql": "SELECT 1 AS one"}})
            )
            .await
            .0,
        200
    );
    std::fs::write(&live, &r2).unwrap();
    let mut reloaded = false;
    for _ in 0..40 {
        if revision(&auditor).await == "r2" {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "a valid new bundle was not loaded");
    // The request that saw r2 may have been decided by r1 a moment before the swap; this one
    // is decided after it.
    assert_eq!(revision(&auditor).await, "r2");
    tokio::time::sleep(Duration::from_millis(300)).await; // the decision log is written in batches
    let (_, newest) = auditor.get("/policies/decisions?limit=1").await;
    assert_eq!(newest["decisions"][0]["revision"], "r2");
}

#[test]
fn policy_test_passes_on_the_shipped_policies() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["policy", "test", "--dir", POLICIES]);
    assert!(out.contains(" 0 failed"), "{out}");
}
