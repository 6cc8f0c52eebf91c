//! Ledger postings per second on PostgreSQL, beside pgbench's tpcb-like TPS measured in the
//! same run on the same server, and their ratio.
//!
//! Both sides run `CLIENTS` concurrent clients for `SWITCHYARD_BENCH_SECS` seconds (default
//! 10): pgbench's transaction updates an account, a teller and a branch and appends a history
//! row; a ledger posting appends its event, writes the header, two entries and two balance
//! upserts — through the service, the runtime, the provider client and db/postgres.
//! `scripts/bench-ledger` starts the server and runs this; the figures also go to
//! `target/bench/ledger.json`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_contracts::TenantId;
use switchyard_ledger::{LedgerService, LedgerSettings};
use switchyard_provider_db::{PostgresFactory, PostgresSettings};
use switchyard_runtime::{PlatformStore, Registry, Runtime};
use switchyard_spi::CallContext;

const CLIENTS: usize = 8;

fn psql(url: &str, sql: &str) {
    let status = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql failed: {sql}");
}

fn with_database(url: &str, database: &str) -> String {
    let (server, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{server}/{database}")
}

fn fresh_database(admin: &str, name: &str) -> String {
    psql(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    psql(admin, &format!("CREATE DATABASE {name}"));
    with_database(admin, name)
}

fn pgbench_tps(url: &str, secs: u64) -> f64 {
    println!("pgbench: initialising (scale 8)…");
    let init = Command::new("pgbench")
        .args(["-i", "-s", "8", "-q", url])
        .output()
        .expect("pgbench runs");
    assert!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    println!("pgbench: tpcb-like, {CLIENTS} clients, {secs} s…");
    let run = Command::new("pgbench")
        .args([
            "-n",
            "-b",
            "tpcb-like",
            "-c",
            &CLIENTS.to_string(),
            "-j",
            "2",
        ])
        .args(["-T", &secs.to_string(), url])
        .output()
        .expect("pgbench runs");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no tps line in pgbench's output:\n{out}"))
}

async fn call(rt: &Arc<Runtime>, ctx: &CallContext, action: &str, params: Value) -> Value {
    rt.invoke_service(ctx, "ledger", action, params)
        .await
        .unwrap_or_else(|p| panic!("ledger/{action}: {} {}", p.code, p.detail))
}

async fn ledger_postings_per_sec(url: &str, secs: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    store.create_tenant(&tenant).await.unwrap();
    let mut registry = Registry::default();
    registry
        .register(Arc::new(PostgresFactory::new(PostgresSettings::new(
            url,
            "bench-app-password",
        ))))
        .unwrap();
    let ledger = LedgerService::new(LedgerSettings {
        db: "db/postgres".into(),
        bus: None,
    })
    .unwrap();
    let rt = Arc::new(
        Runtime::new(registry, store, Default::default(), Default::default())
            .with_services(vec![Arc::new(ledger)])
            .unwrap(),
    );
    let ctx = CallContext {
        tenant: tenant.clone(),
        request_id: "bench".into(),
        subject: Some("bench".into()),
        service: None,
    };
    for client in 0..CLIENTS {
        for (code, kind) in [
            (format!("cash-{client}"), "asset"),
            (format!("sales-{client}"), "income"),
        ] {
            call(
                &rt,
                &ctx,
                "create_account",
                json!({"code": code, "name": code, "type": kind, "currency": "EUR"}),
            )
            .await;
        }
    }
    println!("ledger: 2-line journals, {CLIENTS} clients, {secs} s…");
    let posted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut posters = Vec::new();
    for client in 0..CLIENTS {
        let (rt, ctx, posted) = (rt.clone(), ctx.clone(), posted.clone());
        posters.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                call(&rt, &ctx, "post_journal", json!({
                    "journal_id": format!("j-{client}-{n}"),
                    "posting_time": "2026-01-15T10:00:00Z",
                    "lines": [
                        {"account": format!("cash-{client}"), "debit": "10.00", "currency": "EUR"},
                        {"account": format!("sales-{client}"), "credit": "10.00", "currency": "EUR"},
                    ],
                })).await;
                n += 1;
                posted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for poster in posters {
        poster.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let trial = call(&rt, &ctx, "trial_balance", json!({})).await;
    println!(
        "ledger: trial balance after the run: balanced={} EUR debits={}",
        trial["balanced"], trial["currencies"][0]["debit_total"]
    );
    posted.load(Ordering::Relaxed) as f64 / elapsed
}

fn main() {
    let admin = std::env::var("SWITCHYARD_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("SWITCHYARD_TEST_POSTGRES_URL"))
        .expect("set SWITCHYARD_BENCH_POSTGRES_URL (a superuser URL), or run scripts/bench-ledger");
    let secs: u64 = std::env::var("SWITCHYARD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let tps = pgbench_tps(&fresh_database(&admin, "sy_bench_pgbench"), secs);
    let ledger_url = fresh_database(&admin, "sy_bench_ledger");
    let postings = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(ledger_postings_per_sec(&ledger_url, secs));
    let ratio = postings / tps;
    println!();
    println!("| measure (PostgreSQL, {CLIENTS} clients, {secs} s) | per second |");
    println!("|---|---|");
    println!("| pgbench tpcb-like transactions | {tps:.0} |");
    println!("| ledger postings (2-line journals) | {postings:.0} |");
    println!("| ratio ledger / pgbench | {ratio:.2} |");
    // `switchyard bench` names its output directory; run alone, the workspace's target/bench.
    let out = std::env::var_os("SWITCHYARD_BENCH_OUT").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&out).unwrap();
    let report = json!({"clients": CLIENTS, "seconds": secs, "pgbench_tps": tps, "ledger_postings_per_sec": postings, "ratio": ratio});
    std::fs::write(
        out.join("ledger.json"),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
    for db in ["sy_bench_pgbench", "sy_bench_ledger"] {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
    }
}
