//! Behaviour specific to `db/sqlite` (its config, its file layout, the SQL it refuses); the
//! contract every engine shares is checked by the conformance suite.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_contracts::domains;
use switchyard_provider_db::SqliteFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, HealthStatus};
use tempfile::TempDir;

fn engine() -> (TempDir, Harness) {
    let root = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(Arc::new(SqliteFactory::new(root.path().to_path_buf())));
    (root, harness)
}

async fn count(t: &TenantInstance, table: &str) -> i64 {
    let result = t
        .ok(
            "query",
            json!({"sql": format!("SELECT count(*) AS n FROM {table}")}),
        )
        .await;
    result["rows"][0]["n"]
        .as_i64()
        .expect("count is an integer")
}

const FIVE_ROWS: &str =
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) SELECT x FROM n";

#[test]
fn descriptor_serves_the_db_contract() {
    let (_root, harness) = engine();
    let factory = harness.factory;
    let descriptor = factory.descriptor();
    assert_eq!(
        (descriptor.domain.as_str(), descriptor.name.as_str()),
        ("db", "sqlite")
    );
    assert_eq!(descriptor.actions, domains::actions("db"));
    assert!(descriptor.has_capability("transactions"));
    assert!(descriptor.has_capability("metadata"));
    assert_eq!(descriptor.config_schema["additionalProperties"], false);
}

#[tokio::test]
async fn refuses_sql_that_could_leave_the_tenants_file_or_its_settings() {
    let (root, harness) = engine();
    let t = harness.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE t (x)"})).await;
    let copy = root.path().join("copy.db");
    let refused = [
        ("execute", format!("VACUUM INTO '{}'", copy.display())),
        ("execute", "VACUUM".to_owned()),
        ("execute", "ATTACH DATABASE '' AS scratch".to_owned()),
        ("execute", "PRAGMA journal_mode = DELETE".to_owned()),
        ("execute", "PRAGMA writable_schema = ON".to_owned()),
        ("execute", "PRAGMA foreign_keys = OFF".to_owned()),
        ("query", "SELECT load_extension('/tmp/evil')".to_owned()),
        ("query", "BEGIN".to_owned()),
        ("execute", "BEGIN IMMEDIATE".to_owned()),
        ("execute", "SAVEPOINT mine".to_owned()),
        ("execute", "DETACH DATABASE main".to_owned()),
    ];
    for (action, sql) in refused {
        let err = t.err(action, json!({"sql": sql})).await;
        assert_eq!(err.code, ErrorCode::StatementFailed, "{sql}: {err:?}");
        assert!(err.detail.contains("refused"), "{sql}: {}", err.detail);
    }
    assert!(!copy.exists(), "VACUUM INTO wrote a copy");
}

#[tokio::test]
async fn introspection_pragmas_still_work() {
    let (_root, harness) = engine();
    let t = harness.tenant("acme").await;
    t.ok(
        "execute",
        json!({"sql": "CREATE TABLE t (x INTEGER NOT NULL)"}),
    )
    .await;
    let info = t.ok("query", json!({"sql": "PRAGMA table_info(t)"})).await;
    assert_eq!(info["rows"][0]["name"], "x");
    assert_eq!(info["rows"][0]["notnull"], 1);
}

#[tokio::test]
async fn config_max_rows_is_a_ceiling_callers_can_only_lower() {
    let (_root, harness) = engine();
    let t = harness
        .tenant_with_config("acme", json!({"max_rows": 2}))
        .await;
    for (asked, expected) in [(None, 2), (Some(4), 2), (Some(1), 1)] {
        let mut params = json!({"sql": FIVE_ROWS});
        if let Some(asked) = asked {
            params["max_rows"] = json!(asked);
        }
        let result = t.ok("query", params).await;
        assert_eq!(result["row_count"], expected, "asked {asked:?}");
        assert_eq!(result["truncated"], true, "asked {asked:?}");
    }
}

#[tokio::test]
async fn invalid_config_is_refused_at_start() {
    let (_root, harness) = engine();
    let tenant = switchyard_spi::TenantId::parse("acme").unwrap();
    let start = harness.factory.start(switchyard_spi::StartContext {
        tenant,
        config: json!({"max_connections": 0}),
        client: None,
    });
    let err = start.await.err().expect("start refused");
    assert_eq!(err.code, ErrorCode::ConfigInvalid);
    assert_eq!(err.errors[0].pointer, "/max_connections");
}

#[tokio::test]
async fn each_tenant_is_one_wal_file_under_a_created_root() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("nested/data");
    let harness = Harness::new(Arc::new(SqliteFactory::new(root.clone())));
    let t = harness.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE t (x)"})).await;
    assert!(root.join("acme.db").is_file(), "data directory not created");
    assert!(root.join("acme.db-wal").exists(), "not in WAL mode");
    assert!(!root.join("globex.db").exists());
}

#[tokio::test]
async fn reconfigure_with_other_pool_settings_keeps_data_on_both_sides() {
    let (_root, harness) = engine();
    let old = harness.tenant("acme").await;
    old.ok("execute", json!({"sql": "CREATE TABLE t (v TEXT)"}))
        .await;
    let new = harness
        .tenant_with_config(
            "acme",
            json!({"max_connections": 1, "busy_timeout_ms": 1000}),
        )
        .await;
    old.ok("execute", json!({"sql": "INSERT INTO t VALUES ('old')"}))
        .await;
    new.ok("execute", json!({"sql": "INSERT INTO t VALUES ('new')"}))
        .await;
    assert_eq!(count(&old, "t").await, 2);
    assert_eq!(count(&new, "t").await, 2);
    old.provider.stop().await;
    new.ok("execute", json!({"sql": "INSERT INTO t VALUES ('after')"}))
        .await;
    assert_eq!(count(&new, "t").await, 3);
}

#[tokio::test]
async fn health_is_up_while_running_and_down_once_stopped() {
    let (_root, harness) = engine();
    let t = harness.tenant("acme").await;
    let health = t.provider.health().await;
    assert_eq!(health.status, HealthStatus::Up);
    assert_eq!(health.dependencies[0].name, "sqlite");
    t.provider.stop().await;
    let health = t.provider.health().await;
    assert_eq!(health.status, HealthStatus::Down);
    assert!(health.dependencies[0].detail.is_some());
    let err = t.err("query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
}

#[tokio::test]
async fn a_cancelled_transaction_neither_commits_half_nor_leaks_into_later_calls() {
    let (_root, harness) = engine();
    let t = harness.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE batch (i INTEGER)"}))
        .await;
    t.ok("execute", json!({"sql": "CREATE TABLE marks (i INTEGER)"}))
        .await;
    let statements: Vec<Value> = (0..500)
        .map(|i| json!({"sql": "INSERT INTO batch VALUES (?)", "params": [i]}))
        .collect();
    let batch = json!({"statements": statements});
    for (round, delay_ms) in [0, 1, 2, 5, 10, 20, 50].into_iter().enumerate() {
        let call = t.call("transaction", batch.clone());
        let _ = tokio::time::timeout(Duration::from_millis(delay_ms), call).await;
        // A write after the cancelled batch must be committed on its own and visible.
        t.ok(
            "execute",
            json!({"sql": "INSERT INTO marks VALUES (?)", "params": [round]}),
        )
        .await;
        assert_eq!(count(&t, "marks").await, round as i64 + 1, "round {round}");
        assert_eq!(
            count(&t, "batch").await % 500,
            0,
            "round {round}: half a batch"
        );
    }
}

#[tokio::test]
async fn booleans_bind_as_integers_and_expressions_are_typed_by_value() {
    let (_root, harness) = engine();
    let t = harness.tenant("acme").await;
    let result = t
        .ok(
            "query",
            json!({"sql": "SELECT ? AS yes, ? AS no, ? * 2 AS twice", "params": [true, false, 1.25]}),
        )
        .await;
    assert_eq!(result["rows"], json!([{"yes": 1, "no": 0, "twice": 2.5}]));
    assert_eq!(
        result["columns"][2],
        json!({"name": "twice", "type": "REAL"})
    );
}

#[tokio::test]
async fn keys_sqlite_keeps_non_null_are_reported_not_nullable() {
    let (_root, harness) = engine();
    let t = harness.tenant("acme").await;
    for sql in [
        "CREATE TABLE loose (name TEXT, region TEXT, PRIMARY KEY (name, region))",
        "CREATE TABLE strict (name TEXT, region TEXT, PRIMARY KEY (name, region)) WITHOUT ROWID",
    ] {
        t.ok("execute", json!({"sql": sql})).await;
    }
    let result = t.ok("metadata", json!({})).await;
    let nullable: Vec<(&str, bool)> = result["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|table| {
            (
                table["name"].as_str().unwrap(),
                table["columns"][0]["nullable"].as_bool().unwrap(),
            )
        })
        .collect();
    // SQLite lets NULL into a composite key of a rowid table.
    assert_eq!(nullable, [("loose", true), ("strict", false)]);
}

#[tokio::test]
async fn attaching_another_tenants_database_is_refused() {
    let (root, harness) = engine();
    let acme = harness.tenant("acme").await;
    acme.ok("execute", json!({"sql": "CREATE TABLE secrets (v TEXT)"}))
        .await;
    acme.ok(
        "execute",
        json!({"sql": "INSERT INTO secrets VALUES ('acme only')"}),
    )
    .await;
    let globex = harness.tenant("globex").await;
    let file = root.path().join("acme.db").display().to_string();
    let attempts = [
        (
            "execute",
            json!({"sql": format!("ATTACH DATABASE '{file}' AS o")}),
        ),
        (
            "query",
            json!({"sql": format!("ATTACH DATABASE '{file}' AS o")}),
        ),
        (
            "execute",
            json!({"sql": "ATTACH DATABASE ?1 AS o", "params": [file]}),
        ),
        (
            "execute",
            json!({"sql": format!("ATTACH 'file:{file}?mode=ro' AS o")}),
        ),
    ];
    for (action, params) in attempts {
        let err = globex.err(action, params.clone()).await;
        assert_eq!(err.code, ErrorCode::StatementFailed, "{params}");
        assert_eq!(err.errors[0].pointer, "/sql", "{params}");
    }
    let err = globex
        .err("query", json!({"sql": "SELECT v FROM o.secrets"}))
        .await;
    assert_eq!(err.code, ErrorCode::StatementFailed);
}
