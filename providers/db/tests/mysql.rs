//! Behaviour specific to `db/mysql` (its siloed tenancy, the SQL it refuses); the behaviour
//! every engine shares is the conformance kit's db suite (`provider-runtime/conformance/src/db`).

#[path = "support/mysql.rs"]
mod my;
#[path = "support/prefix.rs"]
mod prefix;

use std::sync::Arc;

use serde_json::json;
use switchyard_provider_db::MysqlFactory;
use switchyard_provider_db::mysql::tenant_database;
use switchyard_spi::testkit::Harness;
use switchyard_spi::{ErrorCode, HealthStatus};

fn engine() -> (my::TestPrefix, Harness) {
    let prefix = my::test_prefix("m");
    let factory = MysqlFactory::new(my::server_url())
        .with_secret("mysql-test-secret")
        .with_database_prefix(&prefix.prefix);
    (prefix, Harness::new(Arc::new(factory)))
}

fn statement_failed_at(err: &switchyard_spi::ProviderError, pointer: &str) {
    assert_eq!(err.code, ErrorCode::StatementFailed, "{err:?}");
    assert!(
        err.errors.iter().any(|e| e.pointer == pointer),
        "no field error at {pointer} in {err:?}"
    );
}

#[tokio::test]
async fn another_tenants_user_cannot_reach_its_database() {
    let (prefix, harness) = engine();
    let acme = harness.tenant("acme").await;
    let globex = harness.tenant("globex").await;
    acme.ok("execute", json!({"sql": "CREATE TABLE secrets (v TEXT)"}))
        .await;
    acme.ok(
        "execute",
        json!({"sql": "INSERT INTO secrets VALUES ('acme only')"}),
    )
    .await;
    let acme_db = tenant_database(&prefix.prefix, "acme");
    // Qualified by database name: the server refuses globex's user.
    let err = globex
        .err(
            "query",
            json!({"sql": format!("SELECT v FROM `{acme_db}`.secrets")}),
        )
        .await;
    statement_failed_at(&err, "/sql");
    assert!(err.detail.contains("denied"), "{err:?}");
    for sql in [
        format!("INSERT INTO `{acme_db}`.secrets VALUES ('from globex')"),
        format!("DROP TABLE `{acme_db}`.secrets"),
        format!("CREATE TABLE `{acme_db}`.planted (x INTEGER)"),
        format!("GRANT SELECT ON `{acme_db}`.* TO CURRENT_USER"),
    ] {
        let err = globex.err("execute", json!({"sql": sql})).await;
        statement_failed_at(&err, "/sql");
    }
    // Its grants name its own database only.
    let grants = globex.ok("query", json!({"sql": "SHOW GRANTS"})).await;
    let grants = grants["rows"].to_string();
    assert!(!grants.contains(&acme_db), "{grants}");
    assert!(
        grants.contains(&tenant_database(&prefix.prefix, "globex")),
        "{grants}"
    );
    assert!(!grants.contains("ALL PRIVILEGES ON *.*"), "{grants}");
    // acme's data is untouched.
    let result = acme
        .ok("query", json!({"sql": "SELECT v FROM secrets"}))
        .await;
    assert_eq!(result["rows"], json!([{"v": "acme only"}]));
}

#[tokio::test]
async fn query_cannot_write_even_through_an_implicit_commit() {
    let (_prefix, harness) = engine();
    let t = harness.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE notes (body TEXT)"}))
        .await;
    for sql in [
        "CREATE TABLE other (x INTEGER)",
        "/*!CREATE TABLE other (x INTEGER)*/",
        "TRUNCATE TABLE notes",
        "RENAME TABLE notes TO gone",
    ] {
        let err = t.err("query", json!({"sql": sql})).await;
        statement_failed_at(&err, "/sql");
    }
    let tables = t.ok("metadata", json!({})).await;
    assert_eq!(tables["tables"].as_array().unwrap().len(), 1, "{tables}");
}

#[tokio::test]
async fn one_call_runs_one_statement() {
    let (_prefix, harness) = engine();
    let t = harness.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE notes (body TEXT)"}))
        .await;
    let err = t
        .err(
            "execute",
            json!({"sql": "INSERT INTO notes VALUES ('a'); DROP TABLE notes"}),
        )
        .await;
    statement_failed_at(&err, "/sql");
    let err = t
        .err(
            "execute",
            json!({"sql": "SET SESSION TRANSACTION READ WRITE"}),
        )
        .await;
    statement_failed_at(&err, "/sql");
    let result = t
        .ok("query", json!({"sql": "SELECT count(*) AS n FROM notes"}))
        .await;
    assert_eq!(result["rows"], json!([{"n": 0}]));
}

#[tokio::test]
async fn health_is_up_and_a_stopped_instance_refuses_calls() {
    let (_prefix, harness) = engine();
    let t = harness.tenant("acme").await;
    assert_eq!(t.provider.health().await.status, HealthStatus::Up);
    t.provider.stop().await;
    let err = t.err("query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
}

#[tokio::test]
async fn the_tenants_max_rows_caps_every_query() {
    let (_prefix, harness) = engine();
    let t = harness
        .tenant_with_config("acme", json!({"max_rows": 2, "max_connections": 1}))
        .await;
    let five = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) SELECT x FROM n";
    let capped = t.ok("query", json!({"sql": five, "max_rows": 4})).await;
    assert_eq!(capped["row_count"], 2);
    assert_eq!(capped["truncated"], true);
}
