//! Behaviour specific to `cache/redis` (its key layout in Redis, glob-safe prefixes, TTL on
//! `incr`, an unreachable server); the contract every engine shares is checked by the
//! conformance suite.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde_json::json;
use switchyard_provider_cache::RedisCacheFactory;
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, HealthStatus};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The Redis these tests run against; without one they fail rather than pass untested.
fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").expect(
        "SWITCHYARD_TEST_REDIS_URL is not set: run the tests with scripts/test (it starts Redis \
         and sets it) or set it to a Redis 7 URL",
    )
}

/// A string no other test of this or any concurrent run produces.
fn unique(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{nanos}-{n}", std::process::id())
}

/// An engine under a namespace of its own, and that namespace.
fn engine() -> (Harness, String) {
    let namespace = unique("sytest");
    let factory = RedisCacheFactory::with_namespace(redis_url(), namespace.clone());
    (Harness::new(Arc::new(factory)), namespace)
}

/// A direct connection, to look at what the engine left in Redis.
async fn raw() -> MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("valid redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable")
}

/// Every key in Redis that starts with `prefix`.
async fn keys_under(prefix: &str) -> BTreeSet<String> {
    let mut connection = raw().await;
    let mut iter = connection
        .scan_match::<_, String>(format!("{prefix}*"))
        .await
        .expect("scan");
    let mut keys = BTreeSet::new();
    while let Some(key) = iter.next_item().await {
        keys.insert(key);
    }
    keys
}

async fn pttl(key: &str) -> i64 {
    raw().await.pttl(key).await.expect("pttl")
}

async fn found(t: &TenantInstance, key: &str) -> bool {
    t.ok("get", json!({"key": key})).await["found"] == true
}

#[test]
fn descriptor_serves_the_cache_contract_with_shared_state() {
    let factory = RedisCacheFactory::new(redis_url());
    let harness = Harness::new(Arc::new(factory));
    let descriptor = harness.factory.descriptor();
    assert_eq!(
        (descriptor.domain.as_str(), descriptor.name.as_str()),
        ("cache", "redis")
    );
    for capability in ["ttl", "atomic_incr", "shared"] {
        assert!(harness.has_capability(capability), "{capability}");
    }
}

#[tokio::test]
async fn keys_live_under_the_tenant_namespace_as_json_text() {
    let (h, ns) = engine();
    let acme = h.tenant("acme").await;
    let globex = h.tenant("globex").await;
    acme.ok("set", json!({"key": "k", "value": {"who": "acme"}}))
        .await;
    globex
        .ok("set", json!({"key": "k", "value": "globex"}))
        .await;

    let expected: BTreeSet<String> = [format!("{ns}:{{acme}}:k"), format!("{ns}:{{globex}}:k")]
        .into_iter()
        .collect();
    assert_eq!(keys_under(&format!("{ns}:")).await, expected);
    let stored: String = raw()
        .await
        .get(format!("{ns}:{{acme}}:k"))
        .await
        .expect("get");
    assert_eq!(stored, r#"{"who":"acme"}"#);
}

#[tokio::test]
async fn production_keys_live_under_sy() {
    let h = Harness::new(Arc::new(RedisCacheFactory::new(redis_url())));
    let tenant = unique("t");
    let t = h.tenant(&tenant).await;
    t.ok("set", json!({"key": "k", "value": 1})).await;
    let expected: BTreeSet<String> = [format!("sy:{{{tenant}}}:k")].into_iter().collect();
    assert_eq!(keys_under(&format!("sy:{{{tenant}}}:")).await, expected);
    t.ok("delete", json!({"key": "k"})).await;
}

#[tokio::test]
async fn delete_prefix_treats_glob_characters_literally() {
    let (h, _) = engine();
    let t = h.tenant("acme").await;
    let keys = [
        "a*", "a*b", "ab", "a", "x[1]", "x1", "q?z", "qaz", r"b\c", "bc", "r]", "r",
    ];
    for key in keys {
        t.ok("set", json!({"key": key, "value": key})).await;
    }
    for (prefix, deleted) in [("a*", 2), ("x[", 1), ("q?", 1), (r"b\", 1), ("r]", 1)] {
        assert_eq!(
            t.ok("delete_prefix", json!({"prefix": prefix})).await,
            json!({"deleted": deleted}),
            "prefix {prefix}"
        );
    }
    for key in ["ab", "a", "x1", "qaz", "bc", "r"] {
        assert!(found(&t, key).await, "{key} survived");
    }
    for key in ["a*", "a*b", "x[1]", "q?z", r"b\c", "r]"] {
        assert!(!found(&t, key).await, "{key} deleted");
    }
}

#[tokio::test]
async fn a_wildcard_prefix_never_reaches_another_tenant() {
    let (h, ns) = engine();
    let acme = h.tenant("acme").await;
    let globex = h.tenant("globex").await;
    globex.ok("set", json!({"key": "k", "value": 1})).await;
    acme.ok("set", json!({"key": "k", "value": 1})).await;
    for prefix in ["*", "?", "[a-z]", "}:*", "\\"] {
        assert_eq!(
            acme.ok("delete_prefix", json!({"prefix": prefix})).await["deleted"],
            0,
            "prefix {prefix}"
        );
    }
    assert_eq!(keys_under(&format!("{ns}:")).await.len(), 2);
}

#[tokio::test]
async fn incr_applies_the_default_ttl_on_creation_only() {
    let (h, ns) = engine();
    let t = h
        .tenant_with_config("acme", json!({"default_ttl_ms": 60000}))
        .await;
    let key = format!("{ns}:{{acme}}:n");

    t.ok("incr", json!({"key": "n"})).await;
    let created = pttl(&key).await;
    assert!((50_000..=60_000).contains(&created), "pttl {created}");

    // Stand in for time passing: a later incr must keep this deadline, not restart the default.
    let _: bool = raw().await.pexpire(&key, 5000).await.expect("pexpire");
    assert_eq!(t.ok("incr", json!({"key": "n"})).await["value"], 2);
    let kept = pttl(&key).await;
    assert!((1..=5000).contains(&kept), "pttl {kept}");

    // An explicit ttl_ms is the caller's choice and applies to an existing key too.
    t.ok("incr", json!({"key": "n", "ttl_ms": 120000})).await;
    let explicit = pttl(&key).await;
    assert!((60_001..=120_000).contains(&explicit), "pttl {explicit}");
}

#[tokio::test]
async fn incr_keeps_a_key_without_ttl_persistent() {
    let (h, ns) = engine();
    let t = h.tenant("acme").await;
    t.ok("set", json!({"key": "n", "value": 7})).await;
    assert_eq!(t.ok("incr", json!({"key": "n"})).await["value"], 8);
    assert_eq!(pttl(&format!("{ns}:{{acme}}:n")).await, -1);

    t.ok("incr", json!({"key": "fresh", "ttl_ms": 30000})).await;
    let fresh = pttl(&format!("{ns}:{{acme}}:fresh")).await;
    assert!((20_000..=30_000).contains(&fresh), "pttl {fresh}");
}

#[tokio::test]
async fn incr_is_exact_beyond_double_precision() {
    let (h, _) = engine();
    let t = h.tenant("acme").await;
    let big = i64::MAX - 10;
    t.ok("set", json!({"key": "n", "value": big})).await;
    assert_eq!(
        t.ok("incr", json!({"key": "n", "by": 3})).await["value"],
        big + 3
    );
}

/// Every action once, with valid params.
fn one_call_of_each_action() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("get", json!({"key": "k"})),
        ("set", json!({"key": "k", "value": 1})),
        ("delete", json!({"key": "k"})),
        ("mget", json!({"keys": ["k"]})),
        ("mset", json!({"entries": [{"key": "k", "value": 1}]})),
        ("incr", json!({"key": "n"})),
        ("delete_prefix", json!({"prefix": "k"})),
    ]
}

async fn assert_unavailable_everywhere(t: &TenantInstance) {
    for (action, params) in one_call_of_each_action() {
        let started = Instant::now();
        let err = t.err(action, params).await;
        assert_eq!(
            err.code,
            ErrorCode::ProviderUnavailable,
            "{action}: {err:?}"
        );
        assert!(err.retryable, "{action}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{action} took {:?}",
            started.elapsed()
        );
    }
    let health = t.provider.health().await;
    assert_eq!(health.status, HealthStatus::Down);
    assert_eq!(health.dependencies[0].name, "redis");
    assert!(health.dependencies[0].detail.is_some());
}

#[tokio::test]
async fn an_unreachable_redis_makes_every_action_unavailable_and_health_down() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let factory = RedisCacheFactory::new(format!("redis://127.0.0.1:{closed_port}"));
    let t = Harness::new(Arc::new(factory)).tenant("acme").await;
    assert_unavailable_everywhere(&t).await;
}

#[tokio::test]
async fn a_redis_that_never_answers_times_out_as_unavailable() {
    // Accepts connections (the kernel completes them) but never reads or writes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let factory = RedisCacheFactory::new(format!("redis://127.0.0.1:{port}"));
    let t = Harness::new(Arc::new(factory)).tenant("acme").await;
    assert_unavailable_everywhere(&t).await;
    drop(silent);
}

/// A TCP relay in front of the test Redis whose connections can all be cut at once, as a Redis
/// restart or a network blip would; returns the URL to reach Redis through it and the cutter.
async fn relay() -> (String, watch::Sender<()>) {
    let url = redis_url();
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (credentials, upstream) = match authority.rsplit_once('@') {
        Some((credentials, upstream)) => (format!("{credentials}@"), upstream.to_owned()),
        None => (String::new(), authority.to_owned()),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (cut, cuts) = watch::channel(());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let mut cuts = cuts.clone();
            cuts.mark_unchanged();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = cuts.changed() => {}
                }
            });
        }
    });
    (
        format!("{scheme}://{credentials}127.0.0.1:{port}{path}"),
        cut,
    )
}

#[tokio::test]
async fn calls_recover_by_themselves_after_the_connection_is_lost() {
    let (url, cut) = relay().await;
    let factory = RedisCacheFactory::with_namespace(url, unique("sytest"));
    let t = Harness::new(Arc::new(factory)).tenant("acme").await;
    t.ok("set", json!({"key": "k", "value": 1})).await;

    cut.send(()).expect("relay running");
    let mut recovered = false;
    for _ in 0..20 {
        match t.call("get", json!({"key": "k"})).await {
            Ok(entry) => {
                assert_eq!(entry["value"], 1);
                recovered = true;
                break;
            }
            Err(e) => {
                assert_eq!(e.code, ErrorCode::ProviderUnavailable, "{e:?}");
                assert!(e.retryable);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(recovered, "no call succeeded after the connection was cut");
    assert_eq!(t.provider.health().await.status, HealthStatus::Up);
}
