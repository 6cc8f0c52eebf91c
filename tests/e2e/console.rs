//! The admin console in a real browser (headless Chromium driven by playwright-core, see
//! `console/journey.cjs`), against `switchyard serve` with the policy bundle and an OIDC
//! issuer: sign in, catalog, a config saved through the generated form, try-it, the live chart,
//! the schema explorer, tenant ops — and an operator refused the admin-only key form by the
//! policy engine even when posting it directly. Screenshots: `target/console-screenshots/`.

use crate::common;

use std::process::Command;

use common::{Api, Idp, Server, cli, tenant_with_key, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_contracts::openapi;
use switchyard_contracts::schema::Compiled;

const JOURNEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/console/journey.cjs");
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/console-screenshots");

#[tokio::test(flavor = "multi_thread")]
async fn admins_run_the_console_in_a_browser_and_operators_cannot_mint_keys() {
    let playwright = std::env::var("SWITCHYARD_TEST_PLAYWRIGHT").expect(
        "SWITCHYARD_TEST_PLAYWRIGHT is not set: scripts/test installs playwright-core and Debian's chromium",
    );
    let dir = tempfile::tempdir().unwrap();
    let bundle = common::policy_bundle(dir.path(), "console-r1");
    let idp = Idp::start();
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\nbundle = \"{}\"\n{}",
            bundle.display(),
            idp.oidc_config()
        ),
    );
    // The suite's verdict on cache/memory is recorded in the platform store; the catalog shows it.
    cli(dir.path(), &["conformance", "cache/memory"]);
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let admin_key = tenant_with_key(dir.path(), "acme", "*");
    let operator = idp.token("olga", "acme", "*", &["operator"]);
    std::fs::create_dir_all(SCREENSHOTS).unwrap();

    let out = Command::new("node")
        .arg(JOURNEY)
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("CONSOLE_BASE", &server.base)
        .env("SCREENSHOTS", SCREENSHOTS)
        .env("ADMIN_KEY", &admin_key)
        .env("OPERATOR_TOKEN", &operator)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser journey failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert!(seen["catalog_rows"].as_u64().unwrap() >= 9, "{seen}");
    assert_eq!(seen["filtered_rows"], 1, "{seen}");
    assert_eq!(seen["first_focus"], "Skip to content", "{seen}");
    assert_eq!(
        seen["memory_certification"], "core+transactions+isolation+resilience",
        "{seen}"
    );
    assert_eq!(seen["no_js_catalog_rows"], seen["catalog_rows"], "{seen}");
    assert!(seen["no_js_filtered_rows"].as_u64().unwrap() >= 1, "{seen}");
    assert!(
        seen["no_js_filtered_rows"].as_u64() < seen["catalog_rows"].as_u64(),
        "{seen}"
    );
    assert_eq!(seen["configured"], "Configured: version 1.", "{seen}");
    assert!(
        seen["set_response"].as_str().unwrap().contains("data"),
        "{seen}"
    );
    assert!(
        seen["get_response"].as_str().unwrap().contains("console"),
        "{seen}"
    );
    assert!(
        seen["curl"]
            .as_str()
            .unwrap()
            .contains("/providers/cache/memory/get"),
        "{seen}"
    );
    let (before, after) = (
        seen["calls_before"].as_f64().unwrap(),
        seen["calls_after"].as_f64().unwrap(),
    );
    assert!(after >= before + 7.0, "the chart did not move: {seen}");
    assert!(seen["schema_sections"].as_u64().unwrap() >= 9, "{seen}");
    assert_eq!(seen["revision"], "console-r1", "{seen}");
    assert!(seen["decision_rows"].as_u64().unwrap() > 0, "{seen}");

    // The operator is refused by the policy engine, on the page and when posting directly.
    assert!(
        seen["operator_page"]
            .as_str()
            .unwrap()
            .contains("policy_denied"),
        "{seen}"
    );
    assert_eq!(seen["operator_post_status"], 403, "{seen}");
    assert!(
        seen["operator_post_body"]
            .as_str()
            .unwrap()
            .contains("policy_denied"),
        "{seen}"
    );
    assert_eq!(seen["forged_post_status"], 403, "{seen}");

    // What the browser did is what the API holds.
    let admin = Api::new(&server, &admin_key);
    let (status, described) = admin.get("/providers/cache/memory").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(described["config"]["values"]["default_ttl_ms"], 60000);
    let new_key = seen["new_key"].as_str().unwrap();
    let reader = Api::new(&server, new_key);
    assert_eq!(reader.get("/providers").await.0, StatusCode::OK);
    let (status, refused) = reader
        .post(
            "/providers/cache/memory/get",
            json!({"params": {"key": "console:1"}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a read key invoked: {refused}"
    );
    let (_, keys) = admin.get("/keys").await;
    let published = Compiled::new(&openapi::components()["KeyList"], "KeyList").unwrap();
    assert!(published.check(&keys).is_empty(), "{keys}");
    // The admin's own key, the read key, and the revoked one; none from the operator.
    let listed = keys["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "the operator minted a key: {keys}");
    let revoked = seen["revoked_id"].as_str().unwrap();
    assert_eq!(
        seen["revoked_notice"],
        format!("Key {revoked} revoked."),
        "{seen}"
    );
    assert!(
        listed
            .iter()
            .any(|k| k["id"] == revoked && k["revoked_at"].is_string()),
        "{keys}"
    );
    // The keys API's refusals, and its tenancy: another tenant's admin neither sees nor
    // revokes acme's keys.
    let (status, bad) = admin.post("/keys", json!({"scopes": "root"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["code"], "params_invalid", "{bad}");
    assert_eq!(bad["errors"][0]["pointer"], "/scopes", "{bad}");
    let (status, missing) = admin.post("/keys/0000000000000000/revoke", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(missing["code"], "resource_not_found", "{missing}");
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let (_, theirs) = globex.get("/keys").await;
    let theirs = theirs["keys"].as_array().unwrap();
    assert_eq!(theirs.len(), 1, "globex sees other keys: {theirs:?}");
    let acme_key = new_key.split('_').nth(1).unwrap();
    let (status, refused) = globex
        .post(&format!("/keys/{acme_key}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert_eq!(reader.get("/providers").await.0, StatusCode::OK);
    for shot in [
        "01-sign-in.png",
        "02-catalog.png",
        "03-provider.png",
        "04-try-it.png",
        "05-live-chart.png",
        "06-schemas.png",
        "07-tenant.png",
        "08-operator-tenant.png",
    ] {
        let size = std::fs::metadata(format!("{SCREENSHOTS}/{shot}"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 1000, "{shot} was not written");
    }
}
