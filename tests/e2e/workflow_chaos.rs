//! Quote-to-Cash under SIGKILL: runs launched one after another while `serve` (or the Restate
//! server) is killed with SIGKILL and started again every few hundred milliseconds, so the
//! runs in flight are cut at whatever step they were in. Every run must end completed or
//! compensated, with no payment captured twice, no stock issued twice and no journal posted
//! twice. The suite runs a short version (`SWITCHYARD_CHAOS_RUNS`, default 24 per victim);
//! `scripts/chaos-workflows` runs 200 of each.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_integration_fakes::payments::{FakePayments, Options as PaymentOptions};

use crate::common::restate::Restate;
use crate::common::{Api, Server, free_port, tenant_with_key};
use crate::workflows::{WORKFLOW, available, balance, call, configure_payments, order_of};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Victim {
    Serve,
    Restate,
}

fn runs() -> usize {
    std::env::var("SWITCHYARD_CHAOS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

/// A small deterministic generator (xorshift): the kill times vary, a failure reproduces
/// from the seed the test prints.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// `serve` on fixed ports (gateway and workflow endpoint), so a restart is the same address
/// for the clients and for the Restate server.
struct Serving {
    dir: std::path::PathBuf,
    args: Vec<String>,
    port: u16,
    env: Vec<(&'static str, String)>,
    server: Option<Server>,
}

impl Serving {
    fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut env: Vec<(&str, String)> = self.env.clone();
        self.server = Some(Server::spawn_with_env(
            &self.dir, &args, self.port, &mut env,
        ));
    }

    fn kill9_and_restart(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill9();
        }
        self.start();
    }
}

/// Launches `id`, retrying while the process that answers is being restarted.
async fn launch(api: &Api, id: &str, input: &Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = api
            .try_post(
                &format!("{WORKFLOW}/launch"),
                json!({"params": {"workflow": "QuoteToCash", "id": id, "input": input}}),
            )
            .await
            .unwrap_or((StatusCode::SERVICE_UNAVAILABLE, Value::Null));
        if status == StatusCode::OK {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never launched: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The instance's query, or `None` while nothing answers.
async fn query(api: &Api, id: &str) -> Option<Value> {
    let (status, body) = api
        .try_post(
            &format!("{WORKFLOW}/query"),
            json!({"params": {"workflow": "QuoteToCash", "id": id}}),
        )
        .await?;
    (status == StatusCode::OK).then(|| body["data"].clone())
}

async fn chaos(victim: Victim) {
    let runs = runs();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut dice = Dice(seed);
    let mut restate = Restate::start();
    let fake = FakePayments::start(PaymentOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::integration::operator_config(dir.path());
    let port = free_port();
    let mut serving = Serving {
        dir: dir.path().to_owned(),
        args: [
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
            &config,
        ]
        .map(str::to_owned)
        .to_vec(),
        port,
        env: restate.env(),
        server: None,
    };
    serving.start();
    restate.wait_for_workflow("QuoteToCash").await;
    let acme = Api::new(
        serving.server.as_ref().unwrap(),
        &tenant_with_key(dir.path(), "acme", "*"),
    );
    configure_payments(&acme, dir.path(), &fake).await;
    crate::workflows::stock_up_with(&acme, "1000").await;

    // Every seventh card is declined (a compensated run); quantities 1 to 3.
    let plan: Vec<(String, u64, bool)> = (0..runs)
        .map(|i| (format!("C-{i}"), 1 + (i as u64 % 3), i % 7 == 6))
        .collect();
    let launcher = {
        let (acme, plan) = (acme.clone(), plan.clone());
        tokio::spawn(async move {
            for (id, quantity, declined) in &plan {
                let method = if *declined {
                    "pm_card_chargeDeclined"
                } else {
                    "pm_card_visa"
                };
                launch(&acme, id, &order_of(&quantity.to_string(), method)).await;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };

    // Kill while runs are launched and in flight, until every run has ended; note the step
    // each unfinished run was at.
    let mut kills = 0;
    let mut cut_at: BTreeMap<String, usize> = BTreeMap::new();
    let mut cut: BTreeSet<String> = BTreeSet::new();
    let chaos_until = Instant::now() + Duration::from_secs(120);
    loop {
        // Restate takes longer to come back than `serve`: killed as often, no run would move.
        let pause = match victim {
            Victim::Serve => 100 + dice.next(400),
            Victim::Restate => 400 + dice.next(800),
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let (mut launched, mut running) = (0, 0);
        for (id, _, _) in &plan {
            let Some(q) = query(&acme, id).await else {
                continue;
            };
            launched += 1;
            if !["completed", "failed", "cancelled"].contains(&q["status"].as_str().unwrap_or("")) {
                running += 1;
                cut.insert(id.clone());
                let step = q["state"]["step"].as_str().unwrap_or("start").to_owned();
                *cut_at.entry(step).or_default() += 1;
            }
        }
        let all_ended = launcher.is_finished() && launched == plan.len() && running == 0;
        if all_ended || Instant::now() > chaos_until {
            break;
        }
        match victim {
            Victim::Serve => serving.kill9_and_restart(),
            Victim::Restate => restate.kill9_and_restart(),
        }
        kills += 1;
    }
    launcher.await.unwrap();

    // Every run ends, completed or compensated.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut completed_qty = 0;
    let mut completed_cents = 0;
    let key = fake.options().accounts[0].secret_key.clone();
    for (id, quantity, declined) in &plan {
        let done = loop {
            if let Some(q) = query(&acme, id).await
                && ["completed", "failed", "cancelled"]
                    .contains(&q["status"].as_str().unwrap_or(""))
            {
                break q;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never ended (seed {seed}); restate's log:\n{}",
                restate.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let outcome = done["output"]["outcome"]
            .as_str()
            .unwrap_or("none")
            .to_owned();
        let expected = if *declined { "declined" } else { "completed" };
        assert_eq!(outcome, expected, "{id} (seed {seed}): {done}");
        let payment = done["state"]["payment"].as_str();
        if *declined {
            assert_eq!(
                done["state"]["compensated"],
                json!(["order cancelled"]),
                "{done}"
            );
        } else {
            let counts = fake.counts(&key, payment.unwrap()).unwrap();
            assert_eq!(
                (counts.captures, counts.refunds, counts.amount_received),
                (1, 0, 1250 * *quantity as i64),
                "{id}: captured once, never refunded (seed {seed})"
            );
            completed_qty += *quantity;
            completed_cents += 1250 * *quantity;
        }
        *outcomes.entry(outcome).or_default() += 1;
    }

    // Nothing issued or posted twice: stock is receipts minus the completed orders' issues,
    // and the books hold each completed order's sale and cash once.
    let on_hand = 1000 - completed_qty;
    let stock = call(
        &acme,
        "/services/inventory/stock",
        json!({"item": "sheet", "warehouse": "main"}),
    )
    .await;
    let mut orders = Vec::new();
    for (id, _, _) in &plan {
        let order = call(&acme, "/services/orders/get", json!({"order_id": id})).await;
        orders.push(format!("{id}:{}", order["status"]));
    }
    assert_eq!(
        available(&acme).await,
        on_hand.to_string(),
        "seed {seed}; stock {stock}; orders {orders:?}"
    );
    let total = format!("{}.{:02}00", completed_cents / 100, completed_cents % 100);
    assert_eq!(balance(&acme, "1000-EUR").await, total, "cash, seed {seed}");
    assert_eq!(
        balance(&acme, "4000-EUR").await,
        total,
        "revenue, seed {seed}"
    );
    assert_eq!(
        balance(&acme, "1100-EUR").await,
        "0.0000",
        "receivable, seed {seed}"
    );
    let trial = call(&acme, "/services/ledger/trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
    // One invoice per completed run on the bus, once its duplicates (a publish run again
    // after a cut) are dropped by event id as a consumer does.
    let (mut invoices, mut published, mut offset) = (BTreeSet::new(), 0, 0);
    loop {
        let polled = call(
            &acme,
            "/providers/bus/embedded/poll",
            json!({"topic": "billing", "group": "chaos", "offset": offset, "max_records": 1000}),
        )
        .await;
        let records = polled["records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        for record in &records {
            published += 1;
            invoices.insert(record["headers"]["ce_id"].as_str().unwrap_or("").to_owned());
        }
        offset = polled["next_offset"].as_i64().unwrap();
    }
    let completed = outcomes.get("completed").copied().unwrap_or(0);
    assert_eq!(invoices.len(), completed, "seed {seed}");
    eprintln!(
        "workflow chaos ({victim:?} SIGKILLed): {runs} runs, {kills} kills, {} runs cut at least once, cuts by step {cut_at:?}; \
         outcomes {outcomes:?}; {completed_qty} sheets issued, stock {on_hand} = 1000 received - \
         {completed_qty} issued; cash and revenue {total} EUR each, trial balance zero; \
         every completed run captured once; {} invoices on the bus, {published} published (seed {seed})",
        cut.len(),
        invoices.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quote_to_cash_runs_survive_sigkill_of_serve_without_doubling_payment_stock_or_journal() {
    chaos(Victim::Serve).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quote_to_cash_runs_survive_sigkill_of_restate_without_doubling_payment_stock_or_journal() {
    chaos(Victim::Restate).await;
}
