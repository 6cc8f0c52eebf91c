//! Reading the ledger's rows back; the queries themselves go through the shared
//! [`switchyard_service_kit::Db`].

use serde_json::Value;
use switchyard_contracts::{ErrorCode, Problem};
pub use switchyard_service_kit::{PAGE, Row};

/// A stored value the ledger cannot read back: its tables were changed behind its back.
pub fn broken(what: &str) -> Problem {
    Problem::new(ErrorCode::Internal, format!("ledger storage holds {what}"))
}

/// A text column of `row`.
pub fn text<'r>(row: &'r Row, column: &str) -> Result<&'r str, Problem> {
    row.get(column)
        .and_then(Value::as_str)
        .ok_or_else(|| broken(&format!("a row without a text {column}: {row:?}")))
}

/// A nullable text column of `row`.
pub fn optional_text(row: &Row, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_owned)
}

/// An integer column of `row` (a number, or a PostgreSQL `numeric` string).
pub fn integer(row: &Row, column: &str) -> Result<i128, Problem> {
    row.get(column)
        .and_then(switchyard_service_kit::money::read_units)
        .ok_or_else(|| broken(&format!("a row without an integer {column}: {row:?}")))
}

/// A 64-bit integer column of `row` (ids, sequence and line numbers).
pub fn id(row: &Row, column: &str) -> Result<i64, Problem> {
    i64::try_from(integer(row, column)?)
        .map_err(|_| broken(&format!("a {column} beyond 64 bits: {row:?}")))
}
