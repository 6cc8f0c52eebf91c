//! Tenancy: one tenant's tables are invisible to another's, and a tenant's data outlives its
//! instance (a restart of the process, the runtime's hot swap).

use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::db::{assert_error, count, dialect, rows};

pub async fn tenants_cannot_see_each_others_tables_or_rows(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let acme = s.tenant("acme").await;
    let globex = s.tenant("globex").await;
    acme.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE secrets (v {text})")}),
    )
    .await;
    acme.ok(
        "execute",
        json!({"sql": "INSERT INTO secrets VALUES ('acme only')"}),
    )
    .await;
    if s.has_capability("metadata") {
        assert_eq!(
            globex.ok("metadata", json!({})).await,
            json!({"tables": []}),
            "{engine}"
        );
        let err = globex.err("metadata", json!({"table": "secrets"})).await;
        assert_error(&engine, &err, ErrorCode::ResourceNotFound, None);
    }
    let err = globex
        .err("query", json!({"sql": "SELECT v FROM secrets"}))
        .await;
    assert_error(&engine, &err, ErrorCode::StatementFailed, Some("/sql"));
    // The same name in another tenant is another table.
    globex
        .ok(
            "execute",
            json!({"sql": d.sql("CREATE TABLE secrets (v {text})")}),
        )
        .await;
    assert_eq!(count(&globex, "secrets").await, 0, "{engine}");
    assert_eq!(count(&acme, "secrets").await, 1, "{engine}");
}

pub async fn data_survives_a_restart(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    {
        let acme = s.tenant("acme").await;
        acme.ok(
            "execute",
            json!({"sql": d.sql("CREATE TABLE kept (v {text})")}),
        )
        .await;
        acme.ok(
            "execute",
            json!({"sql": "INSERT INTO kept VALUES ('still here')"}),
        )
        .await;
        acme.provider.stop().await;
    }
    let restarted = s.reopened();
    let acme = restarted.tenant("acme").await;
    let result = acme.ok("query", json!({"sql": "SELECT v FROM kept"})).await;
    assert_eq!(rows(&result), &vec![json!({"v": "still here"})], "{engine}");
}

pub async fn old_and_new_instance_of_a_tenant_share_data_during_a_swap(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let old = s.tenant("acme").await;
    old.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE swaps (v {text})")}),
    )
    .await;
    let new = s.tenant("acme").await;
    old.ok(
        "execute",
        json!({"sql": "INSERT INTO swaps VALUES ('from old')"}),
    )
    .await;
    new.ok(
        "execute",
        json!({"sql": "INSERT INTO swaps VALUES ('from new')"}),
    )
    .await;
    let sql = json!({"sql": "SELECT v FROM swaps ORDER BY v"});
    let both = vec![json!({"v": "from new"}), json!({"v": "from old"})];
    assert_eq!(rows(&old.ok("query", sql.clone()).await), &both, "{engine}");
    assert_eq!(rows(&new.ok("query", sql.clone()).await), &both, "{engine}");
    // The runtime stops the old instance once drained; the new one keeps working.
    old.provider.stop().await;
    new.ok(
        "execute",
        json!({"sql": "INSERT INTO swaps VALUES ('after stop')"}),
    )
    .await;
    assert_eq!(count(&new, "swaps").await, 3, "{engine}");
}
