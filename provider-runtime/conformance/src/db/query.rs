//! `query`: read-only statements, their rows and column types, truncation and failures.

use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::db::{assert_error, count, dialect, rows};

pub async fn bound_values_of_every_type_come_back_as_stored(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE items (i {int64}, r REAL, s {text}, n {text}, b {blob})")}),
    )
    .await;
    t.ok(
        "execute",
        json!({
            "sql": d.sql(&format!(
                "INSERT INTO items (i, r, s, n, b) VALUES (?1, ?2, ?3, ?4, {})",
                (d.blob_literal)("00FF10")
            )),
            "params": [9007199254740993_i64, 2.5, "héllo ✓", null]
        }),
    )
    .await;
    let result = t
        .ok(
            "query",
            json!({"sql": d.sql("SELECT i, r, s, n, b FROM items WHERE i = ?1"), "params": [9007199254740993_i64]}),
        )
        .await;
    assert_eq!(
        rows(&result),
        &vec![json!({"i": 9007199254740993_i64, "r": 2.5, "s": "héllo ✓", "n": null, "b": "AP8Q"})],
        "{engine}"
    );
    let types: Vec<&str> = result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            d.int64,
            "REAL",
            d.text.in_results,
            d.text.in_results,
            d.blob.in_results
        ],
        "{engine}"
    );
    assert_eq!(result["row_count"], 1, "{engine}");
    assert_eq!(result["truncated"], false, "{engine}");
}

pub async fn an_empty_result_still_describes_its_columns(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE empty (id INTEGER, label {text})")}),
    )
    .await;
    let result = t
        .ok("query", json!({"sql": "SELECT id, label FROM empty"}))
        .await;
    assert_eq!(
        result["columns"],
        json!([{"name": "id", "type": "INTEGER"}, {"name": "label", "type": d.text.in_results}]),
        "{engine}"
    );
    assert_eq!(result["rows"], json!([]), "{engine}");
    assert_eq!(result["row_count"], 0, "{engine}");
}

pub async fn query_refuses_writes(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE notes (body {text})")}),
    )
    .await;
    for sql in [
        "INSERT INTO notes (body) VALUES ('sneaky')",
        "DELETE FROM notes",
        "CREATE TABLE other (x INTEGER)",
        "DROP TABLE notes",
    ] {
        let err = t.err("query", json!({"sql": sql})).await;
        assert_error(&engine, &err, ErrorCode::StatementFailed, Some("/sql"));
    }
    assert_eq!(count(&t, "notes").await, 0, "{engine}");
    // No table was created either, where the engine can tell (`metadata` is optional).
    if s.has_capability("metadata") {
        let tables = t.ok("metadata", json!({})).await;
        assert_eq!(tables["tables"].as_array().unwrap().len(), 1, "{engine}");
    }
}

pub async fn max_rows_truncates_and_says_so(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    let five = d.sql("{with_recursive} n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) SELECT x FROM n");
    let capped = t.ok("query", json!({"sql": &five, "max_rows": 3})).await;
    assert_eq!(
        rows(&capped),
        &vec![json!({"x": 1}), json!({"x": 2}), json!({"x": 3})],
        "{engine}"
    );
    assert_eq!(capped["row_count"], 3, "{engine}");
    assert_eq!(capped["truncated"], true, "{engine}");
    let exact = t.ok("query", json!({"sql": &five, "max_rows": 5})).await;
    assert_eq!(exact["row_count"], 5, "{engine}");
    assert_eq!(exact["truncated"], false, "{engine}");
}

pub async fn query_params_violating_the_schema_point_at_the_field(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    let cases = [
        (json!({}), "/sql"),
        (json!({"sql": ""}), "/sql"),
        (json!({"sql": "SELECT 1", "params": [[1]]}), "/params/0"),
        (json!({"sql": "SELECT 1", "max_rows": 0}), "/max_rows"),
    ];
    for (params, pointer) in cases {
        let err = t.err("query", params).await;
        assert_error(&engine, &err, ErrorCode::ParamsInvalid, Some(pointer));
    }
}

pub async fn bad_sql_is_statement_failed(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    for sql in [
        "SELEC 1",
        "SELECT * FROM missing_table",
        "SELECT missing_column FROM (SELECT 1 AS x) AS s",
    ] {
        let err = t.err("query", json!({"sql": sql})).await;
        assert_error(&engine, &err, ErrorCode::StatementFailed, Some("/sql"));
        assert!(!err.retryable, "{engine}: {err:?}");
    }
}
