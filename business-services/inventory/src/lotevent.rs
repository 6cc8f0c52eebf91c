//! Lot events: what happened to lots, in the terms EPCIS exchanges them (a lot received, a
//! transformation from input lots to output lots, a lot shipped, a lot wasted).
//!
//! A lot event is stored whole in `lot_event` and, in the same transaction, spread into the
//! tables the traces and reports read (`inv_lot`, `inv_transformation`, `lot_edge`,
//! `inv_shipment`, `inv_waste`) by [`LotEvent::rows`]. The lot operations and the EPCIS import
//! both go through it, so a lot made here and one imported are recorded the same way, and an
//! export reads back exactly what was stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::db::Db;

/// One lot and a quantity of it. The GTIN is the item's when the event was recorded: it
/// decides the EPCIS class identifier, so exports stay stable if the item changes later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotQty {
    pub item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    pub lot: String,
    /// Scaled by `Quantity::SCALE`.
    pub quantity: i64,
    pub uom: String,
}

/// What lots made by an event carry besides their quantity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier_lot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transformation {
    Split,
    Merge,
    Production,
}

impl Transformation {
    pub fn as_str(self) -> &'static str {
        match self {
            Transformation::Split => "split",
            Transformation::Merge => "merge",
            Transformation::Production => "production",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Transformation::Split,
            Transformation::Merge,
            Transformation::Production,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    Receiving {
        lot: LotQty,
        details: Details,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    Transformation {
        transformation: Transformation,
        inputs: Vec<LotQty>,
        outputs: Vec<LotQty>,
        details: Details,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        equipment: Option<String>,
    },
    Shipping {
        lot: LotQty,
        shipment: String,
        customer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
    },
    Waste {
        lot: LotQty,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        equipment: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
    },
}

impl What {
    pub fn kind(&self) -> &'static str {
        match self {
            What::Receiving { .. } => "receiving",
            What::Transformation { .. } => "transformation",
            What::Shipping { .. } => "shipping",
            What::Waste { .. } => "waste",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LotEvent {
    /// A UUID for events recorded here; an imported event keeps its own id.
    pub event_id: String,
    pub event_time: String,
    pub record_time: String,
    /// Where the event happened (for a transformation: where its outputs were put).
    pub warehouse: String,
    pub bin: String,
    #[serde(flatten)]
    pub what: What,
}

impl LotEvent {
    /// Every lot the event names.
    pub fn lots(&self) -> Vec<&LotQty> {
        match &self.what {
            What::Receiving { lot, .. } | What::Shipping { lot, .. } | What::Waste { lot, .. } => {
                vec![lot]
            }
            What::Transformation {
                inputs, outputs, ..
            } => inputs.iter().chain(outputs).collect(),
        }
    }

    /// Every lot the event names, mutably (to resolve imported class identifiers).
    pub fn lots_mut(&mut self) -> Vec<&mut LotQty> {
        match &mut self.what {
            What::Receiving { lot, .. } | What::Shipping { lot, .. } | What::Waste { lot, .. } => {
                vec![lot]
            }
            What::Transformation {
                inputs, outputs, ..
            } => inputs.iter_mut().chain(outputs.iter_mut()).collect(),
        }
    }

    /// The lots the event creates.
    pub fn created(&self) -> Vec<&LotQty> {
        match &self.what {
            What::Receiving { lot, .. } => vec![lot],
            What::Transformation { outputs, .. } => outputs.iter().collect(),
            What::Shipping { .. } | What::Waste { .. } => vec![],
        }
    }

    /// The lots the event draws on, which must exist before it.
    pub fn used(&self) -> Vec<&LotQty> {
        match &self.what {
            What::Receiving { .. } => vec![],
            What::Transformation { inputs, .. } => inputs.iter().collect(),
            What::Shipping { lot, .. } | What::Waste { lot, .. } => vec![lot],
        }
    }

    /// The statements that record the event. With `placeholders`, lots it draws on that this
    /// tenant has never seen (an imported document's history may start mid-way) are recorded
    /// as `external` lots first, so traces can still name them.
    pub fn rows(&self, db: &Db, placeholders: bool) -> Vec<Value> {
        let mut rows = vec![db.statement(
            "INSERT INTO lot_event (event_id, kind, event_time, record_time, payload)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![
                json!(self.event_id),
                json!(self.what.kind()),
                json!(self.event_time),
                json!(self.record_time),
                json!(serde_json::to_string(self).unwrap_or_default()),
            ],
        )];
        if placeholders {
            for lot in self.used() {
                rows.push(self.lot_row(db, lot, "external", &Details::default(), true));
            }
        }
        match &self.what {
            What::Receiving { lot, details, .. } => {
                rows.push(self.lot_row(db, lot, "received", details, false));
            }
            What::Transformation {
                transformation,
                inputs,
                outputs,
                details,
                job,
                order,
                operator,
                equipment,
            } => {
                rows.push(db.statement(
                    "INSERT INTO inv_transformation
                     (id, kind, job, order_ref, operator, equipment, occurred_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    vec![
                        json!(self.event_id),
                        json!(transformation.as_str()),
                        json!(job),
                        json!(order),
                        json!(operator),
                        json!(equipment),
                        json!(self.event_time),
                    ],
                ));
                let edge = |direction: &str, lot: &LotQty| {
                    db.statement(
                        "INSERT INTO lot_edge (transformation_id, direction, lot, quantity)
                         VALUES (?1, ?2, ?3, ?4)",
                        vec![
                            json!(self.event_id),
                            json!(direction),
                            json!(lot.lot),
                            json!(lot.quantity),
                        ],
                    )
                };
                rows.extend(inputs.iter().map(|lot| edge("in", lot)));
                for lot in outputs {
                    rows.push(self.lot_row(db, lot, transformation.as_str(), details, false));
                    rows.push(edge("out", lot));
                }
            }
            What::Shipping {
                lot,
                shipment,
                customer,
                order,
            } => rows.push(db.statement(
                "INSERT INTO inv_shipment
                 (event_id, lot, quantity, shipment, customer, order_ref, occurred_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                vec![
                    json!(self.event_id),
                    json!(lot.lot),
                    json!(lot.quantity),
                    json!(shipment),
                    json!(customer),
                    json!(order),
                    json!(self.event_time),
                ],
            )),
            What::Waste {
                lot,
                reason,
                operator,
                equipment,
                job,
            } => rows.push(db.statement(
                "INSERT INTO inv_waste
                 (event_id, lot, quantity, reason, operator, equipment, job, occurred_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                vec![
                    json!(self.event_id),
                    json!(lot.lot),
                    json!(lot.quantity),
                    json!(reason),
                    json!(operator),
                    json!(equipment),
                    json!(job),
                    json!(self.event_time),
                ],
            )),
        }
        rows
    }

    fn lot_row(
        &self,
        db: &Db,
        lot: &LotQty,
        origin: &str,
        details: &Details,
        if_missing: bool,
    ) -> Value {
        let sql = format!(
            "INSERT INTO inv_lot (lot, item, quantity, origin, warehouse, bin, supplier,
             supplier_lot, expires_on, quality, created_at, event_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12){}",
            if if_missing {
                " ON CONFLICT (lot) DO NOTHING"
            } else {
                ""
            }
        );
        db.statement(
            &sql,
            vec![
                json!(lot.lot),
                json!(lot.item),
                json!(lot.quantity),
                json!(origin),
                json!(self.warehouse),
                json!(self.bin),
                json!(details.supplier),
                json!(details.supplier_lot),
                json!(details.expires_on),
                json!(
                    details
                        .quality
                        .as_ref()
                        .map(|q| Value::Object(q.clone()).to_string())
                ),
                json!(self.event_time),
                json!(self.event_id),
            ],
        )
    }
}
