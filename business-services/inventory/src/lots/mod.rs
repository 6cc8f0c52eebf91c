//! Lot operations: split, merge, transform (consume → produce), waste and ship.
//!
//! Each is a stock movement (lots are a dimension of `stock_bin`, so a lot cannot give more
//! than it holds in its bin) and a lot event recorded in the same transaction, which writes
//! the genealogy: a transformation node with an `in` edge per consumed lot and an `out` edge
//! per made lot, each with its quantity. Made lots carry the cost of what they were made from,
//! shared by quantity. Each operation has its file; this module holds what they share:
//! drawing lots, sharing cost and inheriting lot details.

mod merge;
mod query;
mod split;
mod take;
mod transform;

use std::collections::BTreeSet;

use serde::Deserialize;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Money, Quantity, Sign};

use crate::Inventory;
use crate::engine::{Heads, Leg, StreamKey};
use crate::lotevent::{Details, LotQty};
use crate::master::{ItemInfo, LotInfo};

/// Where a lot's stock is taken from: its home bin unless named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct At {
    warehouse: String,
    bin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Portion {
    lot: String,
    quantity: String,
}

/// A lot, where its stock is taken from, and how much.
struct Draw {
    info: LotInfo,
    warehouse: String,
    bin: String,
    qty: i64,
}

impl Draw {
    fn stream(&self) -> StreamKey {
        (self.info.item.clone(), self.warehouse.clone())
    }

    /// Takes the drawn quantity out of its stream; answers the leg and its cost.
    fn take(&self, heads: &mut Heads) -> (Leg, i64) {
        let cost = heads.take(&self.info.item, &self.warehouse, self.qty);
        let leg = Leg {
            item: self.info.item.clone(),
            warehouse: self.warehouse.clone(),
            bin: self.bin.clone(),
            lot: self.info.lot.clone(),
            on_hand: -self.qty,
            reserved: 0,
            value: -cost,
        };
        (leg, cost)
    }
}

/// A lot operation the published schema allows but the inventory cannot do (a lot named twice,
/// split into itself, lots of different items merged): 422, not a schema violation.
fn refuse(why: String) -> Problem {
    Problem::new(ErrorCode::ParamsUnprocessable, why)
}

/// `total` shared over `quantities` in proportion, the last share taking the rounding
/// remainder so the shares add up exactly.
fn shares(total: i64, quantities: &[i64]) -> Vec<i64> {
    let sum: i64 = quantities.iter().sum();
    let mut given = 0;
    quantities
        .iter()
        .enumerate()
        .map(|(i, qty)| {
            let share = if i + 1 == quantities.len() {
                total - given
            } else if sum == 0 {
                0
            } else {
                Money(total).share(Quantity(*qty), Quantity(sum)).0
            };
            given += share;
            share
        })
        .collect()
}

fn lot_qty(item: &ItemInfo, lot: &str, qty: i64) -> LotQty {
    LotQty {
        item: item.item.clone(),
        gtin: item.gtin.clone(),
        lot: lot.to_owned(),
        quantity: qty,
        uom: item.uom.clone(),
    }
}

/// What made lots inherit from the lots they come from: everything from a single source, the
/// earliest expiry and any shared supplier from several.
fn inherited(sources: &[&LotInfo]) -> Details {
    let expires_on = sources.iter().filter_map(|l| l.expires_on.clone()).min();
    let same = |field: fn(&LotInfo) -> &Option<String>| {
        let values: BTreeSet<&Option<String>> = sources.iter().map(|l| field(l)).collect();
        match values.into_iter().collect::<Vec<_>>()[..] {
            [only] => only.clone(),
            _ => None,
        }
    };
    let quality = match sources {
        [only] => only.quality.as_ref().and_then(|q| q.as_object().cloned()),
        _ => None,
    };
    Details {
        supplier: same(|l| &l.supplier),
        supplier_lot: same(|l| &l.supplier_lot),
        expires_on,
        quality,
    }
}

impl Inventory<'_> {
    /// The lots to draw from, where and how much; each lot at most once.
    async fn draws(
        &self,
        portions: &[(&str, i64)],
        at: Option<&At>,
        pointer: &str,
    ) -> Result<Vec<Draw>, Problem> {
        let names: Vec<&str> = portions.iter().map(|(lot, _)| *lot).collect();
        if names.iter().collect::<BTreeSet<_>>().len() != names.len() {
            return Err(refuse(format!("{pointer} names a lot twice")));
        }
        let mut infos = self.lots(&names).await?;
        Ok(portions
            .iter()
            .filter_map(|(lot, qty)| {
                let info = infos.remove(*lot)?;
                let (warehouse, bin) = match at {
                    Some(at) => (at.warehouse.clone(), at.bin.clone()),
                    None => (info.warehouse.clone(), info.bin.clone()),
                };
                Some(Draw {
                    info,
                    warehouse,
                    bin,
                    qty: *qty,
                })
            })
            .collect())
    }

    /// Refuses lots to be made that exist already or are named twice.
    async fn new_lots(&self, lots: &[&str]) -> Result<(), Problem> {
        if lots.iter().collect::<BTreeSet<_>>().len() != lots.len() {
            return Err(refuse("a lot to be made is named twice".into()));
        }
        match self.existing_lots(lots).await?.first() {
            Some(lot) => Err(Problem::new(
                ErrorCode::Conflict,
                format!("lot {lot} exists already"),
            )),
            None => Ok(()),
        }
    }

    fn portions<'p>(
        &self,
        portions: &'p [Portion],
        pointer: &str,
    ) -> Result<Vec<(&'p str, i64)>, Problem> {
        portions
            .iter()
            .enumerate()
            .map(|(i, portion)| {
                Ok((
                    portion.lot.as_str(),
                    Quantity::parse(
                        &portion.quantity,
                        Sign::Positive,
                        &format!("{pointer}/{i}/quantity"),
                    )?
                    .0,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_proportional_and_add_up_exactly() {
        assert_eq!(shares(100, &[1, 1, 1]), vec![33, 33, 34]);
        assert_eq!(
            shares(10_000, &[10, 15, 20, 5]),
            vec![2_000, 3_000, 4_000, 1_000]
        );
        assert_eq!(shares(7, &[0, 0]), vec![0, 7]);
        assert_eq!(shares(5, &[3]).iter().sum::<i64>(), 5);
    }
}
