//! `merge`: lots of one item into a new lot, valued at the sum of their costs.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::{Money, Quantity, clock};

use super::{At, Draw, Portion, inherited, lot_qty, refuse};
use crate::Inventory;
use crate::engine::{Leg, Plan, StreamKey};
use crate::lotevent::{LotEvent, Transformation, What};
use crate::master::LotInfo;
use crate::stock::{object, put_some};

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

impl Inventory<'_> {
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
}
