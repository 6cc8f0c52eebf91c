//! Money as scaled integers: an amount is a count of ten-thousandths (scale 4).
//!
//! Amounts arrive as decimal strings and leave as decimal strings; in between, and in every
//! table, they are integers. SQLite has no exact decimal type (a `NUMERIC` column silently
//! becomes a float when a value does not fit an integer), so storing scaled integers is the
//! only way both engines keep every digit. Rust-side sums use `i128`, which no journal or
//! trial balance can overflow.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use switchyard_contracts::{ErrorCode, FieldError, Problem};

/// Fraction digits kept: 4, enough for every ISO 4217 currency (the most is 4, e.g. CLF).
pub const SCALE: u32 = 4;

/// The largest debit or credit total a balance row holds (a `CHECK` in the table): it keeps
/// SQLite's integer arithmetic, which turns to floating point on overflow, away from `i64::MAX`.
pub const TOTAL_LIMIT: i64 = 9_000_000_000_000_000_000;

/// Parses a positive decimal string of at most [`SCALE`] fraction digits into scaled units.
/// `pointer` names the field in errors.
pub fn parse(raw: &str, pointer: &str) -> Result<i64, Problem> {
    let invalid = |why: &str| {
        Problem::new(ErrorCode::ParamsInvalid, format!("amount {raw:?} {why}")).with_errors(vec![
            FieldError {
                pointer: pointer.into(),
                detail: format!("{raw:?} {why}"),
            },
        ])
    };
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid("is not a plain decimal string"));
    }
    let mut value = Decimal::from_str(raw).map_err(|_| invalid("is not a decimal"))?;
    if value.scale() > SCALE {
        return Err(invalid("has more than 4 fraction digits"));
    }
    value.rescale(SCALE);
    let units =
        i64::try_from(value.mantissa()).map_err(|_| invalid("is larger than the ledger holds"))?;
    if units <= 0 {
        return Err(invalid("must be greater than zero"));
    }
    Ok(units)
}

/// Scaled units as a decimal string with exactly [`SCALE`] fraction digits (`-` when negative).
pub fn format(units: i128) -> String {
    Decimal::from_i128_with_scale(units, SCALE).to_string()
}

/// An integer column as the db provider answers it: a JSON number (SQLite, `bigint`) or, for
/// PostgreSQL `numeric` (what `SUM(bigint)` gives), a decimal string.
pub fn read(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(i128::from),
        Value::String(s) => {
            let mut d = Decimal::from_str(s).ok()?;
            if !d.fract().is_zero() {
                return None;
            }
            d.rescale(0);
            Some(d.mantissa())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_round_trip_exactly() {
        assert_eq!(parse("12.5", "/x").unwrap(), 125_000);
        assert_eq!(parse("0.0001", "/x").unwrap(), 1);
        assert_eq!(
            parse("99999999999999.9999", "/x").unwrap(),
            999_999_999_999_999_999
        );
        assert_eq!(format(125_000), "12.5000");
        assert_eq!(format(-1), "-0.0001");
        assert_eq!(format(0), "0.0000");
        // 0.1 + 0.2 is 0.3 here, unlike in floating point.
        let sum = i128::from(parse("0.1", "/a").unwrap()) + i128::from(parse("0.2", "/b").unwrap());
        assert_eq!(format(sum), "0.3000");
    }

    #[test]
    fn zero_signs_exponents_and_extra_digits_are_refused_with_a_pointer() {
        for bad in ["0", "0.0000", "-1", "1e3", "1.23456", "", " 1", "1,5", "+1"] {
            let problem = parse(bad, "/lines/0/debit").unwrap_err();
            assert_eq!(problem.code, ErrorCode::ParamsInvalid, "{bad:?}");
            assert_eq!(problem.errors[0].pointer, "/lines/0/debit");
        }
    }

    #[test]
    fn columns_read_as_numbers_or_numeric_strings() {
        assert_eq!(read(&json!(42)), Some(42));
        assert_eq!(
            read(&json!("123456789012345678901234")),
            Some(123_456_789_012_345_678_901_234)
        );
        assert_eq!(read(&json!("7.0000")), Some(7));
        assert_eq!(read(&json!(null)), None);
        assert_eq!(read(&json!("7.5")), None);
        assert_eq!(read(&json!(1.5)), None);
    }
}
