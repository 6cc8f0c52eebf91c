//! Money and quantities as scaled integers, and the one rounding rule of the business services.
//!
//! **Representation.** A [`Money`] counts ten-thousandths (scale 4, enough for every ISO 4217
//! currency: the most is 4, e.g. CLF); a [`Quantity`] counts millionths of its unit (scale 6).
//! Both arrive and leave as decimal strings and are integers in between and in every table:
//! SQLite has no exact decimal type (a `NUMERIC` column silently turns into a float when a
//! value is not an integer), so scaled integers are the only form both engines keep digit for
//! digit. The stored form is exactly these integers; this module changes no table.
//!
//! **Parsing never rounds.** A string with more fraction digits than the scale is refused
//! (`params_invalid` with the field's pointer), not rounded: the caller meant a value we cannot
//! keep, and guessing which one would put an amount on the books nobody entered.
//!
//! **The rounding rule: half away from zero, once, where a value is derived.** Rounding
//! happens in exactly three places, all through [`round_div`]:
//! - the value of a quantity at a unit price or cost, [`Money::of`] (a receipt, an adjustment
//!   at a given cost, an order line);
//! - a unit cost from a value over a quantity, [`Money::per`] (an average cost shown in a
//!   report, an order line's unit price);
//! - the share of a value that part of a quantity carries, [`Money::share`] and
//!   [`Money::at_average`] (an issue at the moving average, a lot's value split over its
//!   outputs).
//!
//! Half away from zero is commercial rounding (what accountants and the euro conversion rules
//! use, and what the inventory has stored since its first day, so every stored value stays
//! reproducible). Half to even only pays off when rounded values are rounded again, and here
//! they never are: sums and differences of stored values are exact ([`Money::checked_add`]);
//! taking a stream's whole quantity takes its whole stored value; a split gives its last share
//! the remainder; and **a reversal never re-rounds**: a return, a cancellation or a reversing
//! journal carries the stored value that left, never quantity × a recomputed unit cost. So a
//! sale and its full return net to exactly zero.
//!
//! Products and quotients are computed in `i128`, where two stored values (at most
//! [`LIMIT`]) multiply without overflow.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use switchyard_contracts::{ErrorCode, FieldError, Problem};

/// The largest magnitude a parsed or derived value takes (the services' tables `CHECK` it
/// too). It keeps SQLite's integer arithmetic, which turns to floating point on overflow, far
/// from `i64::MAX`: two values under the limit never overflow when added. Every published
/// schema stays below it (at most 18 digits).
pub const LIMIT: i64 = 1_000_000_000_000_000_000;

/// Which values a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Positive,
    NonNegative,
    /// Either sign (a leading `-`), but not zero: an adjustment.
    NonZero,
    Any,
}

/// A newtype over a stored scaled integer with what every such value shares: parsing from
/// text (never rounding), exact sums and differences within [`LIMIT`], exact conversion from
/// and to rust_decimal, and `Display` through the type's own `format_sum`.
macro_rules! scaled {
    ($(#[$doc:meta])* $name:ident, $scale:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub i64);

        impl $name {
            /// Fraction digits kept.
            pub const SCALE: u32 = $scale;
            pub const ZERO: $name = $name(0);

            #[doc = concat!("`raw`, a plain decimal string (`", $example, "`; `-` only where `sign` allows")]
            /// a negative) of at most `SCALE` fraction digits. `pointer` names the field in
            /// errors.
            pub fn parse(raw: &str, sign: Sign, pointer: &str) -> Result<Self, Problem> {
                parse_units(raw, Self::SCALE, sign, pointer).map(Self)
            }

            pub fn units(self) -> i64 {
                self.0
            }

            /// The exact sum; `None` beyond [`LIMIT`].
            pub fn checked_add(self, other: Self) -> Option<Self> {
                within_limit(i128::from(self.0) + i128::from(other.0)).map(Self)
            }

            /// The exact difference; `None` beyond [`LIMIT`].
            pub fn checked_sub(self, other: Self) -> Option<Self> {
                within_limit(i128::from(self.0) - i128::from(other.0)).map(Self)
            }

            pub fn to_decimal(self) -> Decimal {
                Decimal::new(self.0, Self::SCALE)
            }

            /// `amount` exactly; `None` when it has more fraction digits than are kept or
            /// lies beyond [`LIMIT`] (never rounded, see the module docs).
            pub fn from_decimal(amount: Decimal) -> Option<Self> {
                units_of(amount, Self::SCALE).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&Self::format_sum(self.0.into()))
            }
        }
    };
}

scaled!(
    /// An amount of money in ten-thousandths of the currency unit (the stored integer);
    /// shown with exactly four fraction digits: `12.5000`, `-0.0005`.
    Money, 4, "12.5"
);

scaled!(
    /// A quantity in millionths of its unit of measure (the stored integer); shown as the
    /// shortest exact decimal: `50000`, `2.5`, `-0.25`.
    Quantity, 6, "2.5"
);

impl Money {
    /// What `qty` is worth at `unit_price` (money per unit), rounded half away from zero;
    /// `None` beyond [`LIMIT`].
    pub fn of(qty: Quantity, unit_price: Money) -> Option<Self> {
        let unit = 10_i128.pow(Quantity::SCALE);
        within_limit(round_div(
            i128::from(qty.0) * i128::from(unit_price.0),
            unit,
        ))
        .map(Self)
    }

    /// The unit cost: `self` spread over `qty`, rounded half away from zero; `None` for no
    /// quantity or a unit cost beyond [`LIMIT`].
    pub fn per(self, qty: Quantity) -> Option<Self> {
        if qty.0 == 0 {
            return None;
        }
        let unit = 10_i128.pow(Quantity::SCALE);
        within_limit(round_div(i128::from(self.0) * unit, i128::from(qty.0))).map(Self)
    }

    /// The part of `self` that `part` of `whole` carries (`self × part ÷ whole`), rounded half
    /// away from zero: what taking `part` out of stock `whole` worth `self` costs. Taking all
    /// of `whole` or more takes all of `self`, so no rounding residue is left behind; taking
    /// nothing costs nothing. Never beyond `self`, so it cannot fail.
    pub fn share(self, part: Quantity, whole: Quantity) -> Self {
        if part.0 >= whole.0 {
            return self;
        }
        if part.0 <= 0 {
            return Self::ZERO;
        }
        let share = round_div(i128::from(self.0) * i128::from(part.0), i128::from(whole.0));
        // 0 < part < whole, so the share lies between zero and `self`.
        Self(share as i64)
    }

    /// What `qty` is worth at the average cost of `self` over `of` (`self × qty ÷ of`, rounded
    /// once, not through a rounded unit cost); `None` for no `of` or a value beyond [`LIMIT`].
    pub fn at_average(self, qty: Quantity, of: Quantity) -> Option<Self> {
        if of.0 == 0 {
            return None;
        }
        let value = round_div(i128::from(self.0) * i128::from(qty.0), i128::from(of.0));
        within_limit(value).map(Self)
    }

    /// A sum of stored amounts (a balance, a report total), which may exceed one amount's
    /// range, with exactly [`Money::SCALE`] fraction digits as the ledger writes it.
    pub fn format_sum(units: i128) -> String {
        fixed(units, Self::SCALE)
    }
}

impl Quantity {
    /// A sum of stored quantities as the shortest exact decimal string (`50000`, `2.5`).
    pub fn format_sum(units: i128) -> String {
        let text = fixed(units, Self::SCALE);
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// The one rounding rule: `numerator ÷ divisor` rounded half away from zero. `divisor` must
/// not be zero. Exposed for ratios that are neither money nor quantity (a percentage in
/// hundredths), so they round like everything else.
pub fn round_div(numerator: i128, divisor: i128) -> i128 {
    let quotient = numerator / divisor;
    let remainder = numerator % divisor;
    if remainder.unsigned_abs() * 2 >= divisor.unsigned_abs() {
        quotient + numerator.signum() * divisor.signum()
    } else {
        quotient
    }
}

/// A stored scaled integer as the db provider answers it: a JSON number (SQLite, `bigint`) or,
/// for PostgreSQL `numeric` (what `SUM(bigint)` gives), a decimal string without fraction
/// (`"7"`, `"7.0000"`).
pub fn read_units(value: &Value) -> Option<i128> {
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

fn parse_units(raw: &str, scale: u32, sign: Sign, pointer: &str) -> Result<i64, Problem> {
    let invalid = |why: String| {
        Problem::new(ErrorCode::ParamsInvalid, format!("{raw:?} {why}")).with_errors(vec![
            FieldError {
                pointer: pointer.into(),
                detail: format!("{raw:?} {why}"),
            },
        ])
    };
    let digits = match raw.strip_prefix('-') {
        Some(rest) if matches!(sign, Sign::NonZero | Sign::Any) => rest,
        _ => raw,
    };
    // rust_decimal also reads `.5`, `1.`, `1_000` and exponents; the published schemas do not.
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !plain(whole) || !plain(fraction) {
        return Err(invalid("is not a plain decimal string".into()));
    }
    if fraction.len() > scale as usize {
        return Err(invalid(format!("has more than {scale} fraction digits")));
    }
    let too_large = || invalid("exceeds what is kept".into());
    let mut value = Decimal::from_str_exact(raw).map_err(|_| too_large())?;
    value.rescale(scale);
    let units = within_limit(value.mantissa()).ok_or_else(too_large)?;
    let refused = match sign {
        Sign::Positive if units <= 0 => Some("must be greater than zero"),
        Sign::NonNegative if units < 0 => Some("must not be negative"),
        Sign::NonZero if units == 0 => Some("must not be zero"),
        _ => None,
    };
    match refused {
        Some(why) => Err(invalid(why.into())),
        None => Ok(units),
    }
}

fn units_of(amount: Decimal, scale: u32) -> Option<i64> {
    let mut exact = amount.normalize();
    if exact.scale() > scale {
        return None;
    }
    exact.rescale(scale);
    within_limit(exact.mantissa())
}

fn within_limit(units: i128) -> Option<i64> {
    if units.unsigned_abs() > LIMIT.unsigned_abs().into() {
        return None;
    }
    i64::try_from(units).ok()
}

/// `units` with exactly `scale` fraction digits; exact for every `i128`.
fn fixed(units: i128, scale: u32) -> String {
    let factor = 10_u128.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let magnitude = units.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        magnitude / factor,
        magnitude % factor,
        width = scale as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::RoundingStrategy;
    use serde_json::json;

    fn money(raw: &str) -> Money {
        Money::parse(raw, Sign::Any, "/m").unwrap()
    }

    fn qty(raw: &str) -> Quantity {
        Quantity::parse(raw, Sign::Any, "/q").unwrap()
    }

    #[test]
    fn decimals_parse_exactly_into_scaled_units() {
        assert_eq!(
            Quantity::parse("50000", Sign::Positive, "/q").unwrap(),
            Quantity(50_000_000_000)
        );
        assert_eq!(qty("2.5"), Quantity(2_500_000));
        assert_eq!(qty("0.000001"), Quantity(1));
        assert_eq!(qty("-3.25"), Quantity(-3_250_000));
        assert_eq!(qty("999999999999"), Quantity(999_999_999_999_000_000));
        assert_eq!(money("12.34"), Money(123_400));
        assert_eq!(money("0.0001"), Money(1));
        assert_eq!(money("99999999999999.9999"), Money(999_999_999_999_999_999));
        assert_eq!(
            Money::parse("0", Sign::NonNegative, "/c").unwrap(),
            Money::ZERO
        );
        // 0.1 + 0.2 is 0.3 here, unlike in floating point.
        let sum = money("0.1").checked_add(money("0.2")).unwrap();
        assert_eq!(sum.to_string(), "0.3000");
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
            "0.0000",
            "1.0000001",
            "+1",
            "1 000",
            " 1",
            "1,5",
            "1_000",
            "-",
            "1000000000001",
            "0x10",
            "NaN",
        ] {
            let problem = Quantity::parse(bad, Sign::Positive, "/lines/0/quantity").unwrap_err();
            assert_eq!(problem.code, ErrorCode::ParamsInvalid, "{bad:?}");
            assert_eq!(problem.errors[0].pointer, "/lines/0/quantity", "{bad:?}");
        }
        assert!(Money::parse("1.23456", Sign::Any, "/c").is_err());
        assert!(Money::parse("-1", Sign::NonNegative, "/c").is_err());
        assert!(Money::parse("100000000000000.0001", Sign::Any, "/c").is_err());
        assert!(Money::parse("1".repeat(40).as_str(), Sign::Any, "/c").is_err());
        assert!(Quantity::parse("0", Sign::NonZero, "/q").is_err());
        assert!(Quantity::parse("-0", Sign::NonZero, "/q").is_err());
        assert_eq!(
            Quantity::parse("-0", Sign::Any, "/q").unwrap(),
            Quantity::ZERO
        );
    }

    #[test]
    fn formatting_is_exact() {
        assert_eq!(Quantity(50_000_000_000).to_string(), "50000");
        assert_eq!(Quantity(2_500_000).to_string(), "2.5");
        assert_eq!(Quantity(-250_000).to_string(), "-0.25");
        assert_eq!(Quantity(0).to_string(), "0");
        assert_eq!(Quantity(100_000_000).to_string(), "100");
        assert_eq!(Money(123_400).to_string(), "12.3400");
        assert_eq!(Money(-5).to_string(), "-0.0005");
        assert_eq!(Money(0).to_string(), "0.0000");
        assert_eq!(
            Money::format_sum(i128::from(i64::MAX) * 4),
            "3689348814741910.3228"
        );
    }

    #[test]
    fn derived_values_round_half_away_from_zero() {
        // 3 units at 0.3333 = 0.9999; 1.5 units at 0.0001 = 0.00015 -> 0.0002.
        assert_eq!(Money::of(qty("3"), money("0.3333")), Some(money("0.9999")));
        assert_eq!(
            Money::of(qty("1.5"), money("0.0001")),
            Some(money("0.0002"))
        );
        assert_eq!(
            Money::of(qty("-1.5"), money("0.0001")),
            Some(money("-0.0002"))
        );
        assert_eq!(
            Money::of(qty("1.4"), money("0.0001")),
            Some(money("0.0001"))
        );
        // Half to even would give 0.0002 for 2.5 × 0.0001 = 0.00025; we give 0.0003.
        assert_eq!(
            Money::of(qty("2.5"), money("0.0001")),
            Some(money("0.0003"))
        );
        assert_eq!(round_div(-3, 2), -2);
        assert_eq!(round_div(3, -2), -2);
        assert_eq!(round_div(10, 3), 3);
        assert_eq!(round_div(5, 10), 1);
        // 10.0000 over 3 units: 3.3333 each; 3.0002 over 3: 1.0001 (a return must not use it).
        assert_eq!(money("10").per(qty("3")), Some(money("3.3333")));
        assert_eq!(money("3.0002").per(qty("3")), Some(money("1.0001")));
        assert_eq!(money("5").per(Quantity::ZERO), None);
        // A third of 3.0002 is 1.0001 (rounded); all of it, or more, is the whole value.
        assert_eq!(money("3.0002").share(qty("1"), qty("3")), money("1.0001"));
        assert_eq!(money("3.0002").share(qty("3"), qty("3")), money("3.0002"));
        assert_eq!(money("3.0002").share(qty("4"), qty("3")), money("3.0002"));
        assert_eq!(money("1").share(Quantity::ZERO, Quantity::ZERO), money("1"));
        assert_eq!(money("1").share(Quantity::ZERO, qty("2")), Money::ZERO);
        // 6.6667 over 2 units: 1 unit is worth 3.33335 -> 3.3334, rounded once.
        assert_eq!(
            money("6.6667").at_average(qty("1"), qty("2")),
            Some(money("3.3334"))
        );
        assert_eq!(
            money("6.6667").at_average(qty("3"), qty("2")),
            Some(money("10.0001"))
        );
        assert_eq!(money("1").at_average(qty("1"), Quantity::ZERO), None);
    }

    #[test]
    fn results_beyond_the_limit_are_none_not_wrapped() {
        let most = Money(LIMIT);
        assert_eq!(most.checked_add(Money(1)), None);
        assert_eq!(Money(-LIMIT).checked_sub(Money(1)), None);
        assert_eq!(Money::of(Quantity(LIMIT), Money(LIMIT)), None);
        assert_eq!(most.per(Quantity(1)), None);
        assert_eq!(Money::of(qty("1000"), most), None);
        assert_eq!(most.at_average(qty("2"), qty("1")), None);
        assert_eq!(Quantity(LIMIT).checked_add(Quantity(1)), None);
    }

    #[test]
    fn decimals_convert_exactly_or_not_at_all() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(Money::from_decimal(d("3.00020")), Some(money("3.0002")));
        assert_eq!(Money::from_decimal(d("0.00001")), None);
        assert_eq!(Quantity::from_decimal(d("2.5")), Some(qty("2.5")));
        assert_eq!(Quantity::from_decimal(d("0.0000001")), None);
        assert_eq!(money("12.5").to_decimal(), d("12.5000"));
        assert_eq!(qty("-2.5").to_decimal(), d("-2.5"));
    }

    #[test]
    fn columns_read_as_numbers_or_numeric_strings() {
        assert_eq!(read_units(&json!(42)), Some(42));
        assert_eq!(
            read_units(&json!("123456789012345678901234")),
            Some(123_456_789_012_345_678_901_234)
        );
        assert_eq!(read_units(&json!("7.0000")), Some(7));
        assert_eq!(read_units(&json!("-7")), Some(-7));
        assert_eq!(read_units(&json!(null)), None);
        assert_eq!(read_units(&json!("7.5")), None);
        assert_eq!(read_units(&json!(1.5)), None);
    }

    fn any_units() -> impl Strategy<Value = i64> {
        -LIMIT..=LIMIT
    }

    proptest! {
        #[test]
        fn every_value_round_trips_through_its_text(money in any_units(), qty in any_units()) {
            let m = Money(money);
            prop_assert_eq!(Money::parse(&m.to_string(), Sign::Any, "/m").unwrap(), m);
            let q = Quantity(qty);
            prop_assert_eq!(Quantity::parse(&q.to_string(), Sign::Any, "/q").unwrap(), q);
            prop_assert_eq!(Money::from_decimal(m.to_decimal()), Some(m));
            prop_assert_eq!(Quantity::from_decimal(q.to_decimal()), Some(q));
        }

        #[test]
        fn values_round_as_rust_decimal_rounds_midpoints_away_from_zero(
            qty in -1_000_000_000_000_i64..=1_000_000_000_000,
            price in -1_000_000_000_000_i64..=1_000_000_000_000,
        ) {
            let exact = Quantity(qty).to_decimal() * Money(price).to_decimal();
            let expected = exact.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
            let value = Money::of(Quantity(qty), Money(price)).unwrap();
            prop_assert_eq!(value.to_decimal(), expected);
        }

        #[test]
        fn rounding_is_to_the_nearest_and_symmetric(n in any::<i64>(), d in any::<i64>()) {
            prop_assume!(d != 0);
            let (n, d) = (i128::from(n), i128::from(d));
            let q = round_div(n, d);
            // Never more than half a unit off, and a tie goes away from zero.
            let off = (q * d - n).abs() * 2;
            prop_assert!(off <= d.abs());
            if off == d.abs() {
                prop_assert!(q.abs() * d.abs() > n.abs());
            }
            prop_assert_eq!(round_div(-n, d), -q);
            prop_assert_eq!(round_div(n, -d), -q);
        }

        #[test]
        fn a_share_is_the_rounded_proportion_and_never_exceeds_the_value(
            value in 0..LIMIT, part in 1..LIMIT, rest in 1..LIMIT,
        ) {
            let (value, part) = (Money(value), Quantity(part));
            let whole = part.checked_add(Quantity(rest)).unwrap_or(Quantity(LIMIT));
            prop_assume!(part < whole);
            let share = value.share(part, whole);
            prop_assert!(share >= Money::ZERO && share <= value);
            prop_assert_eq!(Some(share), value.at_average(part, whole));
            // Within half a ten-thousandth of the exact proportion.
            let off = (i128::from(share.0) * i128::from(whole.0)
                - i128::from(value.0) * i128::from(part.0))
            .abs();
            prop_assert!(off * 2 <= i128::from(whole.0));
            prop_assert_eq!(value.share(whole, whole), value);
        }
    }
}
