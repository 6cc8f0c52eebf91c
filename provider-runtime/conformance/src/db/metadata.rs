//! `metadata` (capability `metadata`): the tenant's tables and their columns.

use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::Subject;
use crate::db::{assert_error, dialect};

pub async fn lists_tables_with_their_columns(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    for sql in [
        "CREATE TABLE orders (id {auto_id}, customer VARCHAR(40) NOT NULL, note {text})",
        "CREATE TABLE customers (name VARCHAR(40) NOT NULL, region VARCHAR(40) NOT NULL, PRIMARY KEY (name, region))",
        "CREATE VIEW big_orders AS SELECT * FROM orders",
    ] {
        t.ok("execute", json!({"sql": d.sql(sql)})).await;
    }
    let result = t.ok("metadata", json!({})).await;
    assert_eq!(
        result,
        json!({"tables": [
            {"name": "customers", "columns": [
                {"name": "name", "type": "VARCHAR(40)", "nullable": false, "primary_key": true},
                {"name": "region", "type": "VARCHAR(40)", "nullable": false, "primary_key": true}
            ]},
            {"name": "orders", "columns": [
                {"name": "id", "type": "INTEGER", "nullable": false, "primary_key": true},
                {"name": "customer", "type": "VARCHAR(40)", "nullable": false, "primary_key": false},
                {"name": "note", "type": d.text.ddl, "nullable": true, "primary_key": false}
            ]}
        ]}),
        "{engine}"
    );
}

pub async fn one_table_by_name(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE a (x INTEGER)"}))
        .await;
    t.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE b (y {text})")}),
    )
    .await;
    let result = t.ok("metadata", json!({"table": "b"})).await;
    assert_eq!(
        result,
        json!({"tables": [{"name": "b", "columns": [
            {"name": "y", "type": d.text.ddl, "nullable": true, "primary_key": false}
        ]}]}),
        "{engine}"
    );
}

pub async fn an_unknown_table_is_resource_not_found(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    let err = t.err("metadata", json!({"table": "ghosts"})).await;
    assert_error(&engine, &err, ErrorCode::ResourceNotFound, None);
    let err = t.err("metadata", json!({"table": ""})).await;
    assert_error(&engine, &err, ErrorCode::ParamsInvalid, Some("/table"));
}

pub async fn a_fresh_tenant_has_no_tables(s: &Subject) {
    let engine = s.name();
    let t = s.tenant("acme").await;
    assert_eq!(
        t.ok("metadata", json!({})).await,
        json!({"tables": []}),
        "{engine}"
    );
}
