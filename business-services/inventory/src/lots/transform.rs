//! `transform`: lots consumed and new lots produced, the cost of what was consumed shared
//! over the products by quantity.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::{Money, Quantity, Sign, clock};

use super::{At, Draw, Portion, lot_qty, refuse, shares};
use crate::Inventory;
use crate::engine::{Leg, Plan, StreamKey};
use crate::lotevent::{Details, LotEvent, Transformation, What};
use crate::master::ItemInfo;
use crate::stock::{object, put_some};

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

impl Inventory<'_> {
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
}
