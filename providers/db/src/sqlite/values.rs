//! SQLite ↔ JSON: binding JSON params to statements and turning result cells into JSON.
//!
//! Cells are mapped by the value's runtime storage class, not the column's declared type,
//! because SQLite lets any column hold any class: INTEGER → integer, REAL → number,
//! TEXT → string, BLOB → base64 string (standard alphabet, padded), NULL → null.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteColumn, SqliteRow, SqliteValueRef};
use sqlx::{Column, Decode, Row, Sqlite, TypeInfo, ValueRef};
use switchyard_spi::ProviderError;

pub(crate) use crate::contract::ColumnInfo;
use crate::contract::Param;

/// Binds positional params. Numbers written without fraction or exponent bind as INTEGER,
/// other numbers as REAL, booleans as INTEGER 0/1. `pointer` locates the params array for
/// error reporting (e.g. `/params`, `/statements/3/params`).
pub(crate) fn bind<'q>(
    mut query: Query<'q, Sqlite, SqliteArguments<'q>>,
    values: &[Value],
    pointer: &str,
) -> Result<Query<'q, Sqlite, SqliteArguments<'q>>, ProviderError> {
    for param in Param::list(
        values,
        pointer,
        "integer does not fit SQLite's signed 64-bit INTEGER",
    )? {
        query = match param {
            Param::Null => query.bind(None::<i64>),
            Param::Bool(b) => query.bind(b),
            Param::Int(i) => query.bind(i),
            Param::Float(f) => query.bind(f),
            Param::Text(s) => query.bind(s),
        };
    }
    Ok(query)
}

/// The columns of a result, typed from the first row where the declared type is unknown.
pub(crate) fn columns_of_row(row: &SqliteRow) -> Vec<ColumnInfo> {
    row.columns()
        .iter()
        .map(|column| {
            let mut info = column_info(column);
            if info.type_name == "NULL"
                && let Ok(raw) = row.try_get_raw(column.ordinal())
            {
                info.type_name = raw.type_info().name().to_owned();
            }
            info
        })
        .collect()
}

/// The column as the prepared statement declares it (used when a query returns no row).
pub(crate) fn column_info(column: &SqliteColumn) -> ColumnInfo {
    ColumnInfo {
        name: column.name().to_owned(),
        type_name: column.type_info().name().to_owned(),
    }
}

/// One row as an object keyed by column name. With duplicate names the last column wins, so
/// callers should alias such columns.
pub(crate) fn row_object(row: &SqliteRow) -> Result<Map<String, Value>, BoxDynError> {
    let mut object = Map::new();
    for column in row.columns() {
        let raw = row.try_get_raw(column.ordinal())?;
        object.insert(column.name().to_owned(), cell(raw)?);
    }
    Ok(object)
}

fn cell(raw: SqliteValueRef<'_>) -> Result<Value, BoxDynError> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let class = raw.type_info().into_owned();
    Ok(match class.name() {
        "INTEGER" => Value::from(<i64 as Decode<Sqlite>>::decode(raw)?),
        "REAL" => real(<f64 as Decode<Sqlite>>::decode(raw)?),
        "TEXT" => {
            let bytes = <Vec<u8> as Decode<Sqlite>>::decode(raw)?;
            // SQLite does not enforce UTF-8 in TEXT; invalid bytes must not fail the query.
            Value::String(match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            })
        }
        "BLOB" => Value::String(BASE64.encode(<Vec<u8> as Decode<Sqlite>>::decode(raw)?)),
        other => return Err(format!("unexpected SQLite storage class {other}").into()),
    })
}

/// JSON has no infinities; SQLite can store them (NaN it stores as NULL).
fn real(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(
        || Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()),
        Value::Number,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn infinities_become_strings_and_finite_reals_stay_numbers() {
        assert_eq!(real(1.5), json!(1.5));
        assert_eq!(real(f64::INFINITY), json!("Infinity"));
        assert_eq!(real(f64::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn unbindable_values_point_at_their_index() {
        let err = bind(
            sqlx::query("SELECT ?, ?"),
            &[json!(1), json!(u64::MAX)],
            "/params",
        )
        .err()
        .map(|e| e.errors[0].pointer.clone());
        assert_eq!(err.as_deref(), Some("/params/1"));
    }
}
