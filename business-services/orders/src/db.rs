//! The orders' tables and reading their rows back; the queries themselves go through the
//! shared [`switchyard_service_kit::Db`].

use serde_json::Value;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::Row;

/// A stored value the service cannot read back: its tables were changed behind its back.
pub fn broken(what: &str) -> Problem {
    Problem::new(ErrorCode::Internal, format!("orders storage holds {what}"))
}

/// A text column of `row`.
pub fn text(row: &Row, column: &str) -> Result<String, Problem> {
    row.get(column)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| broken(&format!("a row without a text {column}: {row:?}")))
}

/// A nullable text column of `row`.
pub fn optional_text(row: &Row, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_owned)
}

/// An integer column of `row` (a number, or a numeric string).
pub fn integer(row: &Row, column: &str) -> Result<i64, Problem> {
    match row.get(column) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| broken(&format!("a row without an integer {column}: {row:?}")))
}

pub const TABLES: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS ord_customer (
        customer VARCHAR(200) PRIMARY KEY,
        name TEXT NOT NULL,
        created_at VARCHAR(40) NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS ord_order (
        order_id VARCHAR(64) PRIMARY KEY,
        customer TEXT NOT NULL,
        warehouse VARCHAR(64) NOT NULL,
        bin VARCHAR(64) NOT NULL,
        currency VARCHAR(3) NOT NULL,
        total TEXT NOT NULL,
        status VARCHAR(16) NOT NULL,
        content TEXT NOT NULL,
        category TEXT,
        risk TEXT,
        created_at VARCHAR(40) NOT NULL,
        updated_at VARCHAR(40) NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS ord_line (
        order_id VARCHAR(64) NOT NULL,
        line INTEGER NOT NULL,
        item VARCHAR(64) NOT NULL,
        quantity TEXT NOT NULL,
        unit_price TEXT NOT NULL,
        currency VARCHAR(3) NOT NULL,
        PRIMARY KEY (order_id, line)
    )",
    "CREATE TABLE IF NOT EXISTS ord_step (
        order_id VARCHAR(64) NOT NULL,
        name VARCHAR(64) NOT NULL,
        step_order INTEGER NOT NULL,
        status VARCHAR(8) NOT NULL,
        error TEXT,
        detail TEXT,
        updated_at VARCHAR(40) NOT NULL,
        PRIMARY KEY (order_id, name)
    )",
];
