use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::{assert_error, count, engines, rows};

#[tokio::test]
async fn tenants_cannot_see_each_others_tables_or_rows() {
    for engine in engines().await {
        let acme = engine.harness.tenant("acme").await;
        let globex = engine.harness.tenant("globex").await;
        acme.ok(
            "execute",
            json!({"sql": engine.sql("CREATE TABLE secrets (v {text})")}),
        )
        .await;
        acme.ok(
            "execute",
            json!({"sql": "INSERT INTO secrets VALUES ('acme only')"}),
        )
        .await;
        if engine.harness.has_capability("metadata") {
            assert_eq!(
                globex.ok("metadata", json!({})).await,
                json!({"tables": []}),
                "{}",
                engine.name
            );
            let err = globex.err("metadata", json!({"table": "secrets"})).await;
            assert_error(engine.name, &err, ErrorCode::ResourceNotFound, None);
        }
        let err = globex
            .err("query", json!({"sql": "SELECT v FROM secrets"}))
            .await;
        assert_error(engine.name, &err, ErrorCode::StatementFailed, Some("/sql"));
        // The same name in another tenant is another table.
        globex
            .ok(
                "execute",
                json!({"sql": engine.sql("CREATE TABLE secrets (v {text})")}),
            )
            .await;
        assert_eq!(count(&globex, "secrets").await, 0, "{}", engine.name);
        assert_eq!(count(&acme, "secrets").await, 1, "{}", engine.name);
    }
}

#[tokio::test]
async fn data_survives_a_restart() {
    for engine in engines().await {
        {
            let acme = engine.harness.tenant("acme").await;
            acme.ok(
                "execute",
                json!({"sql": engine.sql("CREATE TABLE kept (v {text})")}),
            )
            .await;
            acme.ok(
                "execute",
                json!({"sql": "INSERT INTO kept VALUES ('still here')"}),
            )
            .await;
            acme.provider.stop().await;
        }
        let restarted = engine.restart();
        let acme = restarted.tenant("acme").await;
        let result = acme.ok("query", json!({"sql": "SELECT v FROM kept"})).await;
        assert_eq!(
            rows(&result),
            &vec![json!({"v": "still here"})],
            "{}",
            engine.name
        );
    }
}

#[tokio::test]
async fn old_and_new_instance_of_a_tenant_share_data_during_a_swap() {
    for engine in engines().await {
        let old = engine.harness.tenant("acme").await;
        old.ok(
            "execute",
            json!({"sql": engine.sql("CREATE TABLE swaps (v {text})")}),
        )
        .await;
        let new = engine.harness.tenant("acme").await;
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
        assert_eq!(
            rows(&old.ok("query", sql.clone()).await),
            &both,
            "{}",
            engine.name
        );
        assert_eq!(
            rows(&new.ok("query", sql.clone()).await),
            &both,
            "{}",
            engine.name
        );
        // The runtime stops the old instance once drained; the new one keeps working.
        old.provider.stop().await;
        new.ok(
            "execute",
            json!({"sql": "INSERT INTO swaps VALUES ('after stop')"}),
        )
        .await;
        assert_eq!(count(&new, "swaps").await, 3, "{}", engine.name);
    }
}
