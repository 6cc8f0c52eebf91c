//! Generated histories of stock operations, on both engines: whatever receipts, issues,
//! counts, transfers, reservations and releases a client sends,
//! - each is accepted exactly when a simple model says the stock allows it, and refused with
//!   `insufficient_stock` (or `conflict` for releasing more than is reserved) otherwise,
//! - the snapshot is exactly the model's, bin by bin and lot by lot,
//! - replaying the event store gives the snapshot with zero difference (`verify`),
//! - no value is left on a stream without stock.
//!
//! Each case runs in a tenant of its own on one platform (one database) per engine.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use switchyard_contracts::ErrorCode;

use crate::support::{Engine, Platform, Tenant};

const ITEMS: [&str; 2] = ["paper", "ink"];
const PLACES: [(&str, &str); 3] = [("main", "A1"), ("main", "A2"), ("north", "N1")];
/// The one lot of every case: paper received into main/A1 before the generated steps.
const LOT: &str = "L1";

#[derive(Debug, Clone)]
enum Step {
    Receive {
        item: usize,
        place: usize,
        qty: i64,
    },
    Issue {
        item: usize,
        place: usize,
        lot: bool,
        qty: i64,
        from_reserved: bool,
    },
    Adjust {
        item: usize,
        place: usize,
        lot: bool,
        qty: i64,
    },
    Transfer {
        item: usize,
        lot: bool,
        from: usize,
        to: usize,
        qty: i64,
    },
    Reserve {
        item: usize,
        place: usize,
        lot: bool,
        qty: i64,
    },
    Release {
        item: usize,
        place: usize,
        lot: bool,
        qty: i64,
    },
}

/// Thousandths of a unit: 0.001 to 12.000.
fn qty() -> impl Strategy<Value = i64> {
    1_i64..=12_000
}

fn step() -> impl Strategy<Value = Step> {
    let item = 0..ITEMS.len();
    let place = 0..PLACES.len();
    prop_oneof![
        3 => (item.clone(), place.clone(), qty()).prop_map(|(item, place, qty)| Step::Receive { item, place, qty }),
        3 => (item.clone(), place.clone(), any::<bool>(), qty(), any::<bool>())
            .prop_map(|(item, place, lot, qty, from_reserved)| Step::Issue { item, place, lot, qty, from_reserved }),
        1 => (item.clone(), place.clone(), any::<bool>(), qty(), any::<bool>())
            .prop_map(|(item, place, lot, qty, less)| Step::Adjust { item, place, lot, qty: if less { -qty } else { qty } }),
        2 => (item.clone(), any::<bool>(), place.clone(), place.clone(), qty())
            .prop_map(|(item, lot, from, to, qty)| Step::Transfer { item, lot, from, to, qty }),
        2 => (item.clone(), place.clone(), any::<bool>(), qty()).prop_map(|(item, place, lot, qty)| Step::Reserve { item, place, lot, qty }),
        1 => (item, place, any::<bool>(), qty()).prop_map(|(item, place, lot, qty)| Step::Release { item, place, lot, qty }),
    ]
}

fn decimal(thousandths: i64) -> String {
    let sign = if thousandths < 0 { "-" } else { "" };
    let t = thousandths.abs();
    format!("{sign}{}.{:03}", t / 1000, t % 1000)
}

/// Thousandths from a reported quantity (`"3"`, `"2.5"`, `"0.125"`).
fn thousandths(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = format!("{fraction:0<3}");
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    sign * (whole.trim_start_matches('-').parse::<i64>().unwrap() * 1000
        + fraction[..3].parse::<i64>().unwrap())
}

/// A bin's stock of an item and lot: (item, warehouse, bin, lot).
type Key = (String, String, String, String);

/// `(on_hand, reserved)` per key, in thousandths.
type Model = BTreeMap<Key, (i64, i64)>;

fn key(item: usize, place: usize, lot: bool) -> Key {
    let (warehouse, bin) = PLACES[place];
    let lot = if lot && item == 0 { LOT } else { "" };
    (ITEMS[item].into(), warehouse.into(), bin.into(), lot.into())
}

/// The action's params for a bin (and the lot, which only paper has).
fn at(item: usize, place: usize, lot: bool, qty: i64) -> Value {
    let (warehouse, bin) = PLACES[place];
    let mut params =
        json!({"item": ITEMS[item], "warehouse": warehouse, "bin": bin, "quantity": decimal(qty)});
    if lot && item == 0 {
        params["lot"] = json!(LOT);
    }
    params
}

/// What the model expects of one step: the refusal's code, or the changes and how many
/// streams the event is stored in.
enum Expect {
    Ok(Vec<(Key, i64, i64)>, usize),
    Refused(ErrorCode),
}

fn expect(model: &Model, step: &Step) -> Expect {
    let get = |k: &Key| model.get(k).copied().unwrap_or_default();
    let short = Expect::Refused(ErrorCode::InsufficientStock);
    match step {
        Step::Receive { item, place, qty } => {
            Expect::Ok(vec![(key(*item, *place, false), *qty, 0)], 1)
        }
        Step::Issue {
            item,
            place,
            lot,
            qty,
            from_reserved,
        } => {
            let k = key(*item, *place, *lot);
            let (on_hand, reserved) = get(&k);
            match from_reserved {
                true if reserved >= *qty => Expect::Ok(vec![(k, -qty, -qty)], 1),
                false if on_hand - reserved >= *qty => Expect::Ok(vec![(k, -qty, 0)], 1),
                _ => short,
            }
        }
        Step::Adjust {
            item,
            place,
            lot,
            qty,
        } => {
            let k = key(*item, *place, *lot);
            let (on_hand, reserved) = get(&k);
            if on_hand - reserved + qty >= 0 {
                Expect::Ok(vec![(k, *qty, 0)], 1)
            } else {
                short
            }
        }
        Step::Transfer {
            item,
            lot,
            from,
            to,
            qty,
        } => {
            let source = key(*item, *from, *lot);
            let (on_hand, reserved) = get(&source);
            if on_hand - reserved < *qty {
                return short;
            }
            let streams = if PLACES[*from].0 == PLACES[*to].0 {
                1
            } else {
                2
            };
            Expect::Ok(
                vec![(source, -qty, 0), (key(*item, *to, *lot), *qty, 0)],
                streams,
            )
        }
        Step::Reserve {
            item,
            place,
            lot,
            qty,
        } => {
            let k = key(*item, *place, *lot);
            let (on_hand, reserved) = get(&k);
            if on_hand - reserved >= *qty {
                Expect::Ok(vec![(k, 0, *qty)], 1)
            } else {
                short
            }
        }
        Step::Release {
            item,
            place,
            lot,
            qty,
        } => {
            let k = key(*item, *place, *lot);
            if get(&k).1 >= *qty {
                Expect::Ok(vec![(k, 0, -qty)], 1)
            } else {
                Expect::Refused(ErrorCode::Conflict)
            }
        }
    }
}

fn call(step: &Step) -> (&'static str, Value) {
    match step {
        Step::Receive { item, place, qty } => {
            let mut params = at(*item, *place, false, *qty);
            params["unit_cost"] = json!(format!("{}.{:02}", 1 + qty % 7, qty % 100));
            ("receive", params)
        }
        Step::Issue {
            item,
            place,
            lot,
            qty,
            from_reserved,
        } => {
            let mut params = at(*item, *place, *lot, *qty);
            params["from_reserved"] = json!(from_reserved);
            ("issue", params)
        }
        Step::Adjust {
            item,
            place,
            lot,
            qty,
        } => {
            let mut params = at(*item, *place, *lot, *qty);
            params["reason"] = json!("cycle count");
            ("adjust", params)
        }
        Step::Transfer {
            item,
            lot,
            from,
            to,
            qty,
        } => {
            let place = |p: usize| json!({"warehouse": PLACES[p].0, "bin": PLACES[p].1});
            let mut params = json!({"item": ITEMS[*item], "quantity": decimal(*qty), "from": place(*from), "to": place(*to)});
            if *lot && *item == 0 {
                params["lot"] = json!(LOT);
            }
            ("transfer", params)
        }
        Step::Reserve {
            item,
            place,
            lot,
            qty,
        } => ("reserve", at(*item, *place, *lot, *qty)),
        Step::Release {
            item,
            place,
            lot,
            qty,
        } => ("release", at(*item, *place, *lot, *qty)),
    }
}

/// Runs one generated history in a fresh tenant and checks every step and the end state.
async fn history(tenant: &Tenant, steps: Vec<Step>) -> Result<(), TestCaseError> {
    tenant.basics().await;
    tenant
        .ok(
            "receive",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "5",
                   "unit_cost": "2", "lot": {"lot": LOT}}),
        )
        .await;
    let mut model = Model::new();
    model.insert(key(0, 0, true), (5_000, 0));
    let mut events = 1;
    for step in steps {
        if let Step::Transfer { from, to, .. } = step
            && from == to
        {
            continue;
        }
        let (action, params) = call(&step);
        let outcome = tenant.call(action, params.clone()).await;
        match (expect(&model, &step), outcome) {
            (Expect::Ok(changes, streams), Ok(_)) => {
                for (k, on_hand, reserved) in changes {
                    let entry = model.entry(k).or_default();
                    entry.0 += on_hand;
                    entry.1 += reserved;
                }
                events += streams;
            }
            (Expect::Refused(code), Err(problem)) => {
                prop_assert_eq!(problem.code, code, "{} {}: {:?}", action, params, problem);
            }
            (Expect::Ok(..), Err(problem)) => {
                return Err(TestCaseError::fail(format!(
                    "{action} {params} refused: {problem:?}"
                )));
            }
            (Expect::Refused(code), Ok(answer)) => {
                return Err(TestCaseError::fail(format!(
                    "{action} {params} accepted ({answer}), expected {code}"
                )));
            }
        }
    }
    let stock = tenant.ok("stock", json!({})).await;
    let mut snapshot = Model::new();
    for row in stock["rows"].as_array().unwrap() {
        let text = |f: &str| row[f].as_str().unwrap_or_default().to_owned();
        snapshot.insert(
            (text("item"), text("warehouse"), text("bin"), text("lot")),
            (
                thousandths(&text("on_hand")),
                thousandths(&text("reserved")),
            ),
        );
    }
    model.retain(|_, v| *v != (0, 0));
    prop_assert_eq!(snapshot, model);
    let verified = tenant.ok("verify", json!({})).await;
    prop_assert_eq!(&verified["differences"], &json!([]), "{}", verified);
    prop_assert_eq!(&verified["events"], &json!(events));
    for row in tenant.ok("valuation", json!({})).await["rows"]
        .as_array()
        .unwrap()
    {
        prop_assert!(row["on_hand"] != "0", "value left without stock: {}", row);
        prop_assert!(!row["value"].as_str().unwrap().starts_with('-'), "{}", row);
    }
    Ok(())
}

fn run(engine: Engine, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let platform = runtime.block_on(Platform::new(engine));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let runs = Cell::new(0);
    let started = Instant::now();
    let outcome = runner.run(&prop::collection::vec(step(), 1..=16), |steps| {
        runs.set(runs.get() + 1);
        let tenant = platform.tenant(&format!("case-{}", runs.get()));
        runtime.block_on(history(&tenant, steps))
    });
    eprintln!(
        "{engine:?}: {cases} generated histories, {} runs with shrinking, in {:.1?}",
        runs.get(),
        started.elapsed()
    );
    // The pools close on the runtime they were made on.
    runtime.block_on(async move { drop(platform) });
    outcome.unwrap();
}

#[test]
fn the_snapshot_is_the_replay_of_generated_histories_on_sqlite() {
    run(Engine::Sqlite, 24);
}

#[test]
fn the_snapshot_is_the_replay_of_generated_histories_on_postgres() {
    run(Engine::Postgres, 12);
}
