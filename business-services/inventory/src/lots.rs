//! Lot operations: split, merge, transform (consume → produce), waste and ship.
//!
//! Each is a stock movement (lots are a dimension of `stock_bin`, so a lot cannot give more
//! than it holds in its bin) and a lot event recorded in the same transaction, which writes
//! the genealogy: a transformation node with an `in` edge per consumed lot and an `out` edge
//! per made lot, each with its quantity. Made lots carry the cost of what they were made from,
//! shared by quantity.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Money, Quantity, Sign, clock};

use crate::engine::{Heads, Leg, Plan, StreamKey};
use crate::lotevent::{Details, LotEvent, LotQty, Transformation, What};
use crate::master::{ItemInfo, LotInfo};
use crate::stock::{object, put_some};
use crate::{Inventory, master};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    lot: String,
    outputs: Vec<Portion>,
    from: Option<At>,
    job: Option<String>,
    operator: Option<String>,
    equipment: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    inputs: Vec<Portion>,
    output: String,
    to: Option<At>,
    job: Option<String>,
    operator: Option<String>,
    equipment: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    lot: String,
    item: String,
    quantity: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    consume: Vec<Portion>,
    produce: Vec<Output>,
    to: Option<At>,
    expires_on: Option<String>,
    quality: Option<Map<String, Value>>,
    job: Option<String>,
    order: Option<String>,
    operator: Option<String>,
    equipment: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waste {
    lot: String,
    quantity: String,
    reason: String,
    from: Option<At>,
    operator: Option<String>,
    equipment: Option<String>,
    job: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ship {
    lot: String,
    quantity: String,
    shipment: String,
    customer: String,
    order: Option<String>,
    from: Option<At>,
    occurred_at: Option<String>,
}

/// What a waste or shipping takes: how much of which lot, from where, when.
struct Taken<'a> {
    lot: &'a str,
    quantity: &'a str,
    from: Option<&'a At>,
    occurred_at: Option<&'a str>,
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

    pub async fn split(&self, p: Split) -> Result<Value, Problem> {
        if p.outputs.is_empty() {
            return Err(refuse("a split makes at least one lot".into()));
        }
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        let outputs = p
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                Ok((
                    o.lot.as_str(),
                    Quantity::parse(
                        &o.quantity,
                        Sign::Positive,
                        &format!("/outputs/{i}/quantity"),
                    )?
                    .0,
                ))
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        let total: i64 = outputs.iter().map(|(_, q)| q).sum();
        let names: Vec<&str> = outputs.iter().map(|(lot, _)| *lot).collect();
        if names.contains(&p.lot.as_str()) {
            return Err(refuse(format!("lot {} cannot be split into itself", p.lot)));
        }
        self.new_lots(&names).await?;
        let source = self
            .draws(&[(p.lot.as_str(), total)], p.from.as_ref(), "/lot")
            .await?
            .remove(0);
        let item = self.item(&source.info.item).await?;
        let streams = [source.stream()];
        let details = inherited(&[&source.info]);
        self.record(&streams, &occurred_at, |heads, event_id| {
            let (out_leg, cost) = source.take(heads);
            let quantities: Vec<i64> = outputs.iter().map(|(_, q)| *q).collect();
            let values = shares(cost, &quantities);
            let mut legs = vec![out_leg];
            let mut made = Vec::new();
            for ((lot, qty), value) in outputs.iter().zip(values) {
                heads.put(&item.item, &source.warehouse, *qty, value);
                legs.push(Leg {
                    item: item.item.clone(),
                    warehouse: source.warehouse.clone(),
                    bin: source.bin.clone(),
                    lot: (*lot).to_owned(),
                    on_hand: *qty,
                    reserved: 0,
                    value,
                });
                made.push(json!({"lot": lot, "quantity": Quantity(*qty).to_string(),
                                 "value": Money(value).to_string()}));
            }
            let event = LotEvent {
                event_id: event_id.to_owned(),
                event_time: occurred_at.clone(),
                record_time: clock::now(),
                warehouse: source.warehouse.clone(),
                bin: source.bin.clone(),
                what: What::Transformation {
                    transformation: Transformation::Split,
                    inputs: vec![lot_qty(&item, &p.lot, total)],
                    outputs: outputs
                        .iter()
                        .map(|(lot, qty)| lot_qty(&item, lot, *qty))
                        .collect(),
                    details: details.clone(),
                    job: p.job.clone(),
                    order: None,
                    operator: p.operator.clone(),
                    equipment: p.equipment.clone(),
                },
            };
            let mut fields = object(json!({
                "lot": p.lot, "item": item.item, "quantity": Quantity(total).to_string(),
                "outputs": made, "warehouse": source.warehouse, "bin": source.bin,
            }));
            put_some(
                &mut fields,
                &[
                    ("job", &p.job),
                    ("operator", &p.operator),
                    ("equipment", &p.equipment),
                ],
            );
            Ok(Plan {
                kind: "lot.split",
                subject: p.lot.clone(),
                legs,
                rows: event.rows(self.db, false),
                result: object(json!({"outputs": made})),
                fields,
            })
        })
        .await
    }

    pub async fn merge(&self, p: Merge) -> Result<Value, Problem> {
        if p.inputs.len() < 2 {
            return Err(refuse("a merge takes at least two lots".into()));
        }
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        let portions = self.portions(&p.inputs, "/inputs")?;
        if portions.iter().any(|(lot, _)| *lot == p.output) {
            return Err(refuse(format!(
                "lot {} cannot be merged into itself",
                p.output
            )));
        }
        self.new_lots(&[p.output.as_str()]).await?;
        let draws = self.draws(&portions, None, "/inputs").await?;
        let items: BTreeSet<&str> = draws.iter().map(|d| d.info.item.as_str()).collect();
        if items.len() != 1 {
            return Err(refuse("merged lots must all be of one item".into()));
        }
        let item = self.item(&draws[0].info.item).await?;
        let (warehouse, bin) = match &p.to {
            Some(to) => (to.warehouse.clone(), to.bin.clone()),
            None => (draws[0].warehouse.clone(), draws[0].bin.clone()),
        };
        self.require_bins(&[(&warehouse, &bin)]).await?;
        let total: i64 = draws.iter().map(|d| d.qty).sum();
        let mut streams: Vec<StreamKey> = draws.iter().map(Draw::stream).collect();
        streams.push((item.item.clone(), warehouse.clone()));
        let sources: Vec<&LotInfo> = draws.iter().map(|d| &d.info).collect();
        let details = inherited(&sources);
        self.record(&streams, &occurred_at, |heads, event_id| {
            let mut legs = Vec::new();
            let mut cost = 0;
            for draw in &draws {
                let (leg, taken) = draw.take(heads);
                legs.push(leg);
                cost += taken;
            }
            heads.put(&item.item, &warehouse, total, cost);
            legs.push(Leg {
                item: item.item.clone(),
                warehouse: warehouse.clone(),
                bin: bin.clone(),
                lot: p.output.clone(),
                on_hand: total,
                reserved: 0,
                value: cost,
            });
            let event = LotEvent {
                event_id: event_id.to_owned(),
                event_time: occurred_at.clone(),
                record_time: clock::now(),
                warehouse: warehouse.clone(),
                bin: bin.clone(),
                what: What::Transformation {
                    transformation: Transformation::Merge,
                    inputs: draws
                        .iter()
                        .map(|d| lot_qty(&item, &d.info.lot, d.qty))
                        .collect(),
                    outputs: vec![lot_qty(&item, &p.output, total)],
                    details: details.clone(),
                    job: p.job.clone(),
                    order: None,
                    operator: p.operator.clone(),
                    equipment: p.equipment.clone(),
                },
            };
            let inputs: Vec<Value> = draws
                .iter()
                .map(|d| json!({"lot": d.info.lot, "quantity": Quantity(d.qty).to_string()}))
                .collect();
            let mut fields = object(json!({
                "item": item.item, "inputs": inputs, "output": p.output,
                "quantity": Quantity(total).to_string(), "value": Money(cost).to_string(),
                "warehouse": warehouse, "bin": bin,
            }));
            put_some(
                &mut fields,
                &[
                    ("job", &p.job),
                    ("operator", &p.operator),
                    ("equipment", &p.equipment),
                ],
            );
            Ok(Plan {
                kind: "lot.merged",
                subject: p.output.clone(),
                legs,
                rows: event.rows(self.db, false),
                result: object(json!({
                    "lot": p.output, "quantity": Quantity(total).to_string(),
                    "value": Money(cost).to_string(),
                })),
                fields,
            })
        })
        .await
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

    pub async fn transform(&self, p: Transform) -> Result<Value, Problem> {
        if p.consume.is_empty() || p.produce.is_empty() {
            return Err(refuse(
                "a transformation consumes at least one lot and produces at least one".into(),
            ));
        }
        let occurred_at = clock::given_or_now(p.occurred_at.as_deref(), "/occurred_at")?;
        let expires_on = match &p.expires_on {
            Some(date) => Some(clock::date(date, "/expires_on")?),
            None => None,
        };
        let portions = self.portions(&p.consume, "/consume")?;
        let outputs = p
            .produce
            .iter()
            .enumerate()
            .map(|(i, o)| {
                Ok((
                    o,
                    Quantity::parse(
                        &o.quantity,
                        Sign::Positive,
                        &format!("/produce/{i}/quantity"),
                    )?
                    .0,
                ))
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        let made: Vec<&str> = outputs.iter().map(|(o, _)| o.lot.as_str()).collect();
        if let Some((lot, _)) = portions.iter().find(|(lot, _)| made.contains(lot)) {
            return Err(refuse(format!(
                "lot {lot} cannot be both consumed and produced"
            )));
        }
        self.new_lots(&made).await?;
        let draws = self.draws(&portions, None, "/consume").await?;
        let item_names: Vec<&str> = draws
            .iter()
            .map(|d| d.info.item.as_str())
            .chain(outputs.iter().map(|(o, _)| o.item.as_str()))
            .collect();
        let items: BTreeMap<String, ItemInfo> = self.items(&item_names).await?;
        let (warehouse, bin) = match &p.to {
            Some(to) => (to.warehouse.clone(), to.bin.clone()),
            None => (draws[0].warehouse.clone(), draws[0].bin.clone()),
        };
        self.require_bins(&[(&warehouse, &bin)]).await?;
        let mut streams: Vec<StreamKey> = draws.iter().map(Draw::stream).collect();
        streams.extend(
            outputs
                .iter()
                .map(|(o, _)| (o.item.clone(), warehouse.clone())),
        );
        self.record(&streams, &occurred_at, |heads, event_id| {
            let mut legs = Vec::new();
            let mut cost = 0;
            for draw in &draws {
                let (leg, taken) = draw.take(heads);
                legs.push(leg);
                cost += taken;
            }
            let quantities: Vec<i64> = outputs.iter().map(|(_, q)| *q).collect();
            let mut produced = Vec::new();
            for ((output, qty), value) in outputs.iter().zip(shares(cost, &quantities)) {
                heads.put(&output.item, &warehouse, *qty, value);
                legs.push(Leg {
                    item: output.item.clone(),
                    warehouse: warehouse.clone(),
                    bin: bin.clone(),
                    lot: output.lot.clone(),
                    on_hand: *qty,
                    reserved: 0,
                    value,
                });
                produced.push(json!({
                    "lot": output.lot, "item": output.item,
                    "quantity": Quantity(*qty).to_string(), "value": Money(value).to_string(),
                }));
            }
            let event = LotEvent {
                event_id: event_id.to_owned(),
                event_time: occurred_at.clone(),
                record_time: clock::now(),
                warehouse: warehouse.clone(),
                bin: bin.clone(),
                what: What::Transformation {
                    transformation: Transformation::Production,
                    inputs: draws
                        .iter()
                        .map(|d| lot_qty(&items[&d.info.item], &d.info.lot, d.qty))
                        .collect(),
                    outputs: outputs
                        .iter()
                        .map(|(o, qty)| lot_qty(&items[&o.item], &o.lot, *qty))
                        .collect(),
                    details: Details {
                        supplier: None,
                        supplier_lot: None,
                        expires_on: expires_on.clone(),
                        quality: p.quality.clone(),
                    },
                    job: p.job.clone(),
                    order: p.order.clone(),
                    operator: p.operator.clone(),
                    equipment: p.equipment.clone(),
                },
            };
            let consumed: Vec<Value> = draws
                .iter()
                .map(|d| {
                    json!({"lot": d.info.lot, "item": d.info.item,
                                "quantity": Quantity(d.qty).to_string()})
                })
                .collect();
            let mut fields = object(json!({
                "consumed": consumed, "produced": produced, "cost": Money(cost).to_string(),
                "warehouse": warehouse, "bin": bin,
            }));
            put_some(
                &mut fields,
                &[
                    ("job", &p.job),
                    ("order", &p.order),
                    ("operator", &p.operator),
                    ("equipment", &p.equipment),
                ],
            );
            Ok(Plan {
                kind: "lot.transformed",
                subject: p.job.clone().unwrap_or_else(|| draws[0].info.lot.clone()),
                legs,
                rows: event.rows(self.db, false),
                result: object(json!({"cost": Money(cost).to_string(), "produced": produced})),
                fields,
            })
        })
        .await
    }

    pub async fn waste(&self, p: Waste) -> Result<Value, Problem> {
        let mut extra = object(json!({"reason": p.reason}));
        put_some(
            &mut extra,
            &[
                ("operator", &p.operator),
                ("equipment", &p.equipment),
                ("job", &p.job),
            ],
        );
        let what = |lot| What::Waste {
            lot,
            reason: p.reason.clone(),
            operator: p.operator.clone(),
            equipment: p.equipment.clone(),
            job: p.job.clone(),
        };
        let taken = Taken {
            lot: &p.lot,
            quantity: &p.quantity,
            from: p.from.as_ref(),
            occurred_at: p.occurred_at.as_deref(),
        };
        self.take_lot(taken, "lot.wasted", what, extra).await
    }

    pub async fn ship(&self, p: Ship) -> Result<Value, Problem> {
        let mut extra = object(json!({"shipment": p.shipment, "customer": p.customer}));
        put_some(&mut extra, &[("order", &p.order)]);
        let what = |lot| What::Shipping {
            lot,
            shipment: p.shipment.clone(),
            customer: p.customer.clone(),
            order: p.order.clone(),
        };
        let taken = Taken {
            lot: &p.lot,
            quantity: &p.quantity,
            from: p.from.as_ref(),
            occurred_at: p.occurred_at.as_deref(),
        };
        self.take_lot(taken, "lot.shipped", what, extra).await
    }

    /// Takes stock of one lot out for good (waste, shipping): event `kind`, whose `what` gets
    /// the lot and quantity taken, and whose fields are the lot's, its bin's, the quantity and
    /// cost, and `extra`.
    async fn take_lot(
        &self,
        taken: Taken<'_>,
        kind: &'static str,
        what: impl Fn(LotQty) -> What,
        extra: Map<String, Value>,
    ) -> Result<Value, Problem> {
        let occurred_at = clock::given_or_now(taken.occurred_at, "/occurred_at")?;
        let qty = Quantity::parse(taken.quantity, Sign::Positive, "/quantity")?.0;
        let draw = self
            .draws(&[(taken.lot, qty)], taken.from, "/lot")
            .await?
            .remove(0);
        let item = self.item(&draw.info.item).await?;
        self.record(&[draw.stream()], &occurred_at, |heads, event_id| {
            let (leg, cost) = draw.take(heads);
            let event = LotEvent {
                event_id: event_id.to_owned(),
                event_time: occurred_at.clone(),
                record_time: clock::now(),
                warehouse: draw.warehouse.clone(),
                bin: draw.bin.clone(),
                what: what(lot_qty(&item, taken.lot, qty)),
            };
            let mut fields = object(json!({
                "lot": taken.lot, "item": item.item, "warehouse": draw.warehouse, "bin": draw.bin,
                "quantity": Quantity(qty).to_string(), "cost": Money(cost).to_string(),
            }));
            fields.extend(extra.clone());
            Ok(Plan {
                kind,
                subject: taken.lot.to_owned(),
                legs: vec![leg],
                rows: event.rows(self.db, false),
                result: object(json!({
                    "quantity": Quantity(qty).to_string(), "cost": Money(cost).to_string(),
                })),
                fields,
            })
        })
        .await
    }

    /// One lot with its stock per bin.
    pub async fn lot(&self, p: LotQuery) -> Result<Value, Problem> {
        let info = self
            .lots(&[p.lot.as_str()])
            .await?
            .remove(&p.lot)
            .ok_or_else(|| master::not_found(format!("no lot {}", p.lot)))?;
        let rows = self
            .db
            .query(
                self.client,
                "SELECT warehouse, bin, on_hand, reserved FROM stock_bin
                 WHERE lot = ?1 AND item = ?2 ORDER BY warehouse, bin",
                vec![json!(info.lot), json!(info.item)],
            )
            .await?;
        let mut on_hand = 0;
        let mut stock = Vec::new();
        for row in &rows {
            let here = crate::db::int(row, "on_hand")?;
            let reserved = crate::db::int(row, "reserved")?;
            on_hand += i128::from(here);
            stock.push(json!({
                "warehouse": crate::db::text(row, "warehouse")?,
                "bin": crate::db::text(row, "bin")?,
                "on_hand": Quantity(here).to_string(),
                "reserved": Quantity(reserved).to_string(),
                "available": Quantity(here - reserved).to_string(),
            }));
        }
        let mut lot = crate::stock::lot_json(&info);
        lot.insert("on_hand".into(), json!(Quantity::format_sum(on_hand)));
        lot.insert("stock".into(), Value::Array(stock));
        Ok(Value::Object(lot))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LotQuery {
    lot: String,
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
