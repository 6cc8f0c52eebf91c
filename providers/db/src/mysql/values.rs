//! MySQL ↔ JSON: binding JSON params and turning result cells into JSON.
//!
//! Results are mapped by the column's type: integers → numbers, `DECIMAL` → string (its exact
//! digits), `FLOAT`/`DOUBLE` → numbers, text types (`CHAR`, `VARCHAR`, `TEXT`, `ENUM`, `SET`,
//! `JSON`) → string, `BOOLEAN` (`TINYINT(1)`) → boolean, binary types (`BINARY`, `VARBINARY`,
//! `BLOB`) → base64. Dates and times are refused with a hint to cast them to text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use sqlx::error::BoxDynError;
use sqlx::mysql::{MySqlArguments, MySqlColumn, MySqlRow, MySqlValueRef};
use sqlx::query::Query;
use sqlx::{Column, Decode, MySql, Row, TypeInfo, ValueRef};
use switchyard_spi::{ErrorCode, ProviderError};

pub(crate) use crate::contract::ColumnInfo;

/// Binds positional params (`?`): integers as `BIGINT`, other numbers as `DOUBLE`, strings as
/// text, booleans as `BOOLEAN`, null as NULL. `pointer` locates the params array.
pub(crate) fn bind<'q>(
    mut query: Query<'q, MySql, MySqlArguments>,
    values: &[Value],
    pointer: &str,
) -> Result<Query<'q, MySql, MySqlArguments>, ProviderError> {
    for (index, value) in values.iter().enumerate() {
        query = match value {
            Value::Null => query.bind(None::<String>),
            Value::Bool(b) => query.bind(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => query.bind(i),
                (None, Some(f)) if n.is_f64() => query.bind(f),
                _ => {
                    return Err(ProviderError::invalid_param(
                        &format!("{pointer}/{index}"),
                        "integer does not fit a signed 64-bit BIGINT",
                    ));
                }
            },
            Value::String(s) => query.bind(s.clone()),
            Value::Array(_) | Value::Object(_) => {
                return Err(ProviderError::invalid_param(
                    &format!("{pointer}/{index}"),
                    "a bind value must be null, boolean, number or string",
                ));
            }
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

/// One row as an object keyed by column name (with duplicate names the last column wins).
pub(crate) fn row_object(row: &MySqlRow) -> Result<Map<String, Value>, ProviderError> {
    let mut object = Map::new();
    for column in row.columns() {
        let raw = row
            .try_get_raw(column.ordinal())
            .map_err(|e| ProviderError::internal(format!("cannot read a result cell: {e}")))?;
        let value = cell(raw, column.type_info().name()).map_err(|e| match e {
            Cell::Unsupported(type_name) => ProviderError::new(
                ErrorCode::StatementFailed,
                format!(
                    "column {:?} has type {type_name}, which db/mysql does not turn into JSON: \
                     cast it in the SQL, e.g. CAST({} AS CHAR)",
                    column.name(),
                    column.name()
                ),
            ),
            Cell::Corrupt(e) => {
                ProviderError::internal(format!("cannot decode column {:?}: {e}", column.name()))
            }
        })?;
        object.insert(column.name().to_owned(), value);
    }
    Ok(object)
}

enum Cell {
    Unsupported(String),
    Corrupt(BoxDynError),
}

impl From<BoxDynError> for Cell {
    fn from(e: BoxDynError) -> Self {
        Cell::Corrupt(e)
    }
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
