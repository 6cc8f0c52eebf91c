//! PostgreSQL ↔ JSON: binding JSON params and turning result cells into JSON.
//!
//! Results arrive in PostgreSQL's binary format and are mapped by the column's type, keeping
//! values exact: integers → numbers, `numeric` → string (its digits as PostgreSQL prints
//! them), floats → numbers (`"NaN"`, `"Infinity"`, `"-Infinity"` as strings), text → string,
//! `bool` → boolean, `json`/`jsonb` → JSON, `bytea` → base64, `uuid` → string, dates and
//! times → RFC 3339 / ISO 8601 strings. Other types are refused with a hint to cast them.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{
    PgArgumentBuffer, PgArguments, PgColumn, PgRow, PgTypeInfo, PgTypeKind, PgValueRef,
};
use sqlx::query::Query;
use sqlx::{Column, Decode, Encode, Postgres, Row, Type, TypeInfo, ValueRef};
use switchyard_spi::ProviderError;

pub(crate) use crate::contract::ColumnInfo;
use crate::contract::Param;
use crate::rows::{self, Cell};

/// A NULL parameter with no declared type, so PostgreSQL infers it from its context (a typed
/// NULL would fail against, say, a `date` column).
struct UntypedNull;

impl Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(&self, _buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}

/// Binds positional params (`$1`, `$2`, …): integers as `bigint`, other numbers as `double
/// precision`, strings as `text`, booleans as `boolean`, null untyped. `pointer` locates the
/// params array for error reporting.
pub(crate) fn bind<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    values: &[Value],
    pointer: &str,
) -> Result<Query<'q, Postgres, PgArguments>, ProviderError> {
    for param in Param::list(values, pointer, "integer does not fit PostgreSQL's bigint")? {
        query = match param {
            Param::Null => query.bind(UntypedNull),
            Param::Bool(b) => query.bind(b),
            Param::Int(i) => query.bind(i),
            Param::Float(f) => query.bind(f),
            Param::Text(s) => query.bind(s),
        };
    }
    Ok(query)
}

/// The types [`bind`] declares, for describing a statement without running it.
pub(crate) fn param_types(values: &[Value]) -> Vec<PgTypeInfo> {
    values
        .iter()
        .map(|value| match value {
            Value::Bool(_) => <bool as Type<Postgres>>::type_info(),
            Value::Number(n) if n.is_f64() => <f64 as Type<Postgres>>::type_info(),
            Value::Number(_) => <i64 as Type<Postgres>>::type_info(),
            Value::String(_) => <String as Type<Postgres>>::type_info(),
            Value::Null | Value::Array(_) | Value::Object(_) => UntypedNull::type_info(),
        })
        .collect()
}

pub(crate) fn column_info(column: &PgColumn) -> ColumnInfo {
    ColumnInfo {
        name: column.name().to_owned(),
        type_name: sql_type_name(column.type_info().name()),
    }
}

/// The SQL-standard spelling of PostgreSQL's internal type names (`INT4` → `INTEGER`), the
/// vocabulary `metadata` uses too.
pub(crate) fn sql_type_name(name: &str) -> String {
    match name {
        "BOOL" => "BOOLEAN",
        "INT2" => "SMALLINT",
        "INT4" => "INTEGER",
        "INT8" => "BIGINT",
        "FLOAT4" => "REAL",
        "FLOAT8" => "DOUBLE PRECISION",
        "BPCHAR" => "CHAR",
        other => other,
    }
    .to_owned()
}

/// `format_type()` output (`character varying(40)`) in the same vocabulary (`VARCHAR(40)`).
pub(crate) fn declared_type_name(format_type: &str) -> String {
    const SPELLINGS: [(&str, &str); 6] = [
        ("character varying", "VARCHAR"),
        ("character", "CHAR"),
        ("timestamp without time zone", "TIMESTAMP"),
        ("timestamp with time zone", "TIMESTAMPTZ"),
        ("time without time zone", "TIME"),
        ("time with time zone", "TIMETZ"),
    ];
    for (long, short) in SPELLINGS {
        if let Some(rest) = format_type.strip_prefix(long)
            && (rest.is_empty() || rest.starts_with('('))
        {
            return format!("{short}{}", rest.to_uppercase());
        }
    }
    format_type.to_uppercase()
}

/// The columns of a result, from one of its rows.
pub(crate) fn columns_of_row(row: &PgRow) -> Vec<ColumnInfo> {
    row.columns().iter().map(column_info).collect()
}

/// One row as an object keyed by column name (with duplicate names the last column wins).
pub(crate) fn row_object(row: &PgRow) -> Result<Map<String, Value>, ProviderError> {
    rows::row_object(
        row,
        "postgres",
        |name| format!("{name}::text"),
        |raw, _| cell(raw),
    )
}

fn cell(raw: PgValueRef<'_>) -> Result<Value, Cell> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info().into_owned();
    if matches!(type_info.kind(), PgTypeKind::Enum(_)) {
        return Ok(Value::String(raw.as_str()?.to_owned()));
    }
    Ok(match type_info.name() {
        "BOOL" => Value::Bool(<bool as Decode<Postgres>>::decode(raw)?),
        "INT2" => Value::from(<i16 as Decode<Postgres>>::decode(raw)?),
        "INT4" => Value::from(<i32 as Decode<Postgres>>::decode(raw)?),
        "INT8" => Value::from(<i64 as Decode<Postgres>>::decode(raw)?),
        "OID" => Value::from(u32::from_be_bytes(fixed(raw.as_bytes()?)?)),
        "FLOAT4" => float(f64::from(<f32 as Decode<Postgres>>::decode(raw)?)),
        "FLOAT8" => float(<f64 as Decode<Postgres>>::decode(raw)?),
        "NUMERIC" => Value::String(numeric(raw.as_bytes()?)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" | "CITEXT" => {
            Value::String(raw.as_str()?.to_owned())
        }
        "JSON" => serde_json::from_slice(raw.as_bytes()?).map_err(|e| Cell::Corrupt(e.into()))?,
        "JSONB" => match raw.as_bytes()? {
            [1, text @ ..] => serde_json::from_slice(text).map_err(|e| Cell::Corrupt(e.into()))?,
            _ => return Err(Cell::Corrupt("unknown jsonb format version".into())),
        },
        "BYTEA" => Value::String(BASE64.encode(raw.as_bytes()?)),
        "UUID" => Value::String(uuid(fixed(raw.as_bytes()?)?)),
        "DATE" => Value::String(date(i32::from_be_bytes(fixed(raw.as_bytes()?)?))),
        "TIME" => Value::String(time_of_day(i64::from_be_bytes(fixed(raw.as_bytes()?)?))),
        "TIMESTAMP" => Value::String(timestamp(i64::from_be_bytes(fixed(raw.as_bytes()?)?), "")),
        "TIMESTAMPTZ" => Value::String(timestamp(i64::from_be_bytes(fixed(raw.as_bytes()?)?), "Z")),
        other => return Err(Cell::Unsupported(sql_type_name(other))),
    })
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Cell> {
    bytes
        .try_into()
        .map_err(|_| Cell::Corrupt(format!("expected {N} bytes, got {}", bytes.len()).into()))
}

/// JSON has no NaN or infinities; PostgreSQL floats do.
fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(
        || {
            Value::String(
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .to_owned(),
            )
        },
        Value::Number,
    )
}

/// The binary `numeric`: digit count, weight (of the first base-10000 digit), sign, display
/// scale, then base-10000 digits; printed like PostgreSQL's own output.
fn numeric(bytes: &[u8]) -> Result<String, Cell> {
    let word = |i: usize| -> Result<u16, Cell> {
        bytes
            .get(2 * i..2 * i + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| Cell::Corrupt("truncated numeric".into()))
    };
    let (count, weight, sign, scale) = (
        usize::from(word(0)?),
        i32::from(word(1)? as i16),
        word(2)?,
        usize::from(word(3)?),
    );
    let digits = (0..count)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<_>, _>>()?;
    let digit = |index: i32| {
        usize::try_from(index)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    match sign {
        0x0000 => {}
        0x4000 => out.push('-'),
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        other => return Err(Cell::Corrupt(format!("numeric sign {other:#x}").into())),
    }
    if weight < 0 {
        out.push('0');
    }
    for index in 0..=weight {
        // Writing to a String cannot fail.
        let _ = if index == 0 {
            write!(out, "{}", digit(index))
        } else {
            write!(out, "{:04}", digit(index))
        };
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut index = weight + 1;
        while fraction.len() < scale {
            let _ = write!(fraction, "{:04}", digit(index));
            index += 1;
        }
        fraction.truncate(scale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

fn uuid(b: [u8; 16]) -> String {
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Days between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `date`: days since 2000-01-01; `i32::MAX`/`MIN` are `infinity`/`-infinity`.
fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        days => civil(i64::from(days) + PG_EPOCH_DAYS),
    }
}

/// `timestamp[tz]`: microseconds since 2000-01-01 00:00 (UTC for `timestamptz`).
fn timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        micros => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            format!(
                "{}T{}{zone}",
                civil(days + PG_EPOCH_DAYS),
                time_of_day(micros.rem_euclid(MICROS_PER_DAY))
            )
        }
    }
}

/// `HH:MM:SS` with a fraction only when there is one (trailing zeros dropped).
fn time_of_day(micros: i64) -> String {
    let seconds = micros / 1_000_000;
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    let fraction = micros % 1_000_000;
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

/// Days since 1970-01-01 → `YYYY-MM-DD` (proleptic Gregorian; Howard Hinnant's algorithm).
/// Years outside 0..=9999 get a sign and six digits, as ISO 8601's expanded form.
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:+07}-{month:02}-{day:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn numeric_bytes(weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, scale]
            .into_iter()
            .chain(digits.iter().copied())
        {
            bytes.extend(word.to_be_bytes());
        }
        bytes
    }

    #[test]
    fn numerics_print_like_postgres() {
        let cases = [
            (numeric_bytes(0, 0, 2, &[123, 4500]), "123.45"),
            (numeric_bytes(-1, 0x4000, 4, &[1]), "-0.0001"),
            (numeric_bytes(1, 0, 0, &[1]), "10000"),
            (numeric_bytes(0, 0, 0, &[]), "0"),
            (numeric_bytes(-2, 0, 6, &[1200]), "0.000012"),
            (numeric_bytes(0, 0xC000, 0, &[]), "NaN"),
        ];
        for (bytes, text) in cases {
            assert_eq!(numeric(&bytes).ok().as_deref(), Some(text));
        }
        assert!(numeric(&[0, 1]).is_err());
    }

    #[test]
    fn dates_and_times_are_iso_8601() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(timestamp(0, "Z"), "2000-01-01T00:00:00Z");
        assert_eq!(
            timestamp(-1, ""),
            "1999-12-31T23:59:59.999999",
            "before the epoch"
        );
        assert_eq!(
            timestamp(762_525_296_789_000, "Z"),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(civil(-719_529), "-000001-12-31");
    }

    #[test]
    fn floats_json_cannot_hold_become_strings() {
        assert_eq!(float(2.5), json!(2.5));
        assert_eq!(float(f64::NAN), json!("NaN"));
        assert_eq!(float(f64::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn type_names_use_one_vocabulary() {
        assert_eq!(sql_type_name("INT4"), "INTEGER");
        assert_eq!(declared_type_name("integer"), "INTEGER");
        assert_eq!(declared_type_name("character varying(40)"), "VARCHAR(40)");
        assert_eq!(declared_type_name("character(3)"), "CHAR(3)");
        assert_eq!(
            declared_type_name("timestamp(3) with time zone"),
            "TIMESTAMP(3) WITH TIME ZONE"
        );
        assert_eq!(declared_type_name("numeric(10,2)"), "NUMERIC(10,2)");
    }

    #[test]
    fn unbindable_values_point_at_their_index() {
        let err = bind(
            sqlx::query("SELECT $1, $2"),
            &[json!(1), json!(u64::MAX)],
            "/params",
        )
        .err()
        .map(|e| e.errors[0].pointer.clone());
        assert_eq!(err.as_deref(), Some("/params/1"));
    }
}
