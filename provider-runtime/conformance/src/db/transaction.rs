//! `transaction` (capability `transactions`): a batch of statements, all or nothing.

use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::db::{assert_error, count, dialect};

pub async fn a_batch_commits_all_its_statements_together(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    let result = t
        .ok(
            "transaction",
            json!({"statements": [
                {"sql": d.sql("CREATE TABLE ledger (id {auto_id}, amount INTEGER NOT NULL)")},
                {"sql": d.sql("INSERT INTO ledger (amount) VALUES (?1)"), "params": [100]},
                {"sql": d.sql("INSERT INTO ledger (amount) VALUES (?1)"), "params": [-100]}
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
        "{engine}"
    );
    assert_eq!(count(&t, "ledger").await, 2, "{engine}");
}

pub async fn a_failing_statement_rolls_back_the_batch_and_is_named(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE ledger (id {auto_id}, memo VARCHAR(40) UNIQUE)")}),
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
        &engine,
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
        &engine,
        &broken,
        ErrorCode::StatementFailed,
        Some("/statements/2/sql"),
    );
    assert_eq!(
        count(&t, "ledger").await,
        0,
        "{engine}: a rolled back row is visible"
    );
    // The writer is usable again after a rollback.
    t.ok(
        "execute",
        json!({"sql": "INSERT INTO ledger (memo) VALUES ('rent')"}),
    )
    .await;
    assert_eq!(count(&t, "ledger").await, 1, "{engine}");
}

pub async fn statements_inside_a_batch_cannot_commit_it_early(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE ledger (memo {text})")}),
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
            &engine,
            &err,
            ErrorCode::StatementFailed,
            Some("/statements/1/sql"),
        );
    }
    assert_eq!(count(&t, "ledger").await, 0, "{engine}");
}

pub async fn a_batch_needs_at_least_one_statement(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    let err = t.err("transaction", json!({"statements": []})).await;
    assert_error(&engine, &err, ErrorCode::ParamsInvalid, Some("/statements"));
    let err = t
        .err("transaction", json!({"statements": [{"params": []}]}))
        .await;
    assert_error(
        &engine,
        &err,
        ErrorCode::ParamsInvalid,
        Some("/statements/0/sql"),
    );
}
