//! SQL Server ↔ JSON: binding JSON params and turning result cells into JSON.
//!
//! Results are mapped by the column's type, keeping values exact: integers (`tinyint` …
//! `bigint`) → numbers, `real`/`float` → numbers, `decimal`/`numeric` → string (all its
//! digits, at its scale), `money`/`smallmoney` → string with 4 decimals (exact up to about
//! 270 billion), `bit` → boolean, text types → string, binary types → base64,
//! `uniqueidentifier` → string (upper case, as SQL Server prints it), `xml` → string, `date` →
//! `YYYY-MM-DD`, `time` → `HH:MM:SS[.fffffff]`, `datetime2`/`datetime`/`smalldatetime` →
//! `YYYY-MM-DDTHH:MM:SS[.fffffff]`, `datetimeoffset` → RFC 3339 with its offset (`Z` for UTC).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use switchyard_spi::ProviderError;
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
use tiberius::{ColumnData, ColumnType, Row, ToSql};

pub(crate) use crate::contract::ColumnInfo;
use crate::contract::Param;

/// Binds params (`@P1`, `@P2`, …): integers as `bigint`, other numbers as `float`, strings
/// as `nvarchar`, booleans as `bit`, null as an `nvarchar` NULL (SQL Server has no untyped
/// NULL; it converts to every type but the binary ones).
impl ToSql for Param {
    fn to_sql(&self) -> ColumnData<'_> {
        match self {
            Param::Null => ColumnData::String(None),
            Param::Bool(b) => ColumnData::Bit(Some(*b)),
            Param::Int(i) => ColumnData::I64(Some(*i)),
            Param::Float(f) => ColumnData::F64(Some(*f)),
            Param::Text(s) => ColumnData::String(Some(Cow::Borrowed(s))),
        }
    }
}

/// The call's params; `pointer` locates the params array for error reporting.
pub(crate) fn params(values: &[Value], pointer: &str) -> Result<Vec<Param>, ProviderError> {
    Param::list(values, pointer, "integer does not fit SQL Server's bigint")
}

/// `params` as tiberius takes them.
pub(crate) fn as_sql(params: &[Param]) -> Vec<&dyn ToSql> {
    params.iter().map(|p| p as &dyn ToSql).collect()
}

pub(crate) fn column_info(column: &tiberius::Column) -> ColumnInfo {
    ColumnInfo {
        name: column.name().to_owned(),
        type_name: sql_type_name(column.column_type()).to_owned(),
    }
}

/// The type of a result column. The protocol's result metadata carries no length, so
/// `nvarchar(40)` and `nvarchar(max)` are both `NVARCHAR`, as in the other engines' results;
/// `int` is `INTEGER` and `real` is `REAL`, the names the other engines use.
pub(crate) fn sql_type_name(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Null => "NULL",
        ColumnType::Bit | ColumnType::Bitn => "BIT",
        ColumnType::Int1 => "TINYINT",
        ColumnType::Int2 => "SMALLINT",
        ColumnType::Int4 | ColumnType::Intn => "INTEGER",
        ColumnType::Int8 => "BIGINT",
        ColumnType::Float4 => "REAL",
        ColumnType::Float8 | ColumnType::Floatn => "FLOAT",
        ColumnType::Money => "MONEY",
        ColumnType::Money4 => "SMALLMONEY",
        ColumnType::Decimaln => "DECIMAL",
        ColumnType::Numericn => "NUMERIC",
        ColumnType::Datetime | ColumnType::Datetimen => "DATETIME",
        ColumnType::Datetime4 => "SMALLDATETIME",
        ColumnType::Daten => "DATE",
        ColumnType::Timen => "TIME",
        ColumnType::Datetime2 => "DATETIME2",
        ColumnType::DatetimeOffsetn => "DATETIMEOFFSET",
        ColumnType::Guid => "UNIQUEIDENTIFIER",
        ColumnType::BigVarBin => "VARBINARY",
        ColumnType::BigBinary => "BINARY",
        ColumnType::BigVarChar => "VARCHAR",
        ColumnType::BigChar => "CHAR",
        ColumnType::NVarchar => "NVARCHAR",
        ColumnType::NChar => "NCHAR",
        ColumnType::Xml => "XML",
        ColumnType::Udt => "UDT",
        ColumnType::Text => "TEXT",
        ColumnType::NText => "NTEXT",
        ColumnType::Image => "IMAGE",
        ColumnType::SSVariant => "SQL_VARIANT",
    }
}

/// A column's declared type from `INFORMATION_SCHEMA.COLUMNS` (`DATA_TYPE` and its length,
/// precision and scale) as DDL writes it: `VARCHAR(40)`, `NVARCHAR(MAX)`, `DECIMAL(10,2)`,
/// `DATETIME2(3)`; `int` is `INTEGER` as in the other engines.
pub(crate) fn declared_type_name(
    data_type: &str,
    length: Option<i32>,
    precision: Option<i32>,
    scale: Option<i32>,
    datetime_precision: Option<i32>,
) -> String {
    let name = data_type.to_uppercase();
    match (name.as_str(), length, precision, scale, datetime_precision) {
        ("INT", ..) => "INTEGER".into(),
        ("CHAR" | "VARCHAR" | "NCHAR" | "NVARCHAR" | "BINARY" | "VARBINARY", Some(-1), ..) => {
            format!("{name}(MAX)")
        }
        ("CHAR" | "VARCHAR" | "NCHAR" | "NVARCHAR" | "BINARY" | "VARBINARY", Some(n), ..) => {
            format!("{name}({n})")
        }
        ("DECIMAL" | "NUMERIC", _, Some(p), Some(s), _) => format!("{name}({p},{s})"),
        // 7 (100 ns) is the default fractional precision, which DDL leaves out.
        ("DATETIME2" | "TIME" | "DATETIMEOFFSET", .., Some(p)) if p != 7 => format!("{name}({p})"),
        _ => name,
    }
}

/// One row as an object keyed by column name (with duplicate names the last column wins).
/// Every type tiberius decodes has a JSON form, so only a corrupt value fails.
pub(crate) fn row_object(row: &Row) -> Result<Map<String, Value>, ProviderError> {
    let mut object = Map::new();
    for (column, data) in row.cells() {
        let value = cell(column.column_type(), data).map_err(|e| {
            ProviderError::internal(format!("cannot decode column {:?}: {e}", column.name()))
        })?;
        object.insert(column.name().to_owned(), value);
    }
    Ok(object)
}

/// Why a cell has no JSON form: a value outside what its type allows.
type Corrupt = String;

fn cell(column_type: ColumnType, data: &ColumnData<'_>) -> Result<Value, Corrupt> {
    let money = matches!(column_type, ColumnType::Money | ColumnType::Money4);
    Ok(match data {
        ColumnData::U8(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I16(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I32(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I64(v) => v.map_or(Value::Null, Value::from),
        ColumnData::F32(v) => v.map_or(Value::Null, |f| float(f64::from(f))),
        // tiberius reads money as a float (its 1/10000 units divided by 10000); printed at
        // money's 4 decimals that is the exact value up to 2^38 (about 270 billion).
        ColumnData::F64(v) if money => v.map_or(Value::Null, |f| Value::String(format!("{f:.4}"))),
        ColumnData::F64(v) => v.map_or(Value::Null, float),
        ColumnData::Bit(v) => v.map_or(Value::Null, Value::Bool),
        ColumnData::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.to_string())),
        ColumnData::Guid(v) => v.map_or(Value::Null, |g| {
            Value::String(g.hyphenated().to_string().to_uppercase())
        }),
        ColumnData::Binary(v) => v
            .as_ref()
            .map_or(Value::Null, |b| Value::String(BASE64.encode(b))),
        ColumnData::Numeric(v) => v.map_or(Value::Null, |n| Value::String(decimal(n))),
        ColumnData::Xml(v) => v
            .as_ref()
            .map_or(Value::Null, |x| Value::String(x.to_string())),
        ColumnData::DateTime(v) => opt(v.map(datetime))?,
        ColumnData::SmallDateTime(v) => opt(v.map(smalldatetime))?,
        ColumnData::Date(v) => opt(v.map(date))?,
        ColumnData::Time(v) => opt(v.map(|t| Ok(time_of_day(t))))?,
        ColumnData::DateTime2(v) => opt(v.map(datetime2))?,
        ColumnData::DateTimeOffset(v) => opt(v.map(datetimeoffset))?,
    })
}

/// A text value that may be NULL, or the reason it could not be built.
fn opt(value: Option<Result<String, Corrupt>>) -> Result<Value, Corrupt> {
    value
        .transpose()
        .map(|v| v.map_or(Value::Null, Value::String))
}

/// A float as a JSON number; SQL Server stores no NaN or infinity.
fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A decimal's exact digits at its scale (`-0.50`, `123.45`, `7`).
fn decimal(n: Numeric) -> String {
    let scale = usize::from(n.scale());
    let digits = n.value().unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    let sign = if n.value() < 0 { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// Julian day numbers of the epochs SQL Server counts days from: 0001-01-01 (`date`,
/// `datetime2`, `datetimeoffset`) and 1900-01-01 (`datetime`, `smalldatetime`).
const JULIAN_DAY_0001: i64 = 1_721_426;
const JULIAN_DAY_1900: i64 = 2_415_021;
const SECONDS_PER_DAY: u64 = 86_400;

/// `YYYY-MM-DD` of a day counted from an epoch (a Julian day number).
fn civil(epoch: i64, days: i64) -> Result<String, Corrupt> {
    let julian = i32::try_from(epoch + days).map_err(|_| format!("day {days} is out of range"))?;
    let date = time::Date::from_julian_day(julian).map_err(|e| e.to_string())?;
    Ok(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

fn date(d: Date) -> Result<String, Corrupt> {
    civil(JULIAN_DAY_0001, i64::from(d.days()))
}

/// `HH:MM:SS` and, when there is one, the fraction at the column's scale without trailing
/// zeros.
fn time_of_day(t: Time) -> String {
    let per_second = 10u64.pow(u32::from(t.scale()));
    let seconds = t.increments() / per_second;
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    let fraction = t.increments() % per_second;
    if fraction != 0 {
        let digits = format!("{fraction:0width$}", width = usize::from(t.scale()));
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

fn datetime2(dt: DateTime2) -> Result<String, Corrupt> {
    Ok(format!(
        "{}T{}",
        civil(JULIAN_DAY_0001, i64::from(dt.date().days()))?,
        time_of_day(dt.time())
    ))
}

/// The `datetime2` part is UTC; shown as local time with its offset, as SQL Server prints it.
fn datetimeoffset(dto: DateTimeOffset) -> Result<String, Corrupt> {
    let utc = dto.datetime2();
    let scale = utc.time().scale();
    let per_minute = 60 * 10i64.pow(u32::from(scale));
    let per_day = per_minute * 24 * 60;
    let increments = i64::try_from(utc.time().increments())
        .map_err(|_| "time out of range".to_owned())?
        + i64::from(dto.offset()) * per_minute;
    let days = i64::from(utc.date().days()) + increments.div_euclid(per_day);
    let local = Time::new(increments.rem_euclid(per_day).unsigned_abs(), scale);
    let offset = match dto.offset() {
        0 => "Z".to_owned(),
        minutes => format!(
            "{}{:02}:{:02}",
            if minutes < 0 { '-' } else { '+' },
            minutes.unsigned_abs() / 60,
            minutes.unsigned_abs() % 60
        ),
    };
    Ok(format!(
        "{}T{}{offset}",
        civil(JULIAN_DAY_0001, days)?,
        time_of_day(local)
    ))
}

/// `datetime`: days since 1900-01-01 and 1/300 seconds since midnight, shown in
/// milliseconds rounded as SQL Server shows them (`.003`, `.007`, `.010`).
fn datetime(dt: DateTime) -> Result<String, Corrupt> {
    let fragments = u64::from(dt.seconds_fragments());
    let millis = (fragments % 300 * 10 + 1) / 3;
    let time = Time::new((fragments / 300) * 1000 + millis, 3);
    Ok(format!(
        "{}T{}",
        civil(JULIAN_DAY_1900, i64::from(dt.days()))?,
        time_of_day(time)
    ))
}

/// `smalldatetime`: days since 1900-01-01 and minutes since midnight.
fn smalldatetime(dt: SmallDateTime) -> Result<String, Corrupt> {
    let seconds = u64::from(dt.seconds_fragments()) * 60 % SECONDS_PER_DAY;
    Ok(format!(
        "{}T{}",
        civil(JULIAN_DAY_1900, i64::from(dt.days()))?,
        time_of_day(Time::new(seconds, 0))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_spi::ErrorCode;

    #[test]
    fn json_params_bind_as_sql_server_types() {
        let bound = params(
            &[
                json!(null),
                json!(true),
                json!(9007199254740993_i64),
                json!(-1),
                json!(2.5),
                json!("héllo ✓"),
            ],
            "/params",
        )
        .unwrap();
        assert_eq!(
            bound,
            [
                Param::Null,
                Param::Bool(true),
                Param::Int(9007199254740993),
                Param::Int(-1),
                Param::Float(2.5),
                Param::Text("héllo ✓".into())
            ]
        );
        let sql: Vec<ColumnData<'_>> = bound.iter().map(ToSql::to_sql).collect();
        assert_eq!(
            sql,
            [
                ColumnData::String(None),
                ColumnData::Bit(Some(true)),
                ColumnData::I64(Some(9007199254740993)),
                ColumnData::I64(Some(-1)),
                ColumnData::F64(Some(2.5)),
                ColumnData::String(Some("héllo ✓".into())),
            ]
        );
        assert_eq!(as_sql(&bound).len(), 6);
    }

    #[test]
    fn unbindable_params_point_at_themselves() {
        let err = params(&[json!(1), json!(u64::MAX)], "/statements/2/params").unwrap_err();
        assert_eq!(err.code, ErrorCode::ParamsInvalid);
        assert_eq!(err.errors[0].pointer, "/statements/2/params/1");
        let err = params(&[json!([1])], "/params").unwrap_err();
        assert_eq!(err.errors[0].pointer, "/params/0");
    }

    #[test]
    fn cells_become_json_keeping_exact_values() {
        let cases = [
            (
                ColumnType::Int8,
                ColumnData::I64(Some(i64::MAX)),
                json!(i64::MAX),
            ),
            (ColumnType::Int4, ColumnData::I32(Some(-7)), json!(-7)),
            (ColumnType::Int1, ColumnData::U8(Some(255)), json!(255)),
            (ColumnType::Bitn, ColumnData::Bit(Some(false)), json!(false)),
            (ColumnType::Float4, ColumnData::F32(Some(2.5)), json!(2.5)),
            (ColumnType::Float8, ColumnData::F64(Some(0.1)), json!(0.1)),
            (
                ColumnType::Money,
                ColumnData::F64(Some(12.345)),
                json!("12.3450"),
            ),
            (
                ColumnType::Money,
                ColumnData::F64(Some(-123_456_789.123_4)),
                json!("-123456789.1234"),
            ),
            (
                ColumnType::NVarchar,
                ColumnData::String(Some("héllo ✓".into())),
                json!("héllo ✓"),
            ),
            (
                ColumnType::BigVarBin,
                ColumnData::Binary(Some(vec![0x00, 0xFF, 0x10].into())),
                json!("AP8Q"),
            ),
            (
                ColumnType::Numericn,
                ColumnData::Numeric(Some(Numeric::new_with_scale(12345, 2))),
                json!("123.45"),
            ),
            (
                ColumnType::Guid,
                ColumnData::Guid(Some(tiberius::Uuid::from_u128(
                    0x6f9619ff_8b86_d011_b42d_00c04fc964ff,
                ))),
                json!("6F9619FF-8B86-D011-B42D-00C04FC964FF"),
            ),
            (ColumnType::NVarchar, ColumnData::String(None), json!(null)),
            (ColumnType::Int8, ColumnData::I64(None), json!(null)),
            (ColumnType::Daten, ColumnData::Date(None), json!(null)),
        ];
        for (column_type, data, expected) in cases {
            assert_eq!(cell(column_type, &data).unwrap(), expected, "{data:?}");
        }
    }

    #[test]
    fn decimals_keep_every_digit_and_their_scale() {
        for (value, scale, text) in [
            (12345, 2, "123.45"),
            (-50, 2, "-0.50"),
            (5, 3, "0.005"),
            (7, 0, "7"),
            (0, 2, "0.00"),
            (
                i128::from(i64::MAX) * 1000 + 1,
                3,
                "9223372036854775807.001",
            ),
            (
                -(10_i128.pow(37)),
                37,
                "-1.0000000000000000000000000000000000000",
            ),
        ] {
            assert_eq!(
                decimal(Numeric::new_with_scale(value, scale)),
                text,
                "{value}e-{scale}"
            );
        }
    }

    #[test]
    fn dates_and_times_are_iso_8601() {
        // The epochs are what the day counts start from.
        let jd = |y, m, d| {
            i64::from(
                time::Date::from_calendar_date(y, m, d)
                    .unwrap()
                    .to_julian_day(),
            )
        };
        assert_eq!(JULIAN_DAY_0001, jd(1, time::Month::January, 1));
        assert_eq!(JULIAN_DAY_1900, jd(1900, time::Month::January, 1));

        assert_eq!(date(Date::new(0)).unwrap(), "0001-01-01");
        assert_eq!(date(Date::new(738_944)).unwrap(), "2024-02-29");
        assert_eq!(date(Date::new(3_652_058)).unwrap(), "9999-12-31");
        assert_eq!(time_of_day(Time::new(0, 7)), "00:00:00");
        assert_eq!(time_of_day(Time::new(453_967_890_000, 7)), "12:36:36.789");
        assert_eq!(
            time_of_day(Time::new(863_999_999_999, 7)),
            "23:59:59.9999999"
        );
        assert_eq!(time_of_day(Time::new(45_296, 0)), "12:34:56");
        let noon = DateTime2::new(Date::new(738_944), Time::new(43_200_500, 3));
        assert_eq!(datetime2(noon).unwrap(), "2024-02-29T12:00:00.5");
        // 10:30 UTC is 12:30 at +02:00 and 23:30 of the day before at -11:00.
        let utc = DateTime2::new(Date::new(738_944), Time::new(37_800, 0));
        assert_eq!(
            datetimeoffset(DateTimeOffset::new(utc, 120)).unwrap(),
            "2024-02-29T12:30:00+02:00"
        );
        assert_eq!(
            datetimeoffset(DateTimeOffset::new(utc, -660)).unwrap(),
            "2024-02-28T23:30:00-11:00"
        );
        assert_eq!(
            datetimeoffset(DateTimeOffset::new(utc, 0)).unwrap(),
            "2024-02-29T10:30:00Z"
        );
        // 45_000 days after 1900-01-01; 1/300 s ticks round like SQL Server's .003 / .007.
        assert_eq!(
            datetime(DateTime::new(45_000, 300 * 3600 + 2)).unwrap(),
            "2023-03-17T01:00:00.007"
        );
        assert_eq!(
            datetime(DateTime::new(-1, 300 * 86_400 - 1)).unwrap(),
            "1899-12-31T23:59:59.997"
        );
        assert_eq!(
            smalldatetime(SmallDateTime::new(45_000, 61)).unwrap(),
            "2023-03-17T01:01:00"
        );
    }

    #[test]
    fn type_names_use_the_common_vocabulary() {
        assert_eq!(sql_type_name(ColumnType::Int4), "INTEGER");
        assert_eq!(sql_type_name(ColumnType::Int8), "BIGINT");
        assert_eq!(sql_type_name(ColumnType::Float4), "REAL");
        assert_eq!(sql_type_name(ColumnType::NVarchar), "NVARCHAR");
        assert_eq!(sql_type_name(ColumnType::BigVarBin), "VARBINARY");
        for (declared, expected) in [
            (("int", None, Some(10), Some(0), None), "INTEGER"),
            (("bigint", None, Some(19), Some(0), None), "BIGINT"),
            (("varchar", Some(40), None, None, None), "VARCHAR(40)"),
            (("nvarchar", Some(-1), None, None, None), "NVARCHAR(MAX)"),
            (("varbinary", Some(-1), None, None, None), "VARBINARY(MAX)"),
            (("decimal", None, Some(10), Some(2), None), "DECIMAL(10,2)"),
            (("datetime2", None, None, None, Some(7)), "DATETIME2"),
            (("datetime2", None, None, None, Some(3)), "DATETIME2(3)"),
            (("real", None, Some(24), None, None), "REAL"),
            (
                ("uniqueidentifier", None, None, None, None),
                "UNIQUEIDENTIFIER",
            ),
        ] {
            let (t, l, p, s, d) = declared;
            assert_eq!(declared_type_name(t, l, p, s, d), expected, "{t}");
        }
    }
}
