//! The entity-change audit log through a real `switchyard serve` with the repository's policy:
//! key changes are recorded in their own tenant's chain with who, request id and address and
//! never the secret; an auditor of one tenant never sees another's records (list, export,
//! verify); a key without the audit scope is refused; the export round-trips and re-verifies
//! offline with the published hash rule; an UPDATE made directly in the store is named by
//! `/audit/log/verify`.

use crate::common;

use std::time::Duration;

use common::{Api, Server, cli, policy_bundle, tenant_with_key, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_runtime::store::AuditRecord;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const CSV_HEADER: &str =
    "tenant,seq,at,actor,entity,operation,old,new,request_id,source,prev_hash,hash";

/// The key's subject as the gateway names it: `key:<id>` of `sy_<id>_<secret>`.
fn subject_of(key: &str) -> String {
    let id = key.strip_prefix("sy_").unwrap().split('_').next().unwrap();
    format!("key:{id}")
}

fn key_with(dir: &std::path::Path, tenant: &str, scopes: &str) -> String {
    cli(
        dir,
        &["key", "create", "--tenant", tenant, "--scopes", scopes],
    )
    .trim()
    .to_owned()
}

/// A GET answered with its status and body text.
async fn text(api: &Api, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
    let mut request = api
        .raw()
        .get(format!("{}{path}", api.base))
        .bearer_auth(api.key());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// Creates a key through the API under request id `request_id`; answers its id and plaintext.
async fn create_key(admin: &Api, scopes: &str, request_id: &str) -> (String, String) {
    let response = admin
        .raw()
        .post(format!("{}/keys", admin.base))
        .bearer_auth(admin.key())
        .header("x-request-id", request_id)
        .json(&json!({"scopes": scopes}))
        .send()
        .await
        .unwrap();
    let (status, body) = common::decode(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["key"].as_str().unwrap().to_owned(),
    )
}

async fn revoke_key(admin: &Api, id: &str) {
    let (status, body) = admin.post(&format!("/keys/{id}/revoke"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Every record of the auditor's tenant, in `seq` order, paged `limit` at a time.
async fn all_records(auditor: &Api, limit: usize) -> Vec<AuditRecord> {
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/audit/log?order=seq&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = auditor.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for record in page["records"].as_array().unwrap() {
            records.push(serde_json::from_value(record.clone()).unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return records,
        }
    }
}

/// The published hash rule, written out here rather than taken from the store: SHA-256 (hex)
/// of the compact JSON array of every field but `hash`, old and new as their JSON text.
fn offline_hash(record: &AuditRecord) -> String {
    let fields = json!([
        record.tenant,
        record.seq,
        record.at,
        record.actor,
        record.entity,
        record.operation,
        record.old.as_ref().map(Value::to_string),
        record.new.as_ref().map(Value::to_string),
        record.request_id,
        record.source,
        record.prev_hash,
    ]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// Checks a chain as an auditor would with the export alone; answers the first bad seq.
fn offline_check(records: &[AuditRecord]) -> Option<i64> {
    let mut prev = GENESIS.to_owned();
    for (n, record) in records.iter().enumerate() {
        if record.seq != n as i64 + 1
            || record.prev_hash != prev
            || offline_hash(record) != record.hash
        {
            return Some(record.seq);
        }
        prev.clone_from(&record.hash);
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tenants_auditor_sees_verifies_and_exports_only_its_own_key_changes() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = policy_bundle(dir.path(), "r1");
    let config = write_config(
        dir.path(),
        &format!("[policy]\nbundle = \"{}\"\n", bundle.display()),
    );
    let acme_admin_key = tenant_with_key(dir.path(), "acme", "*");
    let globex_admin_key = tenant_with_key(dir.path(), "globex", "*");
    let acme_auditor_key = key_with(dir.path(), "acme", "audit");
    let globex_auditor_key = key_with(dir.path(), "globex", "audit");
    let acme_developer_key = key_with(dir.path(), "acme", "read,invoke");
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let acme_admin = Api::new(&server, &acme_admin_key);
    let globex_admin = Api::new(&server, &globex_admin_key);
    let acme = Api::new(&server, &acme_auditor_key);
    let globex = Api::new(&server, &globex_auditor_key);

    let (acme_read, acme_read_secret) = create_key(&acme_admin, "read", "req-acme-1").await;
    let (acme_invoke, acme_invoke_secret) = create_key(&acme_admin, "invoke", "req-acme-2").await;
    revoke_key(&acme_admin, &acme_read).await;
    let (globex_key, globex_secret) = create_key(&globex_admin, "read,audit", "req-globex-1").await;
    revoke_key(&globex_admin, &globex_key).await;
    revoke_key(&acme_admin, &acme_invoke).await;
    // Another tenant's key is not globex's to revoke: refused, and recorded nowhere.
    let (status, _) = globex_admin
        .post(&format!("/keys/{acme_read}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // acme's key changes, newest first, with who, the request id and the address.
    let (status, page) = acme.get("/audit/log?entity=api_key/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let records: Vec<AuditRecord> = serde_json::from_value(page["records"].clone()).unwrap();
    // The keys the CLI made for the test's callers are recorded too, as the CLI's.
    let (by_cli, records): (Vec<AuditRecord>, Vec<AuditRecord>) =
        records.into_iter().partition(|r| r.actor == "cli");
    assert_eq!(
        by_cli.len(),
        3,
        "the keys the CLI made for acme: {by_cli:?}"
    );
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.entity.clone(), r.operation.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (format!("api_key/{acme_invoke}"), "revoke".to_owned()),
            (format!("api_key/{acme_read}"), "revoke".to_owned()),
            (format!("api_key/{acme_invoke}"), "create".to_owned()),
            (format!("api_key/{acme_read}"), "create".to_owned()),
        ]
    );
    let created = &records[3];
    assert_eq!(created.tenant, "acme");
    assert_eq!(created.actor, subject_of(&acme_admin_key));
    assert_eq!(created.request_id.as_deref(), Some("req-acme-1"));
    assert_eq!(created.source.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        created.new,
        Some(json!({"id": acme_read, "scopes": "read"}))
    );
    let (status, page) = acme
        .get(&format!(
            "/audit/log?operation=revoke&actor={}",
            subject_of(&acme_admin_key)
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["records"].as_array().unwrap().len(), 2, "{page}");

    // List: each auditor sees its own tenant only; naming the other tenant is refused.
    let acme_all = all_records(&acme, 2).await;
    let globex_all = all_records(&globex, 2).await;
    assert!(acme_all.len() >= 4 && globex_all.len() >= 2);
    assert!(acme_all.iter().all(|r| r.tenant == "acme"));
    assert!(globex_all.iter().all(|r| r.tenant == "globex"));
    assert!(
        !acme_all.iter().any(|r| r.entity.contains(&globex_key)),
        "acme's log holds globex's key"
    );
    assert!(
        globex_all
            .iter()
            .any(|r| r.entity == format!("api_key/{globex_key}") && r.operation == "revoke")
    );
    for path in ["/audit/log", "/audit/log/export", "/audit/log/verify"] {
        let (status, _, body) = text(&acme, path, &[("x-tenant-id", "globex")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let (status, _, body) = text(&acme, &format!("{path}?tenant=globex"), &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["code"], "request_invalid");
        assert_eq!(problem["errors"][0]["pointer"], "/tenant");
    }

    // A key without the audit scope: 403 on every route.
    let developer = Api::new(&server, &acme_developer_key);
    for path in [
        "/audit/log",
        "/audit/log/export?format=csv",
        "/audit/log/verify",
    ] {
        let (status, _, body) = text(&developer, path, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }

    // Export as JSON lines: the same records as the list, every one, re-verifiable offline.
    let (status, content_type, lines) = text(&acme, "/audit/log/export?format=jsonl", &[]).await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    assert_eq!(content_type, "application/x-ndjson");
    let exported: Vec<AuditRecord> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(exported, acme_all);
    assert_eq!(
        offline_check(&exported),
        None,
        "the exported chain does not verify"
    );
    let mut forged = exported.clone();
    forged[1].actor.push('x');
    assert_eq!(
        offline_check(&forged),
        Some(forged[1].seq),
        "the offline check can fail"
    );
    for secret in [
        &acme_read_secret,
        &acme_invoke_secret,
        &globex_secret,
        &acme_admin_key,
    ] {
        assert!(
            !lines.contains(secret.as_str()),
            "a key's secret is in the export"
        );
    }
    let (_, _, globex_lines) = text(&globex, "/audit/log/export", &[]).await;
    assert_eq!(globex_lines.lines().count(), globex_all.len());
    assert!(!globex_lines.contains("\"tenant\":\"acme\""));

    // CSV: a header, then one row per record.
    let (status, content_type, csv) = text(&acme, "/audit/log/export?format=csv", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv");
    let rows: Vec<&str> = csv.trim_end_matches("\r\n").split("\r\n").collect();
    assert_eq!(rows[0], CSV_HEADER);
    assert_eq!(rows.len(), 1 + acme_all.len(), "{csv}");
    for (row, record) in rows[1..].iter().zip(&acme_all) {
        assert!(
            row.starts_with(&format!("acme,{},", record.seq)) && row.ends_with(&record.hash),
            "{row}"
        );
    }

    // The chain check, then an UPDATE made directly in the store's file.
    let (status, check) = acme.get("/audit/log/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        check,
        json!({"records": acme_all.len(), "ok": true, "first_bad_seq": null, "why": null})
    );
    let tampered = acme_all[1].seq;
    let database = dir.path().join("platform.db");
    let sql = format!(
        "UPDATE audit_log SET new_value = '{{\"id\":\"{acme_invoke}\",\"scopes\":\"*\"}}' \
         WHERE tenant_id = 'acme' AND seq = {tampered};"
    );
    let out = std::process::Command::new("sqlite3")
        .arg(&database)
        .arg(&sql)
        .output()
        .expect("the sqlite3 CLI runs (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, check) = acme.get("/audit/log/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["first_bad_seq"], tampered, "{check}");
    assert!(
        check["why"].as_str().unwrap().contains("altered"),
        "{check}"
    );
    // globex's chain is untouched, and its auditor learns nothing of acme's.
    let (_, check) = globex.get("/audit/log/verify").await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["records"], globex_all.len());
    // The operator's check on the store itself agrees, and fails the command.
    let verify = |tenant: &str| {
        std::process::Command::new(common::BIN)
            .args(["audit", "verify", "--tenant", tenant])
            .env("SWITCHYARD_DATA_DIR", dir.path())
            .output()
            .unwrap()
    };
    let broken = verify("acme");
    assert!(!broken.status.success());
    let printed: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(printed["first_bad_seq"], tampered, "{printed}");
    assert!(String::from_utf8_lossy(&broken.stderr).contains("broken at record"));
    let sound = verify("globex");
    assert!(
        sound.status.success(),
        "{}",
        String::from_utf8_lossy(&sound.stderr)
    );
    assert!(!verify("no-such-tenant").status.success());
    // What an auditor exported before the change shows it too.
    let (_, _, lines) = text(&acme, "/audit/log/export", &[]).await;
    let now: Vec<AuditRecord> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_ne!(now[1], exported[1]);
    assert_eq!(offline_check(&now), Some(tampered));
}

/// A business service's state change reaches its tenant's audit log through the hosted outbox
/// relay, once per event, however often the outbox is relayed.
#[tokio::test(flavor = "multi_thread")]
async fn a_posted_journal_is_recorded_once_in_its_own_tenants_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("SWITCHYARD_LEDGER_BUS", "bus/embedded".to_owned())];
    let server = Server::start_with_env(dir.path(), &[], &mut env);
    let admin = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let auditor = Api::new(&server, &key_with(dir.path(), "acme", "audit"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    for (code, kind) in [("1000", "asset"), ("4000", "income")] {
        admin
            .service_ok(
                "ledger",
                "create_account",
                json!({"code": code, "name": code, "type": kind, "currency": "EUR"}),
            )
            .await;
    }
    admin
        .service_ok(
            "ledger",
            "post_journal",
            json!({
                "journal_id": "J-audit",
                "posting_time": "2026-03-01T09:00:00Z",
                "memo": "e2e",
                "lines": [
                    {"account": "1000", "debit": "12.50", "currency": "EUR"},
                    {"account": "4000", "credit": "12.50", "currency": "EUR"},
                ],
            }),
        )
        .await;
    let path = "/audit/log?entity=service/ledger/&operation=ledger.journal.posted";
    let records = common::eventually(
        "the posting's audit record",
        Duration::from_secs(20),
        || async {
            let (status, page) = auditor.get(path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let records = page["records"].as_array().unwrap().clone();
            (!records.is_empty()).then_some(records)
        },
    )
    .await;
    // The hosted relay has marked it sent; relaying by hand finds nothing new to record.
    admin
        .service_ok(
            "outbox",
            "relay",
            json!({"db": "db/sqlite", "bus": "bus/embedded", "max_events": 10}),
        )
        .await;
    let (_, page) = auditor.get(path).await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1, "{page}");
    let record = &records[0];
    assert_eq!(record["tenant"], "acme");
    assert_eq!(record["actor"], "system:relay");
    assert_eq!(record["new"]["journal_id"], "J-audit", "{record}");
    assert!(record["request_id"].is_string(), "the event id: {record}");
    let (status, page) = globex.get("/audit/log?entity=service/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["records"],
        json!([]),
        "globex sees acme's business change"
    );
    let (_, check) = auditor.get("/audit/log/verify").await;
    assert_eq!(check["ok"], true, "{check}");
}
