//! Quantities and money as scaled integers.
//!
//! Both arrive and leave as decimal strings and are integers in between and in every table:
//! SQLite has no exact decimal type (a `NUMERIC` column silently turns into a float when a
//! value is not an integer), so scaled integers are the only representation both engines keep
//! digit for digit. A quantity counts millionths of its unit (scale 6); money counts
//! ten-thousandths (scale 4, the ledger's scale, so a reported cost posts there unchanged).
//! Products and quotients are computed in `i128` and rounded half away from zero.

use serde_json::Value;
use switchyard_contracts::{ErrorCode, FieldError, Problem};

/// Fraction digits of a quantity.
pub const QTY_SCALE: u32 = 6;
/// Fraction digits of money (costs, values).
pub const MONEY_SCALE: u32 = 4;
/// The largest magnitude any stored quantity or value may reach (a `CHECK` in the tables). It
/// keeps SQLite's integer arithmetic, which turns to floating point on overflow, far from
/// `i64::MAX`: two values under the limit never overflow when added.
pub const LIMIT: i64 = 1_000_000_000_000_000_000;

/// Which values a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Positive,
    NonNegative,
    NonZero,
    Any,
}

/// `raw` (a plain decimal string, `-` allowed only for [`Sign::NonZero`] and [`Sign::Any`]) in units of
/// `10^-scale`. `pointer` names the field in errors.
pub fn parse(raw: &str, scale: u32, sign: Sign, pointer: &str) -> Result<i64, Problem> {
    let invalid = |why: String| {
        Problem::new(ErrorCode::ParamsInvalid, format!("{raw:?} {why}")).with_errors(vec![
            FieldError {
                pointer: pointer.into(),
                detail: format!("{raw:?} {why}"),
            },
        ])
    };
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) if matches!(sign, Sign::NonZero | Sign::Any) => (true, rest),
        _ => (false, raw),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !plain(whole) || !plain(fraction) || digits.ends_with('.') {
        return Err(invalid("is not a plain decimal string".into()));
    }
    if fraction.len() > scale as usize {
        return Err(invalid(format!("has more than {scale} fraction digits")));
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 18 - scale as usize {
        return Err(invalid("is too large".into()));
    }
    let mut units: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        units = units * 10 + i128::from(b - b'0');
    }
    units *= 10_i128.pow(scale - fraction.len() as u32);
    if units > i128::from(LIMIT) {
        return Err(invalid("is too large".into()));
    }
    let units = if negative { -units } else { units } as i64;
    let refused = match sign {
        Sign::Positive if units <= 0 => Some("must be greater than zero"),
        Sign::NonNegative if units < 0 => Some("must not be negative"),
        Sign::NonZero if units == 0 => Some("must not be zero"),
        _ => None,
    };
    if let Some(why) = refused {
        return Err(invalid(why.into()));
    }
    Ok(units)
}

/// A positive quantity.
pub fn quantity(raw: &str, pointer: &str) -> Result<i64, Problem> {
    parse(raw, QTY_SCALE, Sign::Positive, pointer)
}

/// A non-negative amount of money.
pub fn money(raw: &str, pointer: &str) -> Result<i64, Problem> {
    parse(raw, MONEY_SCALE, Sign::NonNegative, pointer)
}

/// A quantity as the shortest exact decimal string (`50000`, `2.5`, `-0.25`).
pub fn format_qty(units: i128) -> String {
    let text = fixed(units, QTY_SCALE);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Money with exactly four fraction digits (`12.5000`), as the ledger writes it.
pub fn format_money(units: i128) -> String {
    fixed(units, MONEY_SCALE)
}

fn fixed(units: i128, scale: u32) -> String {
    let factor = 10_i128.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let magnitude = units.unsigned_abs();
    let factor = factor as u128;
    format!(
        "{sign}{}.{:0width$}",
        magnitude / factor,
        magnitude % factor,
        width = scale as usize
    )
}

/// `a * b / divisor`, rounded half away from zero. `divisor` must not be zero.
pub fn mul_div(a: i128, b: i128, divisor: i128) -> i128 {
    let product = a * b;
    let quotient = product / divisor;
    let remainder = product % divisor;
    if remainder.abs() * 2 >= divisor.abs() {
        quotient + product.signum() * divisor.signum()
    } else {
        quotient
    }
}

/// The value of `qty` (scaled by [`QTY_SCALE`]) at `unit_cost` (money per unit, scaled by
/// [`MONEY_SCALE`]), in money units.
pub fn value_of(qty: i64, unit_cost: i64) -> i128 {
    mul_div(
        i128::from(qty),
        i128::from(unit_cost),
        10_i128.pow(QTY_SCALE),
    )
}

/// Money per unit: `value` spread over `qty`; zero for no quantity.
pub fn unit_cost(value: i64, qty: i64) -> i128 {
    if qty == 0 {
        return 0;
    }
    mul_div(i128::from(value), 10_i128.pow(QTY_SCALE), i128::from(qty))
}

/// An integer column as the db provider answers it: a JSON number, or for a PostgreSQL
/// `numeric` a decimal string without fraction.
pub fn read(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_into_scaled_units() {
        assert_eq!(quantity("50000", "/q").unwrap(), 50_000_000_000);
        assert_eq!(quantity("2.5", "/q").unwrap(), 2_500_000);
        assert_eq!(quantity("0.000001", "/q").unwrap(), 1);
        assert_eq!(money("12.34", "/c").unwrap(), 123_400);
        assert_eq!(money("0", "/c").unwrap(), 0);
        assert_eq!(
            parse("-3.25", QTY_SCALE, Sign::NonZero, "/q").unwrap(),
            -3_250_000
        );
        assert_eq!(
            quantity("999999999999", "/q").unwrap(),
            999_999_999_999_000_000
        );
    }

    #[test]
    fn malformed_signed_or_oversized_decimals_are_refused_with_a_pointer() {
        for bad in [
            "",
            "1.",
            ".5",
            "1e3",
            "-1",
            "0",
            "1.0000001",
            "+1",
            "1 000",
            "1000000000001",
        ] {
            let problem = quantity(bad, "/quantity").unwrap_err();
            assert_eq!(problem.code, ErrorCode::ParamsInvalid, "{bad:?}");
            assert_eq!(problem.errors[0].pointer, "/quantity");
        }
        assert!(money("1.23456", "/c").is_err());
        assert!(parse("0", QTY_SCALE, Sign::NonZero, "/q").is_err());
        assert!(parse("-0", QTY_SCALE, Sign::NonZero, "/q").is_err());
    }

    #[test]
    fn formatting_is_exact_and_round_trips() {
        assert_eq!(format_qty(50_000_000_000), "50000");
        assert_eq!(format_qty(2_500_000), "2.5");
        assert_eq!(format_qty(-250_000), "-0.25");
        assert_eq!(format_qty(0), "0");
        assert_eq!(format_money(123_400), "12.3400");
        assert_eq!(format_money(-5), "-0.0005");
        for text in ["1", "0.000001", "123456.789"] {
            assert_eq!(format_qty(i128::from(quantity(text, "/q").unwrap())), text);
        }
    }

    #[test]
    fn products_and_averages_round_half_away_from_zero() {
        // 3 units at 0.3333 = 0.9999; 1.5 units at 0.0001 = 0.00015 -> 0.0002.
        assert_eq!(value_of(3_000_000, 3_333), 9_999);
        assert_eq!(value_of(1_500_000, 1), 2);
        assert_eq!(mul_div(-3, 1, 2), -2);
        assert_eq!(mul_div(10, 1, 3), 3);
        // 10.0000 over 3 units: 3.3333 each.
        assert_eq!(unit_cost(100_000, 3_000_000), 33_333);
        assert_eq!(unit_cost(5, 0), 0);
    }
}
