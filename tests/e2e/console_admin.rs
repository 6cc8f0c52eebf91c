//! The operator's and the auditor's console pages in a real browser (headless Chromium driven
//! by playwright-core, see `console/admin.cjs`), against `switchyard serve` with the policy
//! bundle and a Vault-API server (RustyVault behind the test shim): tenants created,
//! suspended, resumed and deleted from the list; a tenant's limits, policy data, first key and
//! usage; that key's admin kept out of the operator's pages, rolling a config back from its
//! history, writing and rotating a secret that no page shows, reading the audit log with its
//! chain verified and the decisions, and exporting both. What the browser did is then read
//! back from the API and from Vault. Screenshots: `target/console-screenshots/`.

use crate::common;

use std::process::Command;

use common::vault::{RealVault, start_shim};
use common::{Api, Server, cli, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

const JOURNEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/console/admin.cjs");
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/console-screenshots");

#[tokio::test(flavor = "multi_thread")]
async fn operators_run_tenants_and_auditors_read_history_secrets_and_logs_in_a_browser() {
    let playwright = std::env::var("SWITCHYARD_TEST_PLAYWRIGHT").expect(
        "SWITCHYARD_TEST_PLAYWRIGHT is not set: scripts/test installs playwright-core and Debian's chromium",
    );
    let vault = RealVault::from_env();
    let shim = start_shim(vault.addr.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = common::policy_bundle(dir.path(), "console-admin-r1");
    let config = write_config(
        dir.path(),
        &format!("[policy]\nbundle = \"{}\"\n", bundle.display()),
    );
    let operator_key = cli(
        dir.path(),
        &["operator", "create-key", "--name", "ops-olga"],
    )
    .trim()
    .to_owned();
    let mut env = vec![
        ("VAULT_ADDR", format!("http://{shim}")),
        ("VAULT_TOKEN", vault.token.clone()),
        ("SWITCHYARD_VAULT_KV_VERSION", "1".to_owned()),
    ];
    let server = Server::start_with_env(dir.path(), &["--config", &config], &mut env);
    let run = std::process::id();
    let (first, second) = (format!("First-{run}-Pw"), format!("Second-{run}-Pw"));
    std::fs::create_dir_all(SCREENSHOTS).unwrap();

    let out = Command::new("node")
        .arg(JOURNEY)
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("CONSOLE_BASE", &server.base)
        .env("SCREENSHOTS", SCREENSHOTS)
        .env("OPERATOR_KEY", &operator_key)
        .env("FIRST_SECRET", &first)
        .env("SECOND_SECRET", &second)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser journey failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The operator: only the tenants' page in the navigation; each move shown by its badge.
    assert_eq!(seen["operator_nav"], json!(["Tenants"]), "{seen}");
    assert_eq!(seen["created"], "Tenant doomed created.", "{seen}");
    assert_eq!(seen["suspended"], "suspended", "{seen}");
    assert_eq!(
        seen["suspended_notice"], "Tenant umbra suspended: its calls are refused.",
        "{seen}"
    );
    assert_eq!(seen["resumed"], "active", "{seen}");
    assert_eq!(seen["deleted"], "deleting", "{seen}");
    assert!(
        seen["deleted_notice"]
            .as_str()
            .unwrap()
            .starts_with("Tenant doomed is being deleted"),
        "{seen}"
    );
    assert_eq!(seen["notice_after_reload"], 0, "{seen}");
    assert_eq!(seen["limits_notice"], "Limits saved.", "{seen}");
    assert!(
        seen["half_budget"]
            .as_str()
            .unwrap()
            .contains("request budget"),
        "{seen}"
    );
    assert!(
        seen["policy_notice"]
            .as_str()
            .unwrap()
            .starts_with("Policy saved: bundle revision"),
        "{seen}"
    );
    assert!(
        seen["bad_policy"]
            .as_str()
            .unwrap()
            .contains("/deny_actions/0"),
        "{seen}"
    );
    assert_eq!(seen["issued_key_prefix"], "sy", "{seen}");
    assert_eq!(
        seen["key_after_reload"], 0,
        "the key was shown twice: {seen}"
    );

    // The tenant's admin: no operator page in the navigation, and the API's refusal said plainly.
    assert_eq!(
        seen["admin_nav"],
        json!([
            "Catalog",
            "Schemas",
            "Tenant",
            "Tasks",
            "Secrets",
            "Audit log",
            "Decisions"
        ]),
        "{seen}"
    );
    assert_eq!(seen["admin_at_operator_page"], 403, "{seen}");
    let message = seen["admin_operator_message"].as_str().unwrap();
    assert!(
        message.contains("for platform operators") && message.contains("operator_only"),
        "{seen}"
    );

    // Config history: two configures and a rollback to 1, newest first, with actor and diff.
    assert_eq!(
        seen["rollback_notice"], "Rolled back to version 1: saved as version 3, now running.",
        "{seen}"
    );
    assert!(
        seen["history_url"]
            .as_str()
            .unwrap()
            .ends_with("/console/providers/cache/memory/history"),
        "the rollback did not redirect back: {seen}"
    );
    let history = seen["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{seen}");
    let versions: Vec<u64> = history
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1], "{seen}");
    assert_eq!(history[0]["note"], "rollback to 1", "{seen}");
    assert_eq!(history[0]["current"], true, "{seen}");
    assert_eq!(history[0]["rollback"], false, "{seen}");
    assert_eq!(
        history[0]["changes"], "changed /default_ttl_ms: 5000 → 60000",
        "{seen}"
    );
    assert_eq!(
        history[1]["changes"], "changed /default_ttl_ms: 60000 → 5000",
        "{seen}"
    );
    assert!(
        history[2]["changes"]
            .as_str()
            .unwrap()
            .contains("added /default_ttl_ms = 60000"),
        "{seen}"
    );
    assert!(
        history
            .iter()
            .all(|v| v["actor"].as_str().unwrap().starts_with("key:")),
        "{seen}"
    );
    assert!(history[1]["rollback"] == true && history[2]["rollback"] == true);

    assert!(
        seen["denied_by_tenant_policy"]
            .as_str()
            .unwrap()
            .contains("policy_denied"),
        "{seen}"
    );

    // Secrets: written, rotated, listed without their values; the value reached Vault only.
    assert_eq!(
        seen["secret_written"],
        "Secret pg-password written: version 1. Configs use it as secret://vault/pg-password.",
        "{seen}"
    );
    assert_eq!(seen["rotate_name"], "pg-password", "{seen}");
    assert_eq!(seen["rotate_value"], "", "{seen}");
    assert!(
        seen["secret_rotated"]
            .as_str()
            .unwrap()
            .contains("version 2"),
        "{seen}"
    );
    let row = &seen["secret_rows"][0];
    assert_eq!(
        (&row[0], &row[1], &row[2]),
        (
            &json!("pg-password"),
            &json!("2"),
            &json!("secret://vault/pg-password")
        ),
        "{seen}"
    );
    assert_eq!(seen["secret_in_pages"], false, "a page showed a secret");
    let stored: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/secret/tenants/umbra/pg-password",
            vault.addr
        ))
        .header("x-vault-token", &vault.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["data"]["value"],
        second.as_str(),
        "Vault holds: {stored}"
    );

    // The audit log: the operator's and the admin's changes, on a chain that holds.
    assert!(
        seen["chain"].as_str().unwrap().starts_with("verified"),
        "{seen}"
    );
    let operations: Vec<&str> = seen["audit_operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for operation in [
        "create",
        "suspend",
        "resume",
        "update",
        "configure",
        "rollback",
        "rotate",
    ] {
        assert!(operations.contains(&operation), "{operation}: {seen}");
    }
    assert_eq!(seen["filtered_audit_rows"], 3, "{seen}");
    assert_eq!(seen["audit_export_type"], "application/x-ndjson", "{seen}");
    assert_eq!(
        seen["audit_export_disposition"], "attachment; filename=\"audit-log.jsonl\"",
        "{seen}"
    );
    let exported: Vec<Value> = seen["audit_export"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len() as u64, seen["audit_rows"].as_u64().unwrap());
    assert!(exported.iter().all(|r| r["tenant"] == "umbra"), "{seen}");

    // Decisions: listed, filtered, exported.
    assert!(seen["decision_rows"].as_u64().unwrap() > 0, "{seen}");
    assert!(seen["denied_rows"].as_u64().unwrap() >= 1, "{seen}");
    assert!(seen["denied_rows"].as_u64() < seen["decision_rows"].as_u64());
    assert_eq!(seen["decisions_csv_status"], 200, "{seen}");
    let csv = seen["decisions_csv"].as_str().unwrap();
    assert!(csv.starts_with("decision_id,at_ms,tenant"), "{csv}");
    assert!(csv.lines().count() > 1, "{csv}");

    // The operator's view of the tenant afterwards: usage counted, limits kept, export whole.
    assert!(seen["usage_calls"].as_f64().unwrap() > 0.0, "{seen}");
    assert!(
        seen["usage_days"]
            .as_str()
            .unwrap()
            .ends_with("over 7 days"),
        "{seen}"
    );
    assert_eq!(seen["limits_shown"], "1000", "{seen}");
    assert_eq!(seen["stored_rows"], 5, "{seen}");
    assert_eq!(seen["tenant_export"]["tenant"]["id"], "umbra", "{seen}");

    // What the browser did is what the API holds.
    let operator = Api::new(&server, &operator_key);
    let (status, tenants) = operator.get("/admin/tenants").await;
    assert_eq!(status, StatusCode::OK);
    let status_of = |id: &str| {
        tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].clone())
    };
    assert_eq!(status_of("umbra"), Some(json!("active")));
    assert_eq!(status_of("paused"), Some(json!("suspended")));
    assert_eq!(status_of("doomed"), Some(json!("deleting")));
    let (_, shown) = operator.get("/admin/tenants/umbra").await;
    assert_eq!(
        shown["limits"],
        json!({"rate_limit": {"requests": 1000, "per_seconds": 1, "burst": 200},
               "decision_retention_days": 30, "max_api_keys": 10}),
        "{shown}"
    );
    assert_eq!(
        shown["policy"]["deny_actions"],
        json!(["payments/*/refund", "cache/memory/delete"]),
        "{shown}"
    );
    let (_, configs) = operator.get("/admin/tenants/umbra/export").await;
    let memory = configs["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "memory")
        .unwrap();
    assert_eq!(memory["version"], 3, "{configs}");
    assert_eq!(memory["config"]["default_ttl_ms"], 60000, "{configs}");

    // Neither value reached the server's log.
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    for secret in [&first, &second] {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
    for shot in [
        "admin-tenants.png",
        "admin-tenant.png",
        "admin-refused.png",
        "config-history.png",
        "secrets.png",
        "audit-log.png",
        "decisions.png",
    ] {
        let size = std::fs::metadata(format!("{SCREENSHOTS}/{shot}"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 1000, "{shot} was not written");
    }
}
