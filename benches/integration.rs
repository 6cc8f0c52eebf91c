//! The integration domain's throughput (issue 21), two figures:
//! - A, mapping alone: records/s of a 10-field mapping of Shopify-like orders on one thread,
//!   with the plain-path fast path, without it, and with jq functions (`mapping`);
//! - B, a full sync of `SWITCHYARD_BENCH_SYNC_RECORDS` (default 100,000) orders from the fake
//!   Shopify on this machine, beside a bare paged fetch of the same pages in the same run: the
//!   ratio sync / fetch is the share of the source's own speed the sync keeps (goal ≥ 0.5).
//!
//! `SWITCHYARD_BENCH_SECS` seconds per mapping (default 3). The figures go to stdout and
//! `target/bench/integration.json` (or `$SWITCHYARD_BENCH_OUT/integration.json`);
//! `switchyard bench --scenarios integration` runs this and draws `integration.svg`.

// The order's `json!` literal (integration/orders.rs) nests deeper than the default 128.
#![recursion_limit = "256"]

#[path = "integration/fetch.rs"]
mod fetch;
#[path = "integration/mapping.rs"]
mod mapping;
#[path = "integration/orders.rs"]
mod orders;
#[path = "integration/sync.rs"]
mod sync;

use serde_json::{Value, json};
use switchyard_integration_fakes::shopify::{FakeShopify, Options};

/// The goals of issue 21.
const MAPPING_GOAL_PER_SEC: f64 = 500_000.0;
const SYNC_GOAL_RATIO: f64 = 0.5;

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Bench B: the fake shop with `records` orders; a bare fetch, the sync, a bare fetch again
/// (the ratio is to the mean of the two: on a shared machine the load drifts).
async fn sync(records: usize) -> Value {
    let shop = FakeShopify::start(Options::unlimited()).await;
    eprintln!("bench integration: seeding the fake Shopify with {records} orders");
    shop.add("orders", records);
    let token = shop.options().access_token;
    // Once unmeasured, so the measured reads find the server warm.
    fetch::orders(&shop.base_url(), &token).await;
    let mut bare = Vec::new();
    let mut synced = None;
    for step in ["bare fetch", "sync", "bare fetch"] {
        if step == "sync" {
            let run = sync::orders(&shop.base_url(), &token).await;
            eprintln!(
                "bench integration: sync: {} records in {} pages, {:.2} s, {:.0} records/s, {} rows in the destination",
                run.records,
                run.pages,
                run.secs,
                run.per_sec(),
                run.rows
            );
            synced = Some(run);
            continue;
        }
        let fetched = fetch::orders(&shop.base_url(), &token).await;
        eprintln!(
            "bench integration: bare fetch: {} records in {} pages, {:.2} s, {:.0} records/s",
            fetched.records,
            fetched.pages,
            fetched.secs,
            fetched.per_sec()
        );
        bare.push(fetched);
    }
    let synced = synced.expect("the sync step ran");
    let bare_per_sec = bare.iter().map(fetch::Fetched::per_sec).sum::<f64>() / bare.len() as f64;
    json!({
        "records": records,
        "bare_fetch": bare.iter().map(fetch::Fetched::to_json).collect::<Vec<_>>(),
        "bare_fetch_per_sec": bare_per_sec,
        "sync": synced.to_json(),
        "ratio": synced.per_sec() / bare_per_sec,
        "goal_ratio": SYNC_GOAL_RATIO,
    })
}

fn main() {
    let secs = env_number("SWITCHYARD_BENCH_SECS", 3u64);
    let records = env_number("SWITCHYARD_BENCH_SYNC_RECORDS", 100_000usize);
    let variants = mapping::bench(secs);
    let tokio = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let sync = tokio.block_on(sync(records));
    let mut report = json!({
        "mapping": {
            "variants": variants.iter().map(mapping::Variant::to_json).collect::<Vec<_>>(),
            "goal_per_sec": MAPPING_GOAL_PER_SEC,
            "fields": 10,
            "threads": 1,
        },
    });
    // The summary figures at the top, for `switchyard bench`'s table; the details beside.
    for variant in &variants {
        report[format!("mapping_{}_per_sec", variant.name)] = json!(variant.per_sec());
    }
    for key in ["bare_fetch_per_sec", "ratio"] {
        report[format!("sync_{key}")] = sync[key].clone();
    }
    report["sync_per_sec"] = sync["sync"]["per_sec"].clone();
    report["sync"] = sync;
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    let out = std::env::var("SWITCHYARD_BENCH_OUT").unwrap_or_else(|_| "target/bench".into());
    std::fs::create_dir_all(&out).expect("the output directory");
    let path = std::path::Path::new(&out).join("integration.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report).expect("JSON"))
        .expect("write integration.json");
    eprintln!("bench integration: {}", path.display());
}
