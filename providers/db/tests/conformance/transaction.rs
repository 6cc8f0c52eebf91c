use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::{assert_error, count, engines};

const TRANSACTIONS: &str = "transactions";

#[tokio::test]
async fn a_batch_commits_all_its_statements_together() {
    for engine in engines()
        .await
        .into_iter()
        .filter(|e| e.harness.has_capability(TRANSACTIONS))
    {
        let t = engine.harness.tenant("acme").await;
        let result = t
            .ok(
                "transaction",
                json!({"statements": [
                    {"sql": engine.sql("CREATE TABLE ledger (id {auto_id}, amount INTEGER NOT NULL)")},
                    {"sql": engine.sql("INSERT INTO ledger (amount) VALUES (?1)"), "params": [100]},
                    {"sql": engine.sql("INSERT INTO ledger (amount) VALUES (?1)"), "params": [-100]}
                ]}),
            )
            .await;
        assert_eq!(
            result["results"],
            json!([
                {"rows_affected": 0, "last_insert_id": null},
                {"rows_affected": 1, "last_insert_id": 1},
                {"rows_affected": 1, "last_insert_id": 2}
            ]),
            "{}",
            engine.name
        );
        assert_eq!(count(&t, "ledger").await, 2, "{}", engine.name);
    }
}

#[tokio::test]
async fn a_failing_statement_rolls_back_the_batch_and_is_named() {
    for engine in engines()
        .await
        .into_iter()
        .filter(|e| e.harness.has_capability(TRANSACTIONS))
    {
        let t = engine.harness.tenant("acme").await;
        t.ok(
            "execute",
            json!({"sql": engine.sql("CREATE TABLE ledger (id {auto_id}, memo VARCHAR(40) UNIQUE)")}),
        )
        .await;
        let conflict = t
            .err(
                "transaction",
                json!({"statements": [
                    {"sql": "INSERT INTO ledger (memo) VALUES ('rent')"},
                    {"sql": "INSERT INTO ledger (memo) VALUES ('rent')"}
                ]}),
            )
            .await;
        assert_error(
            engine.name,
            &conflict,
            ErrorCode::Conflict,
            Some("/statements/1/sql"),
        );
        let broken = t
            .err(
                "transaction",
                json!({"statements": [
                    {"sql": "INSERT INTO ledger (memo) VALUES ('rent')"},
                    {"sql": "INSERT INTO ledger (memo) VALUES ('food')"},
                    {"sql": "INSRT INTO ledger (memo) VALUES ('oops')"}
                ]}),
            )
            .await;
        assert_error(
            engine.name,
            &broken,
            ErrorCode::StatementFailed,
            Some("/statements/2/sql"),
        );
        assert_eq!(
            count(&t, "ledger").await,
            0,
            "{}: a rolled back row is visible",
            engine.name
        );
        // The writer is usable again after a rollback.
        t.ok(
            "execute",
            json!({"sql": "INSERT INTO ledger (memo) VALUES ('rent')"}),
        )
        .await;
        assert_eq!(count(&t, "ledger").await, 1, "{}", engine.name);
    }
}

#[tokio::test]
async fn statements_inside_a_batch_cannot_commit_it_early() {
    for engine in engines()
        .await
        .into_iter()
        .filter(|e| e.harness.has_capability(TRANSACTIONS))
    {
        let t = engine.harness.tenant("acme").await;
        t.ok(
            "execute",
            json!({"sql": engine.sql("CREATE TABLE ledger (memo {text})")}),
        )
        .await;
        for control in ["COMMIT", "END", "ROLLBACK"] {
            let err = t
                .err(
                    "transaction",
                    json!({"statements": [
                        {"sql": "INSERT INTO ledger (memo) VALUES ('first')"},
                        {"sql": control},
                        {"sql": "INSRT broken"}
                    ]}),
                )
                .await;
            assert_error(
                engine.name,
                &err,
                ErrorCode::StatementFailed,
                Some("/statements/1/sql"),
            );
        }
        assert_eq!(count(&t, "ledger").await, 0, "{}", engine.name);
    }
}

#[tokio::test]
async fn a_batch_needs_at_least_one_statement() {
    for engine in engines()
        .await
        .into_iter()
        .filter(|e| e.harness.has_capability(TRANSACTIONS))
    {
        let t = engine.harness.tenant("acme").await;
        let err = t.err("transaction", json!({"statements": []})).await;
        assert_error(
            engine.name,
            &err,
            ErrorCode::ParamsInvalid,
            Some("/statements"),
        );
        let err = t
            .err("transaction", json!({"statements": [{"params": []}]}))
            .await;
        assert_error(
            engine.name,
            &err,
            ErrorCode::ParamsInvalid,
            Some("/statements/0/sql"),
        );
    }
}
