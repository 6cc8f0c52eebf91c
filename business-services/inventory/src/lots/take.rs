//! `waste` and `ship`: stock of one lot taken out for good, at its moving-average cost.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::{Money, Quantity, Sign, clock};

use super::{At, lot_qty};
use crate::Inventory;
use crate::engine::Plan;
use crate::lotevent::{LotEvent, LotQty, What};
use crate::stock::{object, put_some};

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

impl Inventory<'_> {
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
}
