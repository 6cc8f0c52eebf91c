//! Backward and forward trace latency on a generated genealogy of 1,000,000 lots, depth up to
//! 30, on PostgreSQL (pooled tenancy, row-level security on), through the runtime's
//! in-process client exactly as `switchyard serve` runs the service.
//!
//! ```text
//! SWITCHYARD_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p switchyard-inventory --bench trace
//! ```
//!
//! The URL (`SWITCHYARD_BENCH_POSTGRES_URL`, else `SWITCHYARD_TEST_POSTGRES_URL`) must be a
//! superuser's: the bench creates a database of its own and drops it at the end. The
//! genealogy is generated inside PostgreSQL by `INSERT … SELECT … FROM generate_series`
//! statements sent through the db provider's `execute`, into the tables the service created.
//!
//! Shape: 10,000 trees of 100 lots. In each, lots 0..=30 form a spine (lot k split from lot
//! k-1, so lot 30 is 30 splits deep) and lots 31..=99 hang off spine lots 0..=29 — 30 split
//! transformations per tree, 1,290,000 genealogy edges in all. Backward traces start at spine
//! ends (31 lots, depth 30); forward traces at roots (the whole tree: 100 lots, depth 30).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use switchyard_client::{ProviderClient, Service};
use switchyard_contracts::TenantId;
use switchyard_inventory::{InventoryService, InventorySettings};
use switchyard_provider_db::{PostgresFactory, PostgresSettings};
use switchyard_runtime::{PlatformStore, Registry, ResilienceConfig, Runtime, RuntimeClient};

const TREES: i64 = 10_000;
const LOTS_PER_TREE: i64 = 100;
const SPINE: i64 = 30;
/// Trees generated per statement: 100,000 lots, well inside one statement timeout.
const TREES_PER_STATEMENT: i64 = 1_000;
const SAMPLES: usize = 300;
const WARMUP: usize = 30;
const DB: &str = "db/postgres";
/// The runtime role's password. Roles are server-wide, so this is the tests' password: a bench
/// run on the test server must not lock out tests running beside it.
const APP_PASSWORD: &str = "switchyard-test";

fn server_url() -> String {
    std::env::var("SWITCHYARD_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("SWITCHYARD_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| {
            panic!(
                "set SWITCHYARD_BENCH_POSTGRES_URL (or SWITCHYARD_TEST_POSTGRES_URL) to a \
                 PostgreSQL 15+ superuser URL such as postgres://postgres@127.0.0.1:5432/postgres"
            )
        })
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..]
        .find('/')
        .map_or(url.len(), |i| authority + i);
    let query = url[path..].find('?').map_or("", |i| &url[path + i..]);
    format!("{}/{database}{query}", &url[..path])
}

/// The lot code of lot number `n` (1-based), in SQL and in Rust alike.
fn lot(n: i64) -> String {
    format!("B{n:07}")
}

const LOT_SQL: &str = "'B' || lpad(n::text, 7, '0')";

fn progress(phase: &str, started: Instant) {
    println!("[{:>7.1}s] {phase}", started.elapsed().as_secs_f64());
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A small deterministic generator, so runs sample the same lots.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as i64
    }
}

async fn execute(client: &RuntimeClient, sql: &str, params: Vec<Value>) -> u64 {
    let answer = client
        .invoke(DB, "execute", json!({"sql": sql, "params": params}))
        .await
        .unwrap_or_else(|p| panic!("{sql}: {p:?}"));
    answer["rows_affected"].as_u64().unwrap()
}

async fn generate(client: &RuntimeClient, started: Instant) {
    // Number of the parent of lot n (1-based) within its tree.
    let parent = format!(
        "((n - 1) / {LOTS_PER_TREE}) * {LOTS_PER_TREE} + 1 + CASE
            WHEN (n - 1) % {LOTS_PER_TREE} <= {SPINE} THEN (n - 1) % {LOTS_PER_TREE} - 1
            ELSE ((n - 1) % {LOTS_PER_TREE}) * 7 % {SPINE} END"
    );
    let phases: [(&str, String); 4] = [
        (
            "lots",
            format!(
                "INSERT INTO inv_lot (lot, item, quantity, origin, warehouse, bin, created_at, event_id)
                 SELECT {LOT_SQL}, 'BENCH', 1000000,
                        CASE WHEN (n - 1) % {LOTS_PER_TREE} = 0 THEN 'received' ELSE 'split' END,
                        'W', 'B1', '2025-01-01T00:00:00.000000Z', 'bench'
                 FROM generate_series($1::bigint * {LOTS_PER_TREE} + 1,
                                      ($2::bigint + 1) * {LOTS_PER_TREE}) AS n"
            ),
        ),
        (
            "split transformations",
            format!(
                "INSERT INTO inv_transformation (id, kind, occurred_at)
                 SELECT 'T' || lpad((t * {LOTS_PER_TREE} + p + 1)::text, 7, '0'), 'split',
                        '2025-01-01T00:00:00.000000Z'
                 FROM generate_series($1::bigint, $2::bigint) AS t,
                      generate_series(0, {SPINE} - 1) AS p"
            ),
        ),
        (
            "input edges",
            format!(
                "INSERT INTO lot_edge (transformation_id, direction, lot, quantity)
                 SELECT 'T' || lpad(n::text, 7, '0'), 'in', {LOT_SQL}, 1000000
                 FROM generate_series($1::bigint, $2::bigint) AS t,
                      generate_series(0, {SPINE} - 1) AS p,
                      LATERAL (SELECT t * {LOTS_PER_TREE} + p + 1 AS n) AS x"
            ),
        ),
        (
            "output edges",
            format!(
                "INSERT INTO lot_edge (transformation_id, direction, lot, quantity)
                 SELECT 'T' || lpad(({parent})::text, 7, '0'), 'out', {LOT_SQL}, 1000000
                 FROM generate_series($1::bigint * {LOTS_PER_TREE} + 1,
                                      ($2::bigint + 1) * {LOTS_PER_TREE}) AS n
                 WHERE (n - 1) % {LOTS_PER_TREE} <> 0"
            ),
        ),
    ];
    for (name, sql) in &phases {
        let mut rows = 0;
        for first in (0..TREES).step_by(TREES_PER_STATEMENT as usize) {
            let last = (first + TREES_PER_STATEMENT).min(TREES) - 1;
            rows += execute(client, sql, vec![json!(first), json!(last)]).await;
        }
        progress(&format!("generated {rows} {name}"), started);
    }
}

async fn measure(
    service: &InventoryService,
    client: &RuntimeClient,
    action: &str,
    lots: &[String],
) -> (Vec<Duration>, Value) {
    let mut times = Vec::with_capacity(lots.len());
    let mut last = Value::Null;
    for (i, lot) in lots.iter().enumerate() {
        let started = Instant::now();
        let answer = service
            .invoke(client, action, json!({"lot": lot}))
            .await
            .unwrap_or_else(|p| panic!("{action} {lot}: {p:?}"));
        if i >= WARMUP {
            times.push(started.elapsed());
        }
        last = answer;
    }
    times.sort();
    (times, last)
}

/// Prints one trace figure and returns it for the JSON report.
fn report(action: &str, times: &[Duration], sample: &Value) -> Value {
    println!(
        "{action:<15} {} traces of {} lots, depth {}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        sample["lots"],
        sample["depth"],
        percentile(times, 0.50).as_secs_f64() * 1e3,
        percentile(times, 0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    json!({
        "lots": sample["lots"],
        "depth": sample["depth"],
        "p50_ms": percentile(times, 0.50).as_secs_f64() * 1e3,
        "p99_ms": percentile(times, 0.99).as_secs_f64() * 1e3,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let server = server_url();
    let database = format!("sy_bench_trace_{}", std::process::id());
    let mut admin = PgConnection::connect(&server)
        .await
        .expect("connect to the PostgreSQL server");
    admin
        .execute(format!("CREATE DATABASE \"{database}\"").as_str())
        .await
        .expect("create the bench database");
    progress(&format!("created database {database}"), started);

    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    store.create_tenant(&tenant).await.unwrap();
    let mut registry = Registry::default();
    registry
        .register(Arc::new(PostgresFactory::new(PostgresSettings::new(
            with_database(&server, &database),
            APP_PASSWORD,
        ))))
        .unwrap();
    let resilience = ResilienceConfig {
        call_timeout: Duration::from_secs(600),
        ..ResilienceConfig::default()
    };
    let runtime = Arc::new(Runtime::new(
        registry,
        store,
        resilience,
        Default::default(),
    ));
    runtime
        .configure(
            &tenant,
            "db",
            "postgres",
            json!({"config": {"statement_timeout_ms": 600000}}),
        )
        .await
        .expect("configure the tenant's statement timeout");
    let client = RuntimeClient::new(runtime.clone(), tenant, "service:inventory");
    let service = InventoryService::new(InventorySettings {
        db: DB.into(),
        bus: None,
    })
    .unwrap();
    service
        .invoke(
            &client,
            "define_item",
            json!({"item": "BENCH", "name": "Bench paper", "uom": "ST"}),
        )
        .await
        .unwrap();
    progress(
        "tenant provisioned (pooled, row-level security), inventory tables created",
        started,
    );

    generate(&client, started).await;
    // A tenant cannot ANALYZE tables it does not own; the platform (as admin) can, and
    // would after a bulk load like this one.
    let mut bench_admin = PgConnection::connect(&with_database(&server, &database))
        .await
        .expect("connect to the bench database");
    bench_admin
        .execute("ANALYZE")
        .await
        .expect("analyze the bench database");
    bench_admin.close().await.ok();
    progress("analyzed", started);

    // What any provider call costs here (a pooled transaction with its tenant settings), so
    // the trace figures below can be read as round trip + walk.
    let mut round_trips = Vec::new();
    for i in 0..WARMUP + SAMPLES {
        let begun = Instant::now();
        client
            .invoke(DB, "query", json!({"sql": "SELECT 1 AS one"}))
            .await
            .expect("a trivial query");
        if i >= WARMUP {
            round_trips.push(begun.elapsed());
        }
    }
    round_trips.sort();
    println!(
        "{:<15} {} queries of SELECT 1: p50 {:.2} ms, p99 {:.2} ms",
        "round trip",
        round_trips.len(),
        percentile(&round_trips, 0.50).as_secs_f64() * 1e3,
        percentile(&round_trips, 0.99).as_secs_f64() * 1e3,
    );

    let mut pick = Lcg(0x5eed);
    let ends: Vec<String> = (0..WARMUP + SAMPLES)
        .map(|_| lot(pick.below(TREES) * LOTS_PER_TREE + SPINE + 1))
        .collect();
    let roots: Vec<String> = (0..WARMUP + SAMPLES)
        .map(|_| lot(pick.below(TREES) * LOTS_PER_TREE + 1))
        .collect();
    let (backward, sample) = measure(&service, &client, "backward_trace", &ends).await;
    assert_eq!(sample["depth"], SPINE, "a spine end is {SPINE} splits deep");
    progress("backward traces done", started);
    let backward = report("backward_trace", &backward, &sample);
    let (forward, sample) = measure(&service, &client, "forward_trace", &roots).await;
    assert_eq!(
        sample["lots"], LOTS_PER_TREE,
        "a forward trace from a root is its tree"
    );
    progress("forward traces done", started);
    let forward = report("forward_trace", &forward, &sample);
    // `switchyard bench` names its output directory; run alone, the workspace's target/bench.
    let out = std::env::var_os("SWITCHYARD_BENCH_OUT").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&out).expect("create the output directory");
    let figures = json!({
        "lots": TREES * LOTS_PER_TREE,
        "backward p50/p99 ms": format!("{:.2} / {:.2}", backward["p50_ms"].as_f64().unwrap_or_default(), backward["p99_ms"].as_f64().unwrap_or_default()),
        "forward p50/p99 ms": format!("{:.2} / {:.2}", forward["p50_ms"].as_f64().unwrap_or_default(), forward["p99_ms"].as_f64().unwrap_or_default()),
        "backward_trace": backward,
        "forward_trace": forward,
    });
    std::fs::write(
        out.join("trace.json"),
        serde_json::to_vec_pretty(&figures).expect("JSON"),
    )
    .expect("write trace.json");

    drop(client);
    drop(runtime);
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)").as_str())
        .await
        .expect("drop the bench database");
    progress(&format!("dropped database {database}"), started);
}
