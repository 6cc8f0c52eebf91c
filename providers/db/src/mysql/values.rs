//! MySQL ↔ JSON: binding JSON params and turning result cells into JSON.
//!
//! Results are mapped by the column's type: integers → numbers, `DECIMAL` → string (its exact
//! digits), `FLOAT`/`DOUBLE` → numbers, text types (`CHAR`, `VARCHAR`, `TEXT`, `ENUM`, `SET`,
//! `JSON`) → string, `BOOLEAN` (`TINYINT(1)`) → boolean, binary types (`BINARY`, `VARBINARY`,
//! `BLOB`) → base64. Dates and times are refused with a hint to cast them to text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use sqlx::mysql::{MySqlArguments, MySqlColumn, MySqlRow, MySqlValueRef};
use sqlx::query::Query;
use sqlx::{Column, Decode, MySql, Row, TypeInfo, ValueRef};
use switchyard_spi::ProviderError;

pub(crate) use crate::contract::ColumnInfo;
use crate::contract::Param;
use crate::rows::{self, Cell};

/// Binds positional params (`?`): integers as `BIGINT`, other numbers as `DOUBLE`, strings as
/// text, booleans as `BOOLEAN`, null as NULL. `pointer` locates the params array.
pub(crate) fn bind<'q>(
    mut query: Query<'q, MySql, MySqlArguments>,
    values: &[Value],
    pointer: &str,
) -> Result<Query<'q, MySql, MySqlArguments>, ProviderError> {
    for param in Param::list(
        values,
        pointer,
        "integer does not fit a signed 64-bit BIGINT",
    )? {
        query = match param {
            Param::Null => query.bind(None::<String>),
            Param::Bool(b) => query.bind(b),
            Param::Int(i) => query.bind(i),
            Param::Float(f) => query.bind(f),
            Param::Text(s) => query.bind(s),
        };
    }
    Ok(query)
}

pub(crate) fn column_info(column: &MySqlColumn) -> ColumnInfo {
    ColumnInfo {
        name: column.name().to_owned(),
        type_name: sql_type_name(column.type_info().name()),
    }
}

/// The names the other engines use for the same types (`INT` → `INTEGER`, `DOUBLE` →
/// `REAL`), so that a caller sees one vocabulary.
pub(crate) fn sql_type_name(name: &str) -> String {
    match name {
        "INT" => "INTEGER",
        "INT UNSIGNED" => "INTEGER UNSIGNED",
        "DOUBLE" => "REAL",
        other => other,
    }
    .to_owned()
}

/// `information_schema.COLUMNS.COLUMN_TYPE` (`int(11)`, `varchar(40)`) in the same
/// vocabulary (`INTEGER`, `VARCHAR(40)`): integer display widths are dropped.
pub(crate) fn declared_type_name(column_type: &str) -> String {
    let upper = column_type.to_uppercase();
    let (base, suffix) = match upper.find(' ') {
        Some(i) => (&upper[..i], &upper[i..]),
        None => (upper.as_str(), ""),
    };
    let name = base.split('(').next().unwrap_or(base);
    let base = match name {
        "TINYINT" if base == "TINYINT(1)" => base,
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "BIGINT" => name,
        "INT" => "INTEGER",
        "DOUBLE" => "REAL",
        _ => base,
    };
    format!("{base}{suffix}")
}

/// The columns of a result, from one of its rows.
pub(crate) fn columns_of_row(row: &MySqlRow) -> Vec<ColumnInfo> {
    row.columns().iter().map(column_info).collect()
}

/// One row as an object keyed by column name (with duplicate names the last column wins).
pub(crate) fn row_object(row: &MySqlRow) -> Result<Map<String, Value>, ProviderError> {
    rows::row_object(
        row,
        "mysql",
        |name| format!("CAST({name} AS CHAR)"),
        |raw, column| cell(raw, column.type_info().name()),
    )
}

fn cell(raw: MySqlValueRef<'_>, type_name: &str) -> Result<Value, Cell> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    Ok(match type_name {
        "BOOLEAN" => Value::Bool(<i64 as Decode<MySql>>::decode(raw)? != 0),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
            Value::from(<i64 as Decode<MySql>>::decode(raw)?)
        }
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
        | "BIGINT UNSIGNED" | "BIT" => Value::from(<u64 as Decode<MySql>>::decode(raw)?),
        "FLOAT" => float(f64::from(<f32 as Decode<MySql>>::decode(raw)?)),
        "DOUBLE" => float(<f64 as Decode<MySql>>::decode(raw)?),
        "DECIMAL" | "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT"
        | "ENUM" | "SET" | "JSON" => {
            Value::String(<&str as Decode<MySql>>::decode(raw)?.to_owned())
        }
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            Value::String(BASE64.encode(<&[u8] as Decode<MySql>>::decode(raw)?))
        }
        other => return Err(Cell::Unsupported(sql_type_name(other))),
    })
}

/// A float as a JSON number; NaN and infinities (which MySQL does not store) as null.
fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_use_the_common_vocabulary() {
        for (column_type, expected) in [
            ("int(11)", "INTEGER"),
            ("int(10) unsigned", "INTEGER UNSIGNED"),
            ("bigint(20)", "BIGINT"),
            ("tinyint(1)", "TINYINT(1)"),
            ("varchar(40)", "VARCHAR(40)"),
            ("text", "TEXT"),
            ("double", "REAL"),
            ("decimal(10,2)", "DECIMAL(10,2)"),
            ("blob", "BLOB"),
        ] {
            assert_eq!(declared_type_name(column_type), expected, "{column_type}");
        }
    }
}
