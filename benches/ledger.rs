//! Ledger postings per second on PostgreSQL, beside pgbench's tpcb-like TPS measured in the
//! same run on the same server with the same number of clients, and their ratio.
//!
//! pgbench's transaction updates an account, a teller and a branch and appends a history row;
//! a ledger posting is a two-line journal through the service, the runtime, the provider
//! client and db/postgres in process, on the services' books as `switchyard` hosts them
//! (pooled: one shared database, row-level security, the engine's default pool share). Phases,
//! `SWITCHYARD_BENCH_SECS` seconds each (default 10):
//! - pgbench tpcb-like, before the single postings and again before the batches (the ledger's
//!   ratios are to the mean of the two: on a shared machine the load drifts);
//! - single postings (`post_journal`) on a pair of accounts drawn at random from 100 + 100
//!   ("uniform"), then all on one pair ("hot": every posting waits for the last one's balance
//!   rows, as pgbench's clients wait for its 8 branch rows);
//! - batches (`post_journals`, `BATCH` journals a call), uniform and hot, when the ledger has
//!   the action.
//!
//! With each phase, what the server saw per unit (pg_stat_statements, when preloaded):
//! statements, their execution and planning time, and the bench process's CPU. Last, a short
//! phase through a relay that counts round trips (`roundtrips`): one client, so every wait is
//! the posting's own, and the server's time per posting without lock waits.
//!
//! `scripts/bench-ledger` starts a PostgreSQL of its own and runs this; the figures go to
//! stdout and `target/bench/ledger.json` (or `$SWITCHYARD_BENCH_OUT/ledger.json`).

// A bench's root is its crate root: its modules are found beside it unless told.
#[path = "ledger/load.rs"]
mod load;
#[path = "ledger/roundtrips.rs"]
mod roundtrips;
#[path = "ledger/server.rs"]
mod server;

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use load::{Accounts, Call, Ledger};
use roundtrips::Relay;
use server::{ServerCpu, Statements, drop_database, fresh_database, pgbench_init, pgbench_tps};

const DEFAULT_CLIENTS: usize = 8;
/// Journals per `post_journals` call.
const BATCH: usize = 100;
/// Postings (and batches) of the round-trip phase.
const ROUND_TRIP_POSTINGS: u64 = 50;
const ROUND_TRIP_BATCHES: u64 = 3;

const PGBENCH_DB: &str = "sy_bench_pgbench";
const LEDGER_DB: &str = "sy_bench_ledger";

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One measured phase: units per second and the server's profile per unit.
struct Phase {
    name: &'static str,
    label: String,
    per_sec: Option<f64>,
    /// Transactions or journals done.
    units: Option<u64>,
    profile: Value,
    skipped: Option<String>,
}

impl Phase {
    fn to_json(&self) -> Value {
        json!({"name": self.name, "label": self.label, "per_sec": self.per_sec,
               "profile": self.profile, "skipped": self.skipped})
    }
}

/// What a phase runs.
enum Step {
    Pgbench(&'static str, &'static str),
    Ledger(&'static str, String, Accounts, Call),
}

/// The phases in the order they run.
fn steps() -> Vec<Step> {
    vec![
        Step::Pgbench("pgbench_before", "pgbench tpcb-like transactions (before)"),
        Step::Ledger(
            "single_uniform",
            "ledger single postings, uniform accounts".into(),
            Accounts::Uniform,
            Call::Single,
        ),
        Step::Ledger(
            "single_hot",
            "ledger single postings, one hot pair".into(),
            Accounts::Hot,
            Call::Single,
        ),
        Step::Pgbench("pgbench_after", "pgbench tpcb-like transactions (again)"),
        Step::Ledger(
            "batch_uniform",
            format!("ledger journals in batches of {BATCH}, uniform accounts"),
            Accounts::Uniform,
            Call::Batch(BATCH),
        ),
        Step::Ledger(
            "batch_hot",
            format!("ledger journals in batches of {BATCH}, one hot pair"),
            Accounts::Hot,
            Call::Batch(BATCH),
        ),
    ]
}

fn main() {
    let admin = std::env::var("SWITCHYARD_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("SWITCHYARD_TEST_POSTGRES_URL"))
        .expect("set SWITCHYARD_BENCH_POSTGRES_URL (a superuser URL), or run scripts/bench-ledger");
    let secs: u64 = env_number("SWITCHYARD_BENCH_SECS", 10);
    let clients: usize = env_number("SWITCHYARD_BENCH_CLIENTS", DEFAULT_CLIENTS);
    let pgbench_url = fresh_database(&admin, PGBENCH_DB);
    let stats = Statements::open(&pgbench_url);
    let profile_of = |database: &str, units: u64| {
        stats
            .as_ref()
            .map_or(Value::Null, |s| s.profile(database, units))
    };
    let reset = || {
        if let Some(stats) = &stats {
            stats.reset();
        }
    };
    pgbench_init(&pgbench_url);
    let ledger_url = fresh_database(&admin, LEDGER_DB);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ledger = Arc::new(tokio.block_on(Ledger::start(&ledger_url)));
    tokio.block_on(ledger.create_accounts());
    let server_cpu = ServerCpu::find(&admin);
    let server_cpu_seconds = || server_cpu.as_ref().map(ServerCpu::seconds);
    let mut phases = Vec::new();
    for step in steps() {
        reset();
        let cpu_before = server_cpu_seconds();
        let mut phase = match step {
            // On a shared machine the load drifts: pgbench runs before the single postings
            // and between them and the batches, and the ledger is held to the mean.
            Step::Pgbench(name, label) => {
                let (tps, transactions) = pgbench_tps(&pgbench_url, clients, secs);
                Phase {
                    name,
                    label: label.into(),
                    per_sec: Some(tps),
                    units: Some(transactions),
                    profile: profile_of(PGBENCH_DB, transactions),
                    skipped: None,
                }
            }
            Step::Ledger(name, label, accounts, call) => {
                let run = tokio.block_on(ledger.run(name, accounts, call, clients, secs));
                match (run, call) {
                    (Ok(measured), _) => {
                        let mut profile = profile_of(LEDGER_DB, measured.journals);
                        profile["client_cpu_us_per_unit"] = json!(measured.cpu_us);
                        Phase {
                            name,
                            label,
                            per_sec: Some(measured.per_sec),
                            units: Some(measured.journals),
                            profile,
                            skipped: None,
                        }
                    }
                    // Batches are measured once the ledger has them.
                    (Err(why), Call::Batch(_)) => {
                        eprintln!("{name}: skipped: {why}");
                        Phase {
                            name,
                            label,
                            per_sec: None,
                            units: None,
                            profile: Value::Null,
                            skipped: Some(why),
                        }
                    }
                    (Err(why), Call::Single) => panic!("{name}: {why}"),
                }
            }
        };
        if let (Some(before), Some(after), Some(units)) =
            (cpu_before, server_cpu_seconds(), phase.units)
        {
            phase.profile["server_cpu_us_per_unit"] = json!((after - before) * 1e6 / units as f64);
        }
        phases.push(phase);
    }
    let trial = tokio
        .block_on(ledger.call("trial_balance", json!({})))
        .unwrap();
    drop(ledger);
    let batches = phases
        .iter()
        .any(|p| p.name == "batch_uniform" && p.per_sec.is_some());
    let trips = tokio.block_on(round_trips(&ledger_url, batches, stats.as_ref()));
    report(&phases, &trips, &trial, clients, secs);
    for db in [PGBENCH_DB, LEDGER_DB] {
        drop_database(&admin, db);
    }
}

/// Round trips per posting and per batch, one client through a counting relay; with it, the
/// server's time per posting when no other client holds a lock it needs.
async fn round_trips(ledger_url: &str, batches: bool, stats: Option<&Statements>) -> Value {
    let mut url = reqwest::Url::parse(ledger_url).expect("a postgres:// URL");
    let upstream = (url.host_str().unwrap(), url.port().unwrap_or(5432))
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let relay = Relay::start(upstream).await;
    url.set_port(Some(relay.addr.port())).unwrap();
    url.set_host(Some(&relay.addr.ip().to_string())).unwrap();
    let ledger = Ledger::start(url.as_str()).await;
    // Starting the instance, connecting and warming up are not a posting's.
    for n in 0..3 {
        let prefix = format!("trips-warm-{n}");
        ledger
            .post(&prefix, Accounts::Uniform, Call::Single)
            .await
            .unwrap();
    }
    // The pool resets a released connection after the call has its answer: wait for it.
    let settle = || tokio::time::sleep(Duration::from_millis(300));
    settle().await;
    if let Some(stats) = stats {
        stats.reset();
    }
    let before = relay.trips();
    for n in 0..ROUND_TRIP_POSTINGS {
        let prefix = format!("trips-single-{n}");
        ledger
            .post(&prefix, Accounts::Uniform, Call::Single)
            .await
            .unwrap();
    }
    settle().await;
    let per_posting = (relay.trips() - before) as f64 / ROUND_TRIP_POSTINGS as f64;
    let alone = stats.map_or(Value::Null, |s| s.profile(LEDGER_DB, ROUND_TRIP_POSTINGS));
    eprintln!("round trips: {per_posting:.1} per single posting (1 client, through a relay)");
    let per_batch = if batches {
        let before = relay.trips();
        for n in 0..ROUND_TRIP_BATCHES {
            let prefix = format!("trips-batch-{n}");
            ledger
                .post(&prefix, Accounts::Uniform, Call::Batch(BATCH))
                .await
                .unwrap();
        }
        settle().await;
        Some((relay.trips() - before) as f64 / ROUND_TRIP_BATCHES as f64)
    } else {
        None
    };
    json!({"per_posting": per_posting, "per_batch": per_batch, "one_client": alone})
}

fn report(phases: &[Phase], trips: &Value, trial: &Value, clients: usize, secs: u64) {
    let rate = |name: &str| {
        phases
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.per_sec)
    };
    let pgbench: Vec<f64> = phases
        .iter()
        .filter(|p| p.name.starts_with("pgbench"))
        .filter_map(|p| p.per_sec)
        .collect();
    let tps = (!pgbench.is_empty()).then(|| pgbench.iter().sum::<f64>() / pgbench.len() as f64);
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let single = rate("single_uniform");
    let shown = |value: Option<f64>, digits: usize| {
        value.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
    };
    println!();
    println!(
        "| PostgreSQL, {clients} clients, {secs} s a phase | per second | ÷ pgbench | statements per unit | statement time µs per unit | PostgreSQL CPU µs per unit | bench process CPU µs per unit |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for phase in phases {
        let per_sec = phase.per_sec;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            phase.label,
            shown(per_sec, 0),
            shown(ratio(per_sec, tps), 2),
            shown(phase.profile["statements_per_unit"].as_f64(), 1),
            shown(phase.profile["server_us_per_unit"].as_f64(), 0),
            shown(phase.profile["server_cpu_us_per_unit"].as_f64(), 0),
            shown(phase.profile["client_cpu_us_per_unit"].as_f64(), 0),
        );
    }
    let hot_over_uniform = ratio(rate("single_hot"), single);
    let batch_hot_over_uniform = ratio(rate("batch_hot"), rate("batch_uniform"));
    println!();
    println!("| ratio | value |");
    println!("|---|---:|");
    println!(
        "| single postings ÷ pgbench tpcb-like (goal ≥ 1.0) | {} |",
        shown(ratio(single, tps), 2)
    );
    println!(
        "| single hot ÷ uniform (goal ≥ 0.5) | {} |",
        shown(hot_over_uniform, 2)
    );
    println!(
        "| batch journals ÷ pgbench | {} |",
        shown(ratio(rate("batch_uniform"), tps), 2)
    );
    println!(
        "| batch hot ÷ uniform | {} |",
        shown(batch_hot_over_uniform, 2)
    );
    println!(
        "| round trips per single posting (1 client, counted by a relay) | {} |",
        shown(trips["per_posting"].as_f64(), 1)
    );
    println!(
        "| round trips per batch of {BATCH} | {} |",
        shown(trips["per_batch"].as_f64(), 1)
    );
    let alone = &trips["one_client"];
    println!(
        "| server µs per single posting, 1 client (no lock waits); of which planning | {} ; {} |",
        shown(alone["server_us_per_unit"].as_f64(), 0),
        shown(alone["planning_us_per_unit"].as_f64(), 0)
    );
    let uniform = phases.iter().find(|p| p.name == "single_uniform");
    print_top(
        "a single posting, 1 client (no lock waits)",
        &trips["one_client"],
    );
    print_top(
        &format!("a single posting, uniform accounts, {clients} clients (lock waits included)"),
        uniform.map_or(&Value::Null, |p| &p.profile),
    );
    println!(
        "ledger: trial balance after the run: balanced={} EUR debits={}",
        trial["balanced"], trial["currencies"][0]["debit_total"]
    );
    let profile = |name: &str| {
        phases
            .iter()
            .find(|p| p.name == name)
            .map_or(&Value::Null, |p| &p.profile)
    };
    let (single_profile, pgbench_profile) = (profile("single_uniform"), profile("pgbench_before"));
    let report = json!({
        "clients": clients,
        "seconds": secs,
        "batch_size": BATCH,
        "pgbench_tps": tps,
        "pgbench_tps_before": rate("pgbench_before"),
        "pgbench_tps_again": rate("pgbench_after"),
        "ledger_postings_per_sec": single,
        "ratio": ratio(single, tps),
        "ledger_hot_postings_per_sec": rate("single_hot"),
        "hot_over_uniform": hot_over_uniform,
        "ledger_batch_journals_per_sec": rate("batch_uniform"),
        "batch_over_pgbench": ratio(rate("batch_uniform"), tps),
        "ledger_batch_hot_journals_per_sec": rate("batch_hot"),
        "batch_hot_over_uniform": batch_hot_over_uniform,
        "round_trips_per_posting": trips["per_posting"],
        "round_trips_per_batch": trips["per_batch"],
        "server_us_per_posting_one_client": trips["one_client"]["server_us_per_unit"],
        "planning_us_per_posting_one_client": trips["one_client"]["planning_us_per_unit"],
        "statements_per_posting": single_profile["statements_per_unit"],
        "server_us_per_posting": single_profile["server_us_per_unit"],
        "bench_cpu_us_per_posting": single_profile["client_cpu_us_per_unit"],
        "postgres_cpu_us_per_posting": single_profile["server_cpu_us_per_unit"],
        "pgbench_postgres_cpu_us_per_transaction": pgbench_profile["server_cpu_us_per_unit"],
        "pgbench_statements_per_transaction": pgbench_profile["statements_per_unit"],
        "pgbench_server_us_per_transaction": pgbench_profile["server_us_per_unit"],
        "balanced": trial["balanced"],
        "phases": phases.iter().map(Phase::to_json).collect::<Vec<_>>(),
    });
    // `switchyard bench` names its output directory; run alone, the workspace's target/bench.
    let out = std::env::var_os("SWITCHYARD_BENCH_OUT").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join("ledger.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    println!("figures: {}", path.display());
}

/// The statements that took most of the server's time per unit.
fn print_top(what: &str, profile: &Value) {
    let Some(top) = profile["top"].as_array() else {
        return;
    };
    println!();
    println!("Where the server's time for {what} goes, by statement:");
    println!("| calls per unit | server µs per unit | statement |");
    println!("|---:|---:|---|");
    for row in top {
        println!(
            "| {:.1} | {:.0} | `{}` |",
            row["calls_per_unit"].as_f64().unwrap_or_default(),
            row["server_us_per_unit"].as_f64().unwrap_or_default(),
            row["query"].as_str().unwrap_or_default()
        );
    }
}
