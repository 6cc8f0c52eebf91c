//! Receiving a returned line back at exactly the value that left.
//!
//! The inventory receives stock at a unit cost of four fraction digits and values it at
//! quantity × unit cost, rounded to four places; the value an issue removed (the stream's
//! moving average times the quantity) is seldom such a product. One sheet at 1.0000 and two at
//! 1.0001 leave worth 3.0002, and three back at the rounded 1.0001 would come back worth
//! 3.0003, leaving inventory and COGS a ten-thousandth apart. So a line comes back in at most
//! two receipts whose values add up to the issued value exactly.

use switchyard_service_kit::money::LIMIT;
use switchyard_service_kit::{Money, Quantity};

/// `10^Quantity::SCALE`: a value over a quantity's units, times this, is a unit cost's units.
const UNIT: i128 = 10_i128.pow(Quantity::SCALE);

/// One receipt: a quantity and the unit cost it comes back at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub quantity: Quantity,
    pub unit_cost: Money,
}

/// The receipts (one or two) that bring `quantity` back worth exactly `value`, each valued as
/// the inventory values a receipt ([`Money::of`], the kit's one rounding rule); `None` for no
/// quantity, a negative value, or a unit cost beyond money's range.
pub fn parts(quantity: Quantity, value: Money) -> Option<Vec<Part>> {
    if quantity <= Quantity::ZERO || value < Money::ZERO {
        return None;
    }
    let target = i128::from(value.units()) * UNIT;
    let units = i128::from(quantity.units());
    // The unit cost rounded down, and how many millionths fall short of `value` at it.
    let cost = money(target / units)?;
    let short = Quantity(i64::try_from(target % units).ok()?);
    let split = if short == Quantity::ZERO {
        vec![(quantity, cost)]
    } else {
        let rest = quantity.checked_sub(short)?;
        let up = Money(cost.units() + 1);
        if Money::of(rest, cost)?.checked_add(Money::of(short, up)?)? == value {
            // `rest` units at `cost` and `short` at one ten-thousandth more are worth `value`
            // exactly; the check guards the two roundings adding to one too many.
            vec![(rest, cost), (short, up)]
        } else {
            // All but the smallest quantity at the rounded-down cost; the smallest carries the
            // rest, which it can since its value is its unit cost over `UNIT`, exactly.
            let most = quantity.checked_sub(Quantity(1))?;
            let carried = value.checked_sub(Money::of(most, cost)?)?;
            vec![
                (most, cost),
                (Quantity(1), money(i128::from(carried.units()) * UNIT)?),
            ]
        }
    };
    Some(
        split
            .into_iter()
            .filter(|&(quantity, _)| quantity > Quantity::ZERO)
            .map(|(quantity, unit_cost)| Part {
                quantity,
                unit_cost,
            })
            .collect(),
    )
}

/// `units` ten-thousandths, if money can hold them.
fn money(units: i128) -> Option<Money> {
    i64::try_from(units)
        .ok()
        .filter(|u| u.abs() <= LIMIT)
        .map(Money)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{amount, quantity};

    fn q(text: &str) -> Quantity {
        quantity(text).unwrap()
    }

    fn m(text: &str) -> Money {
        amount(text).unwrap()
    }

    fn worth(parts: &[Part]) -> Money {
        parts
            .iter()
            .map(|p| Money::of(p.quantity, p.unit_cost).unwrap())
            .fold(Money::ZERO, |sum, v| sum.checked_add(v).unwrap())
    }

    #[test]
    fn three_sheets_worth_3_0002_come_back_as_one_at_1_0000_and_two_at_1_0001() {
        let parts = parts(q("3"), m("3.0002")).unwrap();
        assert_eq!(
            parts,
            vec![
                Part {
                    quantity: q("1"),
                    unit_cost: m("1.0000")
                },
                Part {
                    quantity: q("2"),
                    unit_cost: m("1.0001")
                },
            ]
        );
    }

    #[test]
    fn an_exact_unit_cost_is_one_receipt() {
        let exact = parts(q("3"), m("12.0000")).unwrap();
        assert_eq!(exact.len(), 1);
        assert_eq!(exact[0].unit_cost, m("4.0000"));
        let free = parts(q("2"), m("0")).unwrap();
        assert_eq!(free.len(), 1);
        assert_eq!(free[0].unit_cost, m("0"));
    }

    #[test]
    fn every_quantity_and_value_comes_back_exactly() {
        for quantity in [
            "1", "3", "7", "0.000001", "0.5", "2.5", "1.333333", "1000000",
        ] {
            for value in ["0.0001", "0.0002", "1", "3.0002", "7.7777", "12345.6789"] {
                let parts = parts(q(quantity), m(value)).unwrap();
                assert!(parts.len() <= 2, "{quantity} {value}: {parts:?}");
                let total = parts.iter().fold(Quantity::ZERO, |sum, p| {
                    sum.checked_add(p.quantity).unwrap()
                });
                assert_eq!(total, q(quantity), "{quantity} {value}: {parts:?}");
                assert_eq!(worth(&parts), m(value), "{quantity} {value}: {parts:?}");
            }
        }
    }

    /// A return reads the line's quantity and the issued value into the kit's types before it
    /// asks for parts: more digits than the inventory keeps are refused there (as `parts`
    /// refused them when it took decimals), and no quantity or a negative value here.
    #[test]
    fn more_digits_than_the_inventory_keeps_are_refused() {
        assert!(quantity("0.0000001").is_err());
        assert!(amount("0.00001").is_err());
        assert_eq!(parts(Quantity::ZERO, m("1")), None);
        assert_eq!(parts(q("1"), m("-0.0001")), None);
    }
}
