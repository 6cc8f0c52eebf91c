//! Hole 4 of issue 17: one tenant must not exhaust the process. A hostile tenant admin floods
//! `cache/memory`, runs SQLite queries that never end or allocate a gigabyte, and asks for
//! more connections and longer statements than the operator allows; `serve` must refuse each
//! with a stable code, keep its memory and CPU bounded, and keep the other tenant's data.
//! Point 8's cache health leak is here too: health tells a tenant nothing about the others.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, Server, tenant_with_key, write_config};

const MIB: usize = 1024 * 1024;

/// The resident set of the process, from `/proc/<pid>/status`, in bytes.
fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

/// User plus system CPU time the process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after it are plain numbers. utime and stime
    // are fields 14 and 15, i.e. the 12th and 13th after the name's closing parenthesis.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / per_second)
}

/// CPU the process burns over `window`, starting now.
fn cpu_used_over(pid: u32, window: Duration) -> Duration {
    let before = cpu_time(pid);
    std::thread::sleep(window);
    cpu_time(pid).saturating_sub(before)
}

async fn configure(api: &Api, provider: &str, config: Value) -> (StatusCode, Value) {
    api.post(
        &format!("/providers/{provider}/configure"),
        json!({"config": config}),
    )
    .await
}

async fn call(api: &Api, provider: &str, action: &str, params: Value) -> (StatusCode, Value) {
    api.post(
        &format!("/providers/{provider}/{action}"),
        json!({"params": params}),
    )
    .await
}

fn assert_refused(answer: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(answer.0.as_u16(), status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}

fn serve_with_quotas(dir: &Path, quotas: &str) -> Server {
    let config = write_config(dir, &format!("[tenancy.quotas]\n{quotas}\n"));
    Server::start_with(dir, &["--config", &config])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_flood_is_refused_past_the_tenants_quota_with_rss_bounded_and_the_neighbour_intact()
{
    let dir = tempfile::tempdir().unwrap();
    // The operator allows values of up to 32 MiB and 100 MiB per tenant.
    let server = serve_with_quotas(
        dir.path(),
        "cache_bytes_per_tenant = 104857600\ncache_max_value_bytes = 33554432",
    );
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let hostile = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));

    globex
        .ok(
            "cache/memory",
            "set",
            json!({"key": "ledger-lock", "value": "globex's"}),
        )
        .await;
    // The tenant may narrow the operator's largest value, not widen it.
    assert_refused(
        &configure(
            &hostile,
            "cache/memory",
            json!({"max_value_bytes": 64 * MIB}),
        )
        .await,
        400,
        "config_invalid",
    );
    let (status, body) = configure(
        &hostile,
        "cache/memory",
        json!({"max_value_bytes": 25 * MIB}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let pid = server.pid();
    let before = rss_bytes(pid);
    let value = "x".repeat(24 * MIB);
    let (mut stored, mut refused) = (0, 0);
    let mut after_eight = 0;
    for i in 0..40 {
        if i == 8 {
            after_eight = rss_bytes(pid);
        }
        let answer = call(
            &hostile,
            "cache/memory",
            "set",
            json!({"key": format!("flood-{i}"), "value": value}),
        )
        .await;
        if answer.0 == StatusCode::OK {
            stored += 1;
        } else {
            assert_refused(&answer, 429, "quota_exceeded");
            refused += 1;
        }
    }
    let after_forty = rss_bytes(pid);
    let grown = after_forty.saturating_sub(before);
    let refusals_grew = after_forty.saturating_sub(after_eight);
    eprintln!(
        "cache flood: {stored} stored, {refused} refused, serve's RSS grew by {} MiB \
         ({} MiB over the last 32 requests)",
        grown / MIB,
        refusals_grew / MIB
    );
    // Four 24 MiB values fit in 100 MiB; every later one is refused.
    assert_eq!((stored, refused), (4, 36));
    // The quota's 100 MiB plus what serving 24 MiB requests takes (the body, its parse, the
    // free lists the allocator keeps per thread), and refused requests add next to nothing:
    // the old code grew by about 1 GiB here, 24 MiB per request, 768 MiB over the last 32.
    assert!(
        grown < 400 * MIB,
        "serve grew by {} MiB for a 100 MiB quota",
        grown / MIB
    );
    assert!(
        refusals_grew < 96 * MIB,
        "32 refused writes grew serve by {} MiB",
        refusals_grew / MIB
    );

    // A value above the tenant's own narrowed limit is too large, not over quota.
    let big = "x".repeat(26 * MIB);
    assert_refused(
        &call(
            &hostile,
            "cache/memory",
            "set",
            json!({"key": "big", "value": big}),
        )
        .await,
        413,
        "payload_too_large",
    );
    // Nothing of the neighbour was evicted to make room, and deleting frees the quota.
    let read = globex
        .ok("cache/memory", "get", json!({"key": "ledger-lock"}))
        .await;
    assert_eq!(read["value"], "globex's");
    hostile
        .ok("cache/memory", "delete", json!({"key": "flood-0"}))
        .await;
    hostile
        .ok(
            "cache/memory",
            "set",
            json!({"key": "flood-again", "value": value}),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_health_shows_no_other_tenants_figures() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    // What acme's instance says of itself (the rest, such as latency, is the runtime's).
    let health = || async {
        let (status, health) = acme.get("/providers/cache/memory/health").await;
        assert_eq!(status, StatusCode::OK, "{health}");
        health["dependencies"].clone()
    };
    let before = health().await;
    let entries: Vec<Value> = (0..600)
        .map(|i| json!({"key": format!("k{i}"), "value": i}))
        .collect();
    globex
        .ok("cache/memory", "mset", json!({"entries": entries}))
        .await;
    // Give a lazily counting cache time to catch up before asking again.
    std::thread::sleep(Duration::from_secs(1));
    globex.ok("cache/memory", "get", json!({"key": "k0"})).await;
    // Whatever acme's health says, nothing in it moves when globex writes.
    assert_eq!(health().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_sqlite_query_stops_using_cpu_within_a_second_of_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // The call's own timeout fires first here: the query must stop when it does.
    let server = Server::start_with(dir.path(), &["--call-timeout-ms", "2000"]);
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let pid = server.pid();
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) AS n FROM c";

    let started = Instant::now();
    let answer = call(&api, "db/sqlite", "query", json!({"sql": endless})).await;
    assert_refused(&answer, 504, "timeout");
    assert!(started.elapsed() < Duration::from_secs(5), "{answer:?}");
    std::thread::sleep(Duration::from_secs(1));
    let burnt = cpu_used_over(pid, Duration::from_secs(2));
    eprintln!("runaway query, call timeout: serve used {burnt:?} of CPU in the 2 s after 1 s");
    assert!(
        burnt < Duration::from_millis(300),
        "serve used {burnt:?} of CPU in the 2 s after the call timed out"
    );

    // The tenant's own statement timeout, below the call's, stops it too.
    drop(server);
    let server = Server::start(dir.path());
    let api = Api::new(&server, api.key());
    let pid = server.pid();
    let (status, body) = configure(&api, "db/sqlite", json!({"statement_timeout_ms": 1000})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let started = Instant::now();
    let answer = call(&api, "db/sqlite", "query", json!({"sql": endless})).await;
    assert_refused(&answer, 504, "timeout");
    assert!(started.elapsed() < Duration::from_secs(3), "{answer:?}");
    std::thread::sleep(Duration::from_secs(1));
    let burnt = cpu_used_over(pid, Duration::from_secs(2));
    eprintln!("runaway query, statement timeout: serve used {burnt:?} of CPU in the 2 s after 1 s");
    assert!(
        burnt < Duration::from_millis(300),
        "serve used {burnt:?} of CPU in the 2 s after the statement timed out"
    );
    // The tenant's database still answers.
    let rows = api
        .ok("db/sqlite", "query", json!({"sql": "SELECT 1 AS one"}))
        .await;
    assert_eq!(rows["rows"][0]["one"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gigabyte_sqlite_value_is_refused_cleanly_and_serve_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let pid = server.pid();
    let before = rss_bytes(pid);
    for sql in [
        "SELECT length(randomblob(999999999)) AS n",
        "SELECT length(zeroblob(999999999)) AS n",
    ] {
        let answer = call(&api, "db/sqlite", "query", json!({"sql": sql})).await;
        assert_refused(&answer, 413, "payload_too_large");
    }
    assert!(
        rss_bytes(pid).saturating_sub(before) < 256 * MIB,
        "serve allocated the blob"
    );
    // A result larger than the operator's result bytes per call is refused, not sent.
    let wide = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 64) \
                SELECT hex(randomblob(1000000)) AS chunk FROM c";
    let answer = call(&api, "db/sqlite", "query", json!({"sql": wide})).await;
    assert_refused(&answer, 413, "payload_too_large");
    let (status, health) = api.get("/providers/db/sqlite/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "up", "{health}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_and_statement_timeouts_above_the_operators_ceiling_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_quotas(
        dir.path(),
        "db_max_connections = 2\ndb_statement_timeout_ms = 5000",
    );
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    for (config, pointer) in [
        (json!({"max_connections": 3}), "/max_connections"),
        (
            json!({"statement_timeout_ms": 5001}),
            "/statement_timeout_ms",
        ),
    ] {
        let answer = configure(&api, "db/sqlite", config.clone()).await;
        assert_refused(&answer, 400, "config_invalid");
        let pointers: Vec<&Value> = answer.1["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["pointer"])
            .collect();
        assert_eq!(pointers, [pointer], "{config}: {}", answer.1);
        // The served schema publishes the ceiling as the field's maximum (ADR 23).
        let (_, described) = api.get("/providers/db/sqlite").await;
        let ceiling = if pointer == "/max_connections" {
            2
        } else {
            5000
        };
        assert_eq!(
            described["config_schema"]["properties"][&pointer[1..]]["maximum"],
            ceiling,
            "{described}"
        );
    }
    let (status, body) = configure(
        &api,
        "db/sqlite",
        json!({"max_connections": 2, "statement_timeout_ms": 5000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
