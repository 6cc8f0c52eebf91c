//! Backward and forward traces: every lot a lot came from, or went into, as a tree with the
//! quantities of each edge, the transformations (with their jobs, orders, operators and
//! equipment) and the shipments and waste the lots reached.
//!
//! The walk is one recursive CTE over `lot_edge`, stepping lot → transformation → lot with
//! the two keys of that table (`(lot, direction, transformation_id)` and
//! `(transformation_id, direction, lot)`), so each step is two index lookups however large
//! the genealogy is. `UNION` (not `UNION ALL`) visits a lot once even when several paths reach
//! it. The CTE heads the trace's one read (lots, edges, shipments and waste in one statement);
//! the tree is assembled here. docs/adr/0013-inventory-genealogy.md records why this and not a
//! closure table or materialised paths.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::Quantity;

use crate::Inventory;
use crate::db::{self, Row};
use crate::master::{LotInfo, not_found};
use crate::stock::{lot_json, put_some};

/// Deepest level of the answer's tree. Deeper lots are counted but not nested: JSON readers
/// commonly refuse documents nested much deeper (serde_json at 128 levels), and a node costs
/// two levels.
const MAX_DEPTH: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a lot to what it was made from.
    Backward,
    /// From a lot to what was made from it.
    Forward,
}

impl Direction {
    /// The edge direction of a reached lot on the transformations to follow, and of the lots
    /// on their other side.
    fn sides(self) -> (&'static str, &'static str) {
        match self {
            Direction::Backward => ("out", "in"),
            Direction::Forward => ("in", "out"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    lot: String,
}

/// The recursive walk from `?1`; the reads append their `SELECT` to it.
fn reach(direction: Direction) -> String {
    let (near, far) = direction.sides();
    format!(
        "WITH RECURSIVE reach(lot) AS (
            SELECT CAST(?1 AS TEXT)
            UNION
            SELECT f.lot FROM reach r
            JOIN lot_edge n ON n.lot = r.lot AND n.direction = '{near}'
            JOIN lot_edge f ON f.transformation_id = n.transformation_id AND f.direction = '{far}'
        ) "
    )
}

struct Step {
    kind: String,
    job: Option<String>,
    order: Option<String>,
    operator: Option<String>,
    equipment: Option<String>,
    occurred_at: String,
}

/// The genealogy a trace read: lots, and for each transformation on the way its near and
/// far edges.
struct Graph {
    direction: Direction,
    lots: BTreeMap<String, (LotInfo, String)>,
    steps: BTreeMap<String, Step>,
    /// lot → the transformations it is on the near side of.
    near: BTreeMap<String, Vec<String>>,
    /// (transformation, lot) → quantity of the lot's near edge.
    near_qty: BTreeMap<(String, String), i64>,
    /// transformation → the lots on its far side, with quantities.
    far: BTreeMap<String, Vec<(String, i64)>>,
    ends: BTreeMap<String, (Vec<Value>, Vec<Value>)>,
}

impl Graph {
    /// The tree under `lot`, expanding each lot once; `via` is the edge it was reached by.
    fn node(
        &self,
        lot: &str,
        via: Option<Value>,
        depth: usize,
        expanded: &mut HashSet<String>,
        deepest: &mut usize,
    ) -> Value {
        *deepest = (*deepest).max(depth);
        let mut node = match self.lots.get(lot) {
            Some((info, uom)) => {
                let mut node = lot_json(info);
                node.insert("uom".into(), json!(uom));
                node
            }
            None => Map::from_iter([("lot".to_owned(), json!(lot))]),
        };
        if let Some(via) = via {
            node.insert("via".into(), via);
        }
        if !expanded.insert(lot.to_owned()) {
            node.insert("repeated".into(), json!(true));
            return Value::Object(node);
        }
        let (shipments, waste) = self.ends.get(lot).cloned().unwrap_or_default();
        node.insert("shipments".into(), Value::Array(shipments));
        node.insert("waste".into(), Value::Array(waste));
        let mut steps: Vec<&String> = self
            .near
            .get(lot)
            .map(|t| t.iter().collect())
            .unwrap_or_default();
        steps.sort_by_key(|t| (self.steps.get(*t).map(|s| s.occurred_at.as_str()), *t));
        let mut children = Vec::new();
        for transformation in steps {
            let (Some(step), Some(far)) =
                (self.steps.get(transformation), self.far.get(transformation))
            else {
                continue;
            };
            let near_qty = self
                .near_qty
                .get(&(transformation.clone(), lot.to_owned()))
                .copied()
                .unwrap_or_default();
            let mut far = far.clone();
            far.sort();
            for (child, far_qty) in far {
                if depth + 1 > MAX_DEPTH {
                    node.insert("cut".into(), json!(true));
                    break;
                }
                let (consumed, produced) = match self.direction {
                    Direction::Backward => (far_qty, near_qty),
                    Direction::Forward => (near_qty, far_qty),
                };
                let mut via = json!({
                    "transformation": transformation, "kind": step.kind,
                    "occurred_at": step.occurred_at,
                    "consumed": Quantity(consumed).to_string(), "produced": Quantity(produced).to_string(),
                });
                if let Value::Object(fields) = &mut via {
                    put_some(
                        fields,
                        &[
                            ("job", &step.job),
                            ("order", &step.order),
                            ("operator", &step.operator),
                            ("equipment", &step.equipment),
                        ],
                    );
                }
                children.push(self.node(&child, Some(via), depth + 1, expanded, deepest));
            }
        }
        node.insert("children".into(), Value::Array(children));
        Value::Object(node)
    }
}

/// The one read of a trace: the reached lots, the edges on the way with their
/// transformations, and the shipments and waste of the reached lots, as rows of one shape told
/// apart by `kind` — one statement, so one round trip and one consistent snapshot. Columns:
///
/// | kind | ref_id | side | happened | c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8 | c9 |
/// |---|---|---|---|---|---|---|---|---|---|---|---|---|
/// | lot | | | created_at | item | origin | warehouse | bin | supplier | supplier lot | expires on | quality | uom |
/// | edge | transformation | in, out | occurred_at | kind | job | order | operator | equipment | | | | |
/// | shipment | event id | | occurred_at | shipment | customer | order | | | | | | |
/// | waste | event id | | occurred_at | reason | operator | equipment | job | | | | | |
fn read(direction: Direction) -> String {
    let (near, far) = direction.sides();
    format!(
        "{} SELECT 'lot' AS kind, l.lot, l.quantity, NULL AS ref_id, NULL AS side,
                l.created_at AS happened, l.item AS c1, l.origin AS c2, l.warehouse AS c3,
                l.bin AS c4, l.supplier AS c5, l.supplier_lot AS c6, l.expires_on AS c7,
                l.quality AS c8, i.uom AS c9
            FROM reach r JOIN inv_lot l ON l.lot = r.lot JOIN inv_item i ON i.item = l.item
            UNION ALL
            SELECT DISTINCT 'edge', e.lot, e.quantity, e.transformation_id, e.direction,
                t.occurred_at, t.kind, t.job, t.order_ref, t.operator, t.equipment,
                NULL, NULL, NULL, NULL
            FROM reach r
            JOIN lot_edge n ON n.lot = r.lot AND n.direction = '{near}'
            JOIN lot_edge e ON e.transformation_id = n.transformation_id
                AND (e.direction = '{far}' OR e.lot = r.lot)
            JOIN inv_transformation t ON t.id = n.transformation_id
            UNION ALL
            SELECT 'shipment', s.lot, s.quantity, s.event_id, NULL, s.occurred_at,
                s.shipment, s.customer, s.order_ref, NULL, NULL, NULL, NULL, NULL, NULL
            FROM reach r JOIN inv_shipment s ON s.lot = r.lot
            UNION ALL
            SELECT 'waste', w.lot, w.quantity, w.event_id, NULL, w.occurred_at,
                w.reason, w.operator, w.equipment, w.job, NULL, NULL, NULL, NULL, NULL
            FROM reach r JOIN inv_waste w ON w.lot = r.lot
            ORDER BY happened, ref_id",
        reach(direction)
    )
}

impl Inventory<'_> {
    pub async fn trace(&self, p: TraceQuery, direction: Direction) -> Result<Value, Problem> {
        let (near, _) = direction.sides();
        let found = self
            .db
            .query_capped(self.client, &read(direction), vec![json!(p.lot)])
            .await?;
        let mut graph = Graph {
            direction,
            lots: BTreeMap::new(),
            steps: BTreeMap::new(),
            near: BTreeMap::new(),
            near_qty: BTreeMap::new(),
            far: BTreeMap::new(),
            ends: BTreeMap::new(),
        };
        let mut reached = Reached::default();
        for row in &found.rows {
            let lot = db::text(row, "lot")?;
            let quantity = db::int(row, "quantity")?;
            match db::text(row, "kind")?.as_str() {
                "lot" => {
                    let info = LotInfo {
                        lot: lot.clone(),
                        item: db::text(row, "c1")?,
                        quantity,
                        origin: db::text(row, "c2")?,
                        warehouse: db::text(row, "c3")?,
                        bin: db::text(row, "c4")?,
                        supplier: db::opt_text(row, "c5"),
                        supplier_lot: db::opt_text(row, "c6"),
                        expires_on: db::opt_text(row, "c7"),
                        quality: match db::opt_text(row, "c8") {
                            Some(_) => Some(db::json_text(row, "c8")?),
                            None => None,
                        },
                        created_at: db::text(row, "happened")?,
                    };
                    graph.lots.insert(lot, (info, db::text(row, "c9")?));
                }
                "edge" => {
                    let transformation = db::text(row, "ref_id")?;
                    let step = graph.steps.entry(transformation.clone()).or_insert(Step {
                        kind: db::text(row, "c1")?,
                        job: db::opt_text(row, "c2"),
                        order: db::opt_text(row, "c3"),
                        operator: db::opt_text(row, "c4"),
                        equipment: db::opt_text(row, "c5"),
                        occurred_at: db::text(row, "happened")?,
                    });
                    reached.jobs.extend(step.job.clone());
                    reached.orders.extend(step.order.clone());
                    if db::text(row, "side")? == near {
                        graph
                            .near
                            .entry(lot.clone())
                            .or_default()
                            .push(transformation.clone());
                        graph.near_qty.insert((transformation, lot), quantity);
                    } else {
                        graph
                            .far
                            .entry(transformation)
                            .or_default()
                            .push((lot, quantity));
                    }
                }
                kind => {
                    let shipment = kind == "shipment";
                    let entry = end(row, shipment, &mut reached)?;
                    let slot = graph.ends.entry(lot).or_default();
                    if shipment {
                        slot.0.push(entry);
                    } else {
                        slot.1.push(entry);
                    }
                }
            }
        }
        if !graph.lots.contains_key(&p.lot) {
            return Err(not_found(format!("no lot {}", p.lot)));
        }
        let mut deepest = 0;
        let tree = graph.node(&p.lot, None, 0, &mut HashSet::new(), &mut deepest);
        Ok(json!({
            "lot": p.lot,
            "direction": direction.name(),
            "lots": graph.lots.len(),
            "depth": deepest,
            "truncated": found.truncated,
            "reached": reached.to_json(),
            "tree": tree,
        }))
    }
}

/// The jobs, orders, shipments and customers a trace reached: what a recall works from.
#[derive(Default)]
struct Reached {
    jobs: BTreeSet<String>,
    orders: BTreeSet<String>,
    shipments: BTreeSet<String>,
    customers: BTreeSet<String>,
}

impl Reached {
    fn to_json(&self) -> Value {
        json!({
            "jobs": self.jobs, "orders": self.orders,
            "shipments": self.shipments, "customers": self.customers,
        })
    }
}

/// A shipment or waste row of the trace's read as a node entry.
fn end(row: &Row, shipment: bool, reached: &mut Reached) -> Result<Value, Problem> {
    let quantity = Quantity(db::int(row, "quantity")?).to_string();
    let occurred_at = db::text(row, "happened")?;
    if shipment {
        let id = db::text(row, "c1")?;
        let customer = db::text(row, "c2")?;
        let order = db::opt_text(row, "c3");
        reached.shipments.insert(id.clone());
        reached.customers.insert(customer.clone());
        reached.orders.extend(order.clone());
        let mut entry = Map::from_iter([
            ("shipment".to_owned(), json!(id)),
            ("customer".to_owned(), json!(customer)),
            ("quantity".to_owned(), json!(quantity)),
            ("occurred_at".to_owned(), json!(occurred_at)),
        ]);
        put_some(&mut entry, &[("order", &order)]);
        return Ok(Value::Object(entry));
    }
    let job = db::opt_text(row, "c4");
    reached.jobs.extend(job.clone());
    let mut entry = Map::from_iter([
        ("reason".to_owned(), json!(db::text(row, "c1")?)),
        ("quantity".to_owned(), json!(quantity)),
        ("occurred_at".to_owned(), json!(occurred_at)),
    ]);
    put_some(
        &mut entry,
        &[
            ("operator", &db::opt_text(row, "c2")),
            ("equipment", &db::opt_text(row, "c3")),
            ("job", &job),
        ],
    );
    Ok(Value::Object(entry))
}
