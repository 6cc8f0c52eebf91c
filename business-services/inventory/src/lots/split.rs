//! `split`: one lot into new lots in its bin, each valued by its share of the quantity.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::{Money, Quantity, Sign, clock};

use super::{At, Portion, inherited, lot_qty, refuse, shares};
use crate::Inventory;
use crate::engine::{Leg, Plan};
use crate::lotevent::{LotEvent, Transformation, What};
use crate::stock::{object, put_some};

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

impl Inventory<'_> {
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
}
