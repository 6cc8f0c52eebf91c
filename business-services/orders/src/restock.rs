//! Receiving a returned line back at exactly the value that left.
//!
//! The inventory receives stock at a unit cost of four fraction digits and values it at
//! quantity × unit cost, rounded to four places; the value an issue removed (the stream's
//! moving average times the quantity) is seldom such a product. One sheet at 1.0000 and two at
//! 1.0001 leave worth 3.0002, and three back at the rounded 1.0001 would come back worth
//! 3.0003, leaving inventory and COGS a ten-thousandth apart. So a line comes back in at most
//! two receipts whose values add up to the issued value exactly.

use rust_decimal::Decimal;

/// Fraction digits of an inventory quantity.
const QTY_SCALE: u32 = 6;
/// Fraction digits of money.
const MONEY_SCALE: u32 = 4;
/// `10^QTY_SCALE`: the inventory values `quantity` units at `unit_cost` as
/// `quantity * unit_cost / UNIT`, both scaled, rounded half away from zero.
const UNIT: i128 = 1_000_000;

/// One receipt: a quantity and the unit cost it comes back at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub quantity: Decimal,
    pub unit_cost: Decimal,
}

/// The receipts (one or two) that bring `quantity` back worth exactly `value`; `None` when
/// either has more fraction digits than the inventory keeps or is negative.
pub fn parts(quantity: Decimal, value: Decimal) -> Option<Vec<Part>> {
    let q = scaled(quantity, QTY_SCALE)?;
    let v = scaled(value, MONEY_SCALE)?;
    if q <= 0 || v < 0 {
        return None;
    }
    let target = v * UNIT;
    let cost = target / q;
    let short = target - q * cost;
    let split = if short == 0 {
        vec![(q, cost)]
    } else if value_of(q - short, cost) + value_of(short, cost + 1) == v {
        // `q - short` units at `cost` and `short` at one ten-thousandth more are worth
        // `target` exactly; the check guards the two roundings adding to one too many.
        vec![(q - short, cost), (short, cost + 1)]
    } else {
        // All but the smallest quantity at the rounded-down cost; the smallest carries the
        // rest, which it can since its value is its unit cost over `UNIT`, exactly.
        let rest = v - value_of(q - 1, cost);
        vec![(q - 1, cost), (1, rest * UNIT)]
    };
    Some(
        split
            .into_iter()
            .filter(|&(quantity, _)| quantity > 0)
            .map(|(quantity, cost)| Part {
                quantity: Decimal::from_i128_with_scale(quantity, QTY_SCALE).normalize(),
                unit_cost: Decimal::from_i128_with_scale(cost, MONEY_SCALE),
            })
            .collect(),
    )
}

/// What the inventory values `quantity` (scaled) at `unit_cost` (scaled), both non-negative:
/// rounded half up.
pub fn value_of(quantity: i128, unit_cost: i128) -> i128 {
    let product = quantity * unit_cost;
    product / UNIT + i128::from(product % UNIT * 2 >= UNIT)
}

/// `amount` as an integer count of `10^-scale`, if it has no more fraction digits than that.
fn scaled(amount: Decimal, scale: u32) -> Option<i128> {
    let mut exact = amount.normalize();
    if exact.scale() > scale {
        return None;
    }
    exact.rescale(scale);
    Some(exact.mantissa())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn worth(parts: &[Part]) -> i128 {
        parts
            .iter()
            .map(|p| {
                value_of(
                    scaled(p.quantity, QTY_SCALE).unwrap(),
                    scaled(p.unit_cost, MONEY_SCALE).unwrap(),
                )
            })
            .sum()
    }

    #[test]
    fn three_sheets_worth_3_0002_come_back_as_one_at_1_0000_and_two_at_1_0001() {
        let parts = parts(d("3"), d("3.0002")).unwrap();
        assert_eq!(
            parts,
            vec![
                Part {
                    quantity: d("1"),
                    unit_cost: d("1.0000")
                },
                Part {
                    quantity: d("2"),
                    unit_cost: d("1.0001")
                },
            ]
        );
    }

    #[test]
    fn an_exact_unit_cost_is_one_receipt() {
        let exact = parts(d("3"), d("12.0000")).unwrap();
        assert_eq!(exact.len(), 1);
        assert_eq!(exact[0].unit_cost, d("4.0000"));
        let free = parts(d("2"), d("0")).unwrap();
        assert_eq!(free.len(), 1);
        assert_eq!(free[0].unit_cost, d("0"));
    }

    #[test]
    fn every_quantity_and_value_comes_back_exactly() {
        for quantity in [
            "1", "3", "7", "0.000001", "0.5", "2.5", "1.333333", "1000000",
        ] {
            for value in ["0.0001", "0.0002", "1", "3.0002", "7.7777", "12345.6789"] {
                let parts = parts(d(quantity), d(value)).unwrap();
                assert!(parts.len() <= 2, "{quantity} {value}: {parts:?}");
                let total: Decimal = parts.iter().map(|p| p.quantity).sum();
                assert_eq!(total, d(quantity), "{quantity} {value}: {parts:?}");
                assert_eq!(
                    worth(&parts),
                    scaled(d(value), MONEY_SCALE).unwrap(),
                    "{quantity} {value}: {parts:?}"
                );
            }
        }
    }

    #[test]
    fn more_digits_than_the_inventory_keeps_are_refused() {
        assert_eq!(parts(d("0.0000001"), d("1")), None);
        assert_eq!(parts(d("1"), d("0.00001")), None);
    }
}
