//! The seed's lot-genealogy scenario (agog-packaging-erp, "Material Lot Genealogy"): roll
//! LOT-2025-001 of 50,000 sheets is split for three jobs and waste, the jobs consume their
//! lots with some waste each, and the printed sheets ship to three customers. The backward
//! trace from LOT-2025-001-B and the forward trace from LOT-2025-001 must be exactly the
//! trees the seed draws, with every quantity, job, order, operator, press and customer.

use serde_json::{Map, Value, json};

use crate::support::{Engine, Platform, Tenant};

on_both_engines!(the_seed_scenario_traces_backward_and_forward_exactly);

pub const ROLL: &str = "LOT-2025-001";
const PAPER_GTIN: &str = "09520123456788";
const SPLIT_AT: &str = "2025-10-16T06:00:00.000000Z";

/// One job of the scenario.
pub struct Job {
    pub job: &'static str,
    pub order: &'static str,
    pub lot: &'static str,
    pub share: &'static str,
    pub used: &'static str,
    pub wasted: &'static str,
    pub reason: &'static str,
    pub operator: &'static str,
    pub press: &'static str,
    pub printed: &'static str,
    pub customer: &'static str,
    pub shipment: &'static str,
    pub shipped: &'static str,
    pub at: &'static str,
    pub ship_at: &'static str,
}

pub const JOBS: [Job; 3] = [
    Job {
        job: "JOB-1234",
        order: "ORDER-5001",
        lot: "LOT-2025-001-A",
        share: "10000",
        used: "9800",
        wasted: "200",
        reason: "misregistration",
        operator: "Tom Lee",
        press: "Press-1",
        printed: "FG-1234",
        customer: "ABC Corp",
        shipment: "SHIP-7001",
        shipped: "9800",
        at: "2025-10-16T10:00:00.000000Z",
        ship_at: "2025-10-18T09:00:00.000000Z",
    },
    Job {
        job: "JOB-1235",
        order: "ORDER-5002",
        lot: "LOT-2025-001-B",
        share: "15000",
        used: "14500",
        wasted: "500",
        reason: "color issues",
        operator: "Jane Smith",
        press: "Press-3",
        printed: "FG-1235",
        customer: "XYZ Inc",
        shipment: "SHIP-7002",
        shipped: "14500",
        at: "2025-10-16T14:20:00.000000Z",
        ship_at: "2025-10-19T09:00:00.000000Z",
    },
    Job {
        job: "JOB-1236",
        order: "ORDER-5003",
        lot: "LOT-2025-001-C",
        share: "20000",
        used: "19900",
        wasted: "100",
        reason: "normal trim",
        operator: "Ana Ruiz",
        press: "Press-2",
        printed: "FG-1236",
        customer: "MegaCorp",
        shipment: "SHIP-7003",
        shipped: "19000",
        at: "2025-10-17T08:00:00.000000Z",
        ship_at: "2025-10-20T09:00:00.000000Z",
    },
];

/// The event ids the scenario's transformations got: the split, then one per job.
pub struct Ids {
    pub split: String,
    pub jobs: Vec<String>,
}

/// Master data: the paper (with a GTIN, so its lots travel as GS1 Digital Links) and the
/// printed sheets (without), the paper warehouse and the finished-goods warehouse.
pub async fn master_data(tenant: &Tenant) {
    tenant
        .ok(
            "define_item",
            json!({"item": "PAPER-80", "name": "Coated paper 80gsm", "uom": "ST", "gtin": PAPER_GTIN}),
        )
        .await;
    tenant
        .ok(
            "define_item",
            json!({"item": "PRINTED", "name": "Printed label sheets", "uom": "ST"}),
        )
        .await;
    for (warehouse, bin) in [("WH-A", "A3-RB-S2"), ("FG", "F1")] {
        tenant
            .ok(
                "define_warehouse",
                json!({"warehouse": warehouse, "name": warehouse}),
            )
            .await;
        tenant
            .ok("define_bin", json!({"warehouse": warehouse, "bin": bin}))
            .await;
    }
}

/// Runs the whole scenario in `tenant`.
pub async fn scenario(tenant: &Tenant) -> Ids {
    master_data(tenant).await;
    let received = tenant
        .ok(
            "receive",
            json!({
                "item": "PAPER-80", "warehouse": "WH-A", "bin": "A3-RB-S2",
                "quantity": "50000", "unit_cost": "0.02", "reference": "PO-4471",
                "occurred_at": "2025-10-15T10:30:00+02:00",
                "lot": {"lot": ROLL, "supplier": "Acme Paper Co.", "supplier_lot": "Roll #12345",
                        "expires_on": "2026-10-15", "quality": quality()}
            }),
        )
        .await;
    assert_eq!(received["value"], "1000.0000");
    let mut outputs: Vec<Value> = JOBS
        .iter()
        .map(|j| json!({"lot": j.lot, "quantity": j.share}))
        .collect();
    outputs.push(json!({"lot": "LOT-2025-001-WASTE", "quantity": "5000"}));
    let split = tenant
        .ok(
            "split",
            json!({"lot": ROLL, "outputs": outputs, "occurred_at": SPLIT_AT}),
        )
        .await;
    let values: Vec<&Value> = split["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["value"])
        .collect();
    assert_eq!(values, ["200.0000", "300.0000", "400.0000", "100.0000"]);
    let disposed = tenant
        .ok(
            "waste",
            json!({"lot": "LOT-2025-001-WASTE", "quantity": "5000", "reason": "disposed",
                   "occurred_at": "2025-10-16T06:10:00Z"}),
        )
        .await;
    assert_eq!(disposed["cost"], "100.0000");
    let mut jobs = Vec::new();
    for j in &JOBS {
        let made = tenant
            .ok(
                "transform",
                json!({
                    "consume": [{"lot": j.lot, "quantity": j.used}],
                    "produce": [{"lot": j.printed, "item": "PRINTED", "quantity": j.used}],
                    "to": {"warehouse": "FG", "bin": "F1"}, "expires_on": "2026-04-30",
                    "job": j.job, "order": j.order, "operator": j.operator, "equipment": j.press,
                    "occurred_at": j.at,
                }),
            )
            .await;
        // Sheets cost 0.02 each wherever they are: the job's cost is what it used.
        let cost = format!("{}.0000", j.used.parse::<i64>().unwrap() / 50);
        assert_eq!(made["cost"], json!(cost));
        assert_eq!(made["produced"][0]["value"], json!(cost));
        jobs.push(made["event_id"].as_str().unwrap().to_owned());
        tenant
            .ok(
                "waste",
                json!({"lot": j.lot, "quantity": j.wasted, "reason": j.reason,
                       "operator": j.operator, "equipment": j.press, "job": j.job,
                       "occurred_at": waste_at(j)}),
            )
            .await;
        let shipped = tenant
            .ok(
                "ship",
                json!({"lot": j.printed, "quantity": j.shipped, "shipment": j.shipment,
                       "customer": j.customer, "order": j.order, "occurred_at": j.ship_at}),
            )
            .await;
        let cogs = format!("{}.0000", j.shipped.parse::<i64>().unwrap() / 50);
        assert_eq!(shipped["cost"], json!(cogs), "COGS of {}", j.shipment);
    }
    Ids {
        split: split["event_id"].as_str().unwrap().to_owned(),
        jobs,
    }
}

fn quality() -> Value {
    json!({"moisture_pct": "4.2", "brightness": 92, "inspector": "John Doe"})
}

fn waste_at(job: &Job) -> String {
    job.at
        .replace(":00:00.", ":05:00.")
        .replace(":20:00.", ":25:00.")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A node of paper from the roll: what the roll was received as, inherited by its parts.
fn paper(lot: &str, quantity: &str, origin: &str, created_at: &str) -> Map<String, Value> {
    object(json!({
        "lot": lot, "item": "PAPER-80", "uom": "ST", "quantity": quantity, "origin": origin,
        "warehouse": "WH-A", "bin": "A3-RB-S2", "created_at": created_at,
        "supplier": "Acme Paper Co.", "supplier_lot": "Roll #12345", "expires_on": "2026-10-15",
        "quality": quality(), "shipments": [], "waste": [], "children": [],
    }))
}

fn split_via(ids: &Ids, produced: &str) -> Value {
    json!({"transformation": ids.split, "kind": "split", "occurred_at": SPLIT_AT,
           "consumed": "50000", "produced": produced})
}

fn job_waste(j: &Job) -> Value {
    json!([{"reason": j.reason, "quantity": j.wasted, "operator": j.operator,
            "equipment": j.press, "job": j.job, "occurred_at": waste_at(j)}])
}

pub fn expected_backward(ids: &Ids) -> Value {
    let b = &JOBS[1];
    let mut roll = paper(ROLL, "50000", "received", "2025-10-15T08:30:00.000000Z");
    roll.insert("via".into(), split_via(ids, b.share));
    let mut tree = paper(b.lot, b.share, "split", SPLIT_AT);
    tree.insert("waste".into(), job_waste(b));
    tree.insert("children".into(), json!([roll]));
    json!({
        "lot": b.lot, "direction": "backward", "lots": 2, "depth": 1, "truncated": false,
        "reached": {"jobs": [b.job], "orders": [], "shipments": [], "customers": []},
        "tree": tree,
    })
}

pub fn expected_forward(ids: &Ids) -> Value {
    let mut children = Vec::new();
    for (j, id) in JOBS.iter().zip(&ids.jobs) {
        let printed = json!({
            "lot": j.printed, "item": "PRINTED", "uom": "ST", "quantity": j.used,
            "origin": "production", "warehouse": "FG", "bin": "F1", "created_at": j.at,
            "expires_on": "2026-04-30",
            "via": {"transformation": id, "kind": "production", "occurred_at": j.at,
                    "consumed": j.used, "produced": j.used, "job": j.job, "order": j.order,
                    "operator": j.operator, "equipment": j.press},
            "shipments": [{"shipment": j.shipment, "customer": j.customer, "order": j.order,
                           "quantity": j.shipped, "occurred_at": j.ship_at}],
            "waste": [], "children": [],
        });
        let mut part = paper(j.lot, j.share, "split", SPLIT_AT);
        part.insert("via".into(), split_via(ids, j.share));
        part.insert("waste".into(), job_waste(j));
        part.insert("children".into(), json!([printed]));
        children.push(Value::Object(part));
    }
    let mut waste = paper("LOT-2025-001-WASTE", "5000", "split", SPLIT_AT);
    waste.insert("via".into(), split_via(ids, "5000"));
    waste.insert(
        "waste".into(),
        json!([{"reason": "disposed", "quantity": "5000", "occurred_at": "2025-10-16T06:10:00.000000Z"}]),
    );
    children.push(Value::Object(waste));
    let mut tree = paper(ROLL, "50000", "received", "2025-10-15T08:30:00.000000Z");
    tree.insert("children".into(), Value::Array(children));
    json!({
        "lot": ROLL, "direction": "forward", "lots": 8, "depth": 2, "truncated": false,
        "reached": {
            "jobs": ["JOB-1234", "JOB-1235", "JOB-1236"],
            "orders": ["ORDER-5001", "ORDER-5002", "ORDER-5003"],
            "shipments": ["SHIP-7001", "SHIP-7002", "SHIP-7003"],
            "customers": ["ABC Corp", "MegaCorp", "XYZ Inc"],
        },
        "tree": tree,
    })
}

async fn the_seed_scenario_traces_backward_and_forward_exactly(engine: Engine) {
    let platform = Platform::new(engine).await;
    let agog = platform.tenant("agog");
    let ids = scenario(&agog).await;

    // Quality issue on Job-B: back from its lot to the roll and supplier.
    let backward = agog
        .ok("backward_trace", json!({"lot": "LOT-2025-001-B"}))
        .await;
    assert_eq!(backward, expected_backward(&ids), "{backward:#}");
    // Supplier recall of the roll: forward to every job, order, shipment and customer.
    let forward = agog.ok("forward_trace", json!({"lot": ROLL})).await;
    assert_eq!(forward, expected_forward(&ids), "{forward:#}");
    // A finished lot traces back through its job to the roll.
    let back_from_goods = agog.ok("backward_trace", json!({"lot": "FG-1236"})).await;
    assert_eq!(back_from_goods["lots"], 3);
    assert_eq!(back_from_goods["depth"], 2);
    assert_eq!(
        back_from_goods["tree"]["children"][0]["children"][0]["lot"],
        ROLL
    );

    // Waste analysis: Press-3 wastes most of what it prints, the disposal counts as all waste.
    let by_press = agog
        .ok(
            "waste_analysis",
            json!({"by": "equipment", "from": "2025-10-01T00:00:00Z", "to": "2025-11-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        by_press["rows"],
        json!([
            {"key": null, "wasted": "5000", "consumed": "0", "events": 1, "waste_percent": "100.00"},
            {"key": "Press-3", "wasted": "500", "consumed": "14500", "events": 1, "waste_percent": "3.33"},
            {"key": "Press-1", "wasted": "200", "consumed": "9800", "events": 1, "waste_percent": "2.00"},
            {"key": "Press-2", "wasted": "100", "consumed": "19900", "events": 1, "waste_percent": "0.50"},
        ])
    );
    let by_lot = agog.ok("waste_analysis", json!({"by": "lot"})).await;
    assert_eq!(by_lot["rows"][1]["key"], "LOT-2025-001-B");
    assert_eq!(by_lot["rows"][1]["waste_percent"], "3.33");
    let by_operator = agog
        .ok(
            "waste_analysis",
            json!({"by": "operator", "to": "2025-10-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(by_operator["rows"], json!([]), "nothing before October");

    // Only FG-1236 has stock left (900 sheets), expiring 2026-04-30.
    let expiring = agog
        .ok("expiring_lots", json!({"until": "2026-06-30"}))
        .await;
    assert_eq!(
        expiring["lots"],
        json!([{"lot": "FG-1236", "item": "PRINTED", "expires_on": "2026-04-30",
                "warehouse": "FG", "bin": "F1", "on_hand": "900", "available": "900"}])
    );
    assert_eq!(
        agog.ok("expiring_lots", json!({"until": "2026-04-29"}))
            .await["lots"],
        json!([])
    );
    let lot = agog.ok("lot", json!({"lot": "LOT-2025-001-B"})).await;
    assert_eq!(lot["on_hand"], "0");
    assert_eq!(lot["supplier_lot"], "Roll #12345");
    assert_eq!(
        agog.valued("PRINTED", "FG").await,
        ["900", "18.0000", "0.0200"]
    );
    agog.assert_replays().await;
}
