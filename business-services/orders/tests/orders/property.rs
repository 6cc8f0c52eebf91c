//! Inventory and the ledger agree to the last unit of money whatever happens to the stock: a
//! property test over random receipts (unit costs to four places, quantities to six),
//! direct issues, and orders created, cancelled, fulfilled and returned whole, interleaved,
//! through the real inventory, ledger and orders services on db/sqlite.
//!
//! After every case, the inventory's valuation change equals what came in (each receipt's
//! value as the inventory reported it) less what direct issues took (their cost as reported)
//! plus the net debit the orders posted to inventory (1300); COGS (5000) is exactly the
//! opposite of that; the trial balance is balanced; and the stock on hand and reserved is
//! what a model of the operations says. `SWITCHYARD_PROPERTY_CASES` sets the number of cases
//! (default [`CASES`]), `SWITCHYARD_PROPERTY_SEED` replays one seed (printed by every run).

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};

use crate::receiver::Receiver;
use crate::support::{CUSTOMER, Platform, order};

/// Cases per run: about 20 s in a debug build on two cores (500 took 74 s).
const CASES: u32 = 128;

const INV: &str = "services/inventory";
const LEDGER: &str = "services/ledger";
const ITEMS: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    /// `quantity` (micro-units) of item `item` at `unit_cost` (ten-thousandths).
    Receive {
        item: usize,
        quantity: i64,
        unit_cost: i64,
    },
    Issue {
        item: usize,
        quantity: i64,
    },
    /// All of the item's available stock, which must take all of its value when nothing is
    /// reserved.
    IssueAll {
        item: usize,
    },
    /// An order of up to two lines (item, quantity, unit price in ten-thousandths).
    Create {
        lines: Vec<(usize, i64, i64)>,
    },
    /// The `n`th order created so far (modulo their number), confirmed if need be.
    Fulfil {
        n: usize,
    },
    Return {
        n: usize,
    },
    Cancel {
        n: usize,
    },
}

fn quantity() -> impl Strategy<Value = i64> {
    // Whole units, or with up to six decimals, up to 40; now and then a few millionths,
    // where a four-place unit cost rounds the most.
    prop_oneof![
        2 => (1i64..=40).prop_map(|q| q * 1_000_000),
        2 => 1i64..=40_000_000,
        1 => 1i64..=1_000,
    ]
}

/// A unit cost in ten-thousandths: mostly below 100, now and then up to a million.
fn unit_cost() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..=999_999, 1 => 0i64..=10_000_000_000]
}

/// What an order line asks: less than a receipt brings, so most orders find their stock.
fn sale_quantity() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => (1i64..=8).prop_map(|q| q * 1_000_000),
        2 => 1i64..=8_000_000,
        1 => 1i64..=1_000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let item = 0..ITEMS;
    prop_oneof![
        3 => (item.clone(), quantity(), unit_cost())
            .prop_map(|(item, quantity, unit_cost)| Op::Receive { item, quantity, unit_cost }),
        1 => (item.clone(), quantity()).prop_map(|(item, quantity)| Op::Issue { item, quantity }),
        1 => item.clone().prop_map(|item| Op::IssueAll { item }),
        3 => prop::collection::vec((item, sale_quantity(), 1i64..=9_999_999), 1..=2)
            .prop_map(|lines| Op::Create { lines }),
        3 => any::<usize>().prop_map(|n| Op::Fulfil { n }),
        2 => any::<usize>().prop_map(|n| Op::Return { n }),
        1 => any::<usize>().prop_map(|n| Op::Cancel { n }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Created,
    Fulfilled,
    Returned,
    Cancelled,
}

/// What the operations should have left: stock per item in micro-units, money in
/// ten-thousandths.
#[derive(Default)]
struct Model {
    on_hand: [i64; ITEMS],
    reserved: [i64; ITEMS],
    received_value: i128,
    issued_cost: i128,
    orders: Vec<Sale>,
}

/// An order as the model keeps it: its lines (item, quantity) and where it is.
#[derive(Clone)]
struct Sale {
    order_id: String,
    lines: Vec<(usize, i64)>,
    state: State,
}

/// What the cases of a run did, printed at its end: a property that ran no returns says
/// nothing about returns.
#[derive(Debug, Default)]
struct Tally {
    receipts: usize,
    issues: usize,
    created: usize,
    fulfilled: usize,
    returned: usize,
    cancelled: usize,
}

impl Model {
    fn available(&self, item: usize) -> i64 {
        self.on_hand[item] - self.reserved[item]
    }
}

/// `1.5` → 1_500_000 at `scale` 6; money texts always carry their four places.
fn units(text: &str, scale: u32) -> i128 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(
        fraction.len() <= scale as usize,
        "{text} has more than {scale} places"
    );
    let padded = format!("{fraction:0<width$}", width = scale as usize);
    let value =
        whole.parse::<i128>().unwrap() * 10i128.pow(scale) + padded.parse::<i128>().unwrap_or(0);
    if negative { -value } else { value }
}

/// `units` at `scale` as the services' decimal text (`1.5`, `2`, `0.0001`).
fn text(units: i64, scale: u32) -> String {
    let one = 10i64.pow(scale);
    let fraction = format!("{:0width$}", units % one, width = scale as usize);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        (units / one).to_string()
    } else {
        format!("{}.{fraction}", units / one)
    }
}

/// Net debit (debits less credits) of `account`, in ten-thousandths.
async fn net_debit(platform: &Platform, account: &str) -> i128 {
    let balance = platform
        .other(LEDGER, "balance", json!({"account": account}))
        .await;
    units(balance["debit_total"].as_str().unwrap(), 4)
        - units(balance["credit_total"].as_str().unwrap(), 4)
}

/// The sum of the money in the details of `order`'s steps named `prefix…` (`issue:1`,
/// `restock:1/2`), in ten-thousandths.
fn step_values(order: &Value, prefix: &str) -> i128 {
    order["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["name"].as_str().unwrap().starts_with(prefix))
        .map(|step| units(step["detail"].as_str().unwrap(), 4))
        .sum()
}

/// The inventory's value and on-hand quantity of `item`, over its warehouses.
async fn valuation(platform: &Platform, item: &str) -> (i128, i128) {
    let answer = platform
        .other(INV, "valuation", json!({"item": item}))
        .await;
    let rows = answer["rows"].as_array().unwrap();
    rows.iter().fold((0, 0), |(value, on_hand), row| {
        (
            value + units(row["value"].as_str().unwrap(), 4),
            on_hand + units(row["on_hand"].as_str().unwrap(), 6),
        )
    })
}

/// Runs case `case`'s `ops` on fresh items and checks the property.
async fn run(
    platform: &Platform,
    case: usize,
    ops: &[Op],
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let items: Vec<String> = (0..ITEMS).map(|i| format!("p{case}-{i}")).collect();
    for item in &items {
        // Defines the item, the warehouse and the bin with a first unit at 1.0000, which the
        // valuation read next counts as the start.
        platform.stock_item(item, "1", "1.0000").await;
    }
    let mut model = Model {
        on_hand: [1_000_000; ITEMS],
        ..Model::default()
    };
    let mut start = Vec::new();
    for item in &items {
        start.push(valuation(platform, item).await.0);
    }
    let (inventory_before, cogs_before) = (
        net_debit(platform, "1300-USD").await,
        net_debit(platform, "5000-USD").await,
    );
    let place = |item: usize| json!({"item": items[item], "warehouse": "w1", "bin": "main"});

    for op in ops {
        match op {
            Op::Receive {
                item,
                quantity,
                unit_cost,
            } => {
                let mut params = place(*item);
                params["quantity"] = json!(text(*quantity, 6));
                params["unit_cost"] = json!(text(*unit_cost, 4));
                let moved = platform.other(INV, "receive", params).await;
                model.received_value += units(moved["value"].as_str().unwrap(), 4);
                model.on_hand[*item] += quantity;
                tally.receipts += 1;
            }
            Op::Issue { .. } | Op::IssueAll { .. } => {
                let (item, quantity) = match op {
                    Op::Issue { item, quantity } => (item, *quantity),
                    Op::IssueAll { item } => (item, model.available(*item)),
                    _ => unreachable!("matched above"),
                };
                let quantity = &quantity;
                if model.available(*item) < *quantity || *quantity == 0 {
                    continue;
                }
                let mut params = place(*item);
                params["quantity"] = json!(text(*quantity, 6));
                let moved = platform.other(INV, "issue", params).await;
                model.issued_cost += units(moved["cost"].as_str().unwrap(), 4);
                model.on_hand[*item] -= quantity;
                tally.issues += 1;
            }
            Op::Create { lines } => {
                let mut wanted: HashMap<usize, i64> = HashMap::new();
                for (item, quantity, _) in lines {
                    *wanted.entry(*item).or_default() += quantity;
                }
                if wanted.iter().any(|(item, q)| model.available(*item) < *q) {
                    continue;
                }
                let order_id = format!("SO-{case}-{}", model.orders.len());
                let order_lines: Vec<Value> = lines
                    .iter()
                    .map(|(item, quantity, price)| {
                        json!({"item": items[*item], "quantity": text(*quantity, 6),
                               "unit_price": text(*price, 4), "currency": "USD"})
                    })
                    .collect();
                platform
                    .ok(
                        "create",
                        json!({"order_id": order_id, "customer": CUSTOMER, "warehouse": "w1",
                               "lines": order_lines}),
                    )
                    .await;
                for (item, quantity) in &wanted {
                    model.reserved[*item] += quantity;
                }
                let reserved = lines.iter().map(|(item, q, _)| (*item, *q)).collect();
                model.orders.push(Sale {
                    order_id,
                    lines: reserved,
                    state: State::Created,
                });
                tally.created += 1;
            }
            Op::Fulfil { n } | Op::Return { n } | Op::Cancel { n } => {
                if model.orders.is_empty() {
                    continue;
                }
                let at = n % model.orders.len();
                let Sale {
                    order_id,
                    lines,
                    state,
                } = model.orders[at].clone();
                let id = json!({"order_id": order_id});
                let next = match (op, state) {
                    (Op::Fulfil { .. }, State::Created) => {
                        platform.ok("confirm", id.clone()).await;
                        let cogs = net_debit(platform, "5000-USD").await;
                        let fulfilled = platform.ok("fulfil", id).await;
                        prop_assert_eq!(&fulfilled["status"], "fulfilled", "{}", fulfilled);
                        // COGS grows by exactly what the issues took.
                        let issued = step_values(&fulfilled, "issue:");
                        let posted = net_debit(platform, "5000-USD").await - cogs;
                        prop_assert_eq!(posted, issued, "{}", fulfilled);
                        for (item, quantity) in &lines {
                            model.on_hand[*item] -= quantity;
                            model.reserved[*item] -= quantity;
                        }
                        tally.fulfilled += 1;
                        State::Fulfilled
                    }
                    (Op::Return { .. }, State::Fulfilled) => {
                        let cogs = net_debit(platform, "5000-USD").await;
                        let before = platform.ok("get", id.clone()).await;
                        let returned = platform.ok("return", id).await;
                        prop_assert_eq!(&returned["status"], "returned", "{}", returned);
                        // A whole return brings back exactly the value that left, and takes
                        // exactly that off COGS.
                        let issued = step_values(&before, "issue:");
                        prop_assert_eq!(step_values(&returned, "restock:"), issued, "{}", returned);
                        let posted = net_debit(platform, "5000-USD").await - cogs;
                        prop_assert_eq!(posted, -issued, "{}", returned);
                        for (item, quantity) in &lines {
                            model.on_hand[*item] += quantity;
                        }
                        tally.returned += 1;
                        State::Returned
                    }
                    (Op::Cancel { .. }, State::Created) => {
                        platform.ok("cancel", id).await;
                        for (item, quantity) in &lines {
                            model.reserved[*item] -= quantity;
                        }
                        tally.cancelled += 1;
                        State::Cancelled
                    }
                    _ => continue,
                };
                model.orders[at].state = next;
            }
        }
    }

    let mut value_change = 0;
    for (i, item) in items.iter().enumerate() {
        let (value, on_hand) = valuation(platform, item).await;
        value_change += value - start[i];
        prop_assert_eq!(on_hand, i128::from(model.on_hand[i]), "on hand of {}", item);
        if on_hand == 0 {
            prop_assert_eq!(value, 0, "{} has no stock left but value", item);
        }
        let stock = platform.stock(item).await;
        prop_assert_eq!(
            units(&stock.1, 6),
            i128::from(model.reserved[i]),
            "reserved {}",
            item
        );
    }
    let inventory = net_debit(platform, "1300-USD").await - inventory_before;
    let cogs = net_debit(platform, "5000-USD").await - cogs_before;
    prop_assert_eq!(
        value_change,
        model.received_value - model.issued_cost + inventory,
        "valuation change = receipts {} - issues {} + ledger inventory 1300 {}",
        model.received_value,
        model.issued_cost,
        inventory
    );
    prop_assert_eq!(cogs, -inventory, "COGS 5000 against inventory 1300");
    let trial = platform.other(LEDGER, "trial_balance", json!({})).await;
    prop_assert_eq!(&trial["balanced"], true, "{}", trial);
    for currency in trial["currencies"].as_array().unwrap() {
        prop_assert_eq!(
            &currency["debit_total"],
            &currency["credit_total"],
            "{}",
            trial
        );
    }
    Ok(())
}

#[test]
fn inventory_valuation_and_the_ledger_agree_to_the_last_unit_over_random_operations() {
    let cases = std::env::var("SWITCHYARD_PROPERTY_CASES")
        .ok()
        .map_or(CASES, |n| {
            n.parse().expect("SWITCHYARD_PROPERTY_CASES is a number")
        });
    let seed: u64 = std::env::var("SWITCHYARD_PROPERTY_SEED")
        .ok()
        .map_or_else(rand_seed, |s| {
            s.parse().expect("SWITCHYARD_PROPERTY_SEED is a number")
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let receiver = runtime.block_on(Receiver::start());
    let platform = runtime.block_on(async {
        let platform = Platform::new(&receiver.url()).await;
        // One sale first, so the accounts it posts to exist before a case reads them.
        platform.stock_item("opening", "1", "1.0000").await;
        platform
            .ok("create", order("SO-opening", "opening", "1", "2.00"))
            .await;
        platform
            .ok("confirm", json!({"order_id": "SO-opening"}))
            .await;
        platform
            .ok("fulfil", json!({"order_id": "SO-opening"}))
            .await;
        platform
    });
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let case = std::cell::Cell::new(0);
    let tally = std::cell::RefCell::new(Tally::default());
    let outcome = runner.run(&prop::collection::vec(op(), 1..=32), |ops| {
        case.set(case.get() + 1);
        runtime.block_on(run(&platform, case.get(), &ops, &mut tally.borrow_mut()))
    });
    println!(
        "property: {} cases run ({cases} passing wanted), seed {seed}: {:?}",
        case.get(),
        tally.borrow()
    );
    if let Err(failure) = outcome {
        panic!("seed {seed}: {failure}");
    }
}

/// A seed of this run, printed so a failure can be replayed.
fn rand_seed() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (nanos as u64) ^ u64::from(std::process::id())
}
