//! `execute`: statements that change data or schema, what they report, how they fail.

use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::db::{assert_error, dialect, rows};

pub async fn reports_rows_affected_and_the_inserted_id(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    let created = t
        .ok(
            "execute",
            json!({"sql": d.sql("CREATE TABLE people (id {auto_id}, name {text})")}),
        )
        .await;
    assert_eq!(
        created,
        json!({"rows_affected": 0, "last_insert_id": null}),
        "{engine}"
    );
    for (name, id) in [("ada", 1), ("grace", 2)] {
        let inserted = t
            .ok(
                "execute",
                json!({"sql": d.sql("INSERT INTO people (name) VALUES (?1)"), "params": [name]}),
            )
            .await;
        assert_eq!(
            inserted,
            json!({"rows_affected": 1, "last_insert_id": id}),
            "{engine}"
        );
    }
    let updated = t
        .ok(
            "execute",
            json!({"sql": "UPDATE people SET name = upper(name)"}),
        )
        .await;
    assert_eq!(
        updated,
        json!({"rows_affected": 2, "last_insert_id": null}),
        "{engine}"
    );
    let result = t
        .ok(
            "query",
            json!({"sql": "SELECT name FROM people ORDER BY id"}),
        )
        .await;
    assert_eq!(
        rows(&result),
        &vec![json!({"name": "ADA"}), json!({"name": "GRACE"})],
        "{engine}"
    );
}

pub async fn constraint_violations_are_conflicts(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    for sql in [
        "CREATE TABLE parents (id {auto_id})",
        "CREATE TABLE kids (id {auto_id}, code VARCHAR(40) NOT NULL UNIQUE, \
         age INTEGER CHECK (age >= 0), parent INTEGER REFERENCES parents (id))",
        // A key of its own: SQL Server refuses explicit values for an IDENTITY key.
        "CREATE TABLE badges (label VARCHAR(40) PRIMARY KEY)",
        "INSERT INTO kids (code, age) VALUES ('a', 3)",
        "INSERT INTO badges (label) VALUES ('gold')",
    ] {
        t.ok("execute", json!({"sql": d.sql(sql)})).await;
    }
    for (violation, sql) in [
        ("unique", "INSERT INTO kids (code) VALUES ('a')"),
        ("primary key", "INSERT INTO badges (label) VALUES ('gold')"),
        ("not null", "INSERT INTO kids (code) VALUES (NULL)"),
        ("check", "INSERT INTO kids (code, age) VALUES ('c', -1)"),
        (
            "foreign key",
            "INSERT INTO kids (code, parent) VALUES ('d', 42)",
        ),
    ] {
        let err = t.err("execute", json!({"sql": sql})).await;
        assert_eq!(
            err.code,
            ErrorCode::Conflict,
            "{engine}: {violation}: {err:?}"
        );
        assert!(!err.retryable, "{engine}: {violation}");
    }
}

pub async fn bad_sql_is_statement_failed_at_sql(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    for sql in [
        "INSRT INTO x VALUES (1)",
        "INSERT INTO missing_table VALUES (1)",
    ] {
        let err = t.err("execute", json!({"sql": sql})).await;
        assert_error(&engine, &err, ErrorCode::StatementFailed, Some("/sql"));
    }
}

pub async fn execute_params_violating_the_schema_point_at_the_field(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    let cases = [
        (json!({"params": [1]}), Some("/sql")),
        (
            json!({"sql": "SELECT ?", "params": [{"a": 1}]}),
            Some("/params/0"),
        ),
        // Where an unexpected property points is the contract validator's business.
        (json!({"sql": "SELECT 1", "extra": true}), None),
    ];
    for (params, pointer) in cases {
        let err = t.err("execute", params).await;
        assert_error(&engine, &err, ErrorCode::ParamsInvalid, pointer);
    }
}

pub async fn integers_beyond_64_bits_are_refused_not_rounded(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE big (n INTEGER)"}))
        .await;
    let err = t
        .err(
            "execute",
            json!({"sql": d.sql("INSERT INTO big VALUES (?1)"), "params": [u64::MAX]}),
        )
        .await;
    assert_error(&engine, &err, ErrorCode::ParamsInvalid, Some("/params/0"));
}
