//! The gateway pipeline end to end: trace context, keys at rest, body limit, timeouts,
//! health-checked upstreams with failover, and graceful shutdown.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Api, Server, decode, free_port, tenant_with_key, write_config};
use serde_json::json;

/// A query that keeps db/sqlite busy for roughly `millions` × 0.2 s on a debug build.
fn slow_query(millions: u32) -> serde_json::Value {
    let n = millions * 1_000_000;
    json!({"params": {"sql": format!("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < {n}) SELECT count(*) AS n FROM c")}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_traceparent_reaches_the_runtime_and_a_missing_one_is_started() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = api
        .raw()
        .get(format!("{}/providers", server.base))
        .bearer_auth(api.key())
        .header("traceparent", sent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["traceparent"], sent);
    let response = api
        .raw()
        .get(format!("{}/providers", server.base))
        .bearer_auth(api.key())
        .header("traceparent", "garbage")
        .send()
        .await
        .unwrap();
    let started = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        started.starts_with("00-") && started.len() == 55 && started != "garbage",
        "{started}"
    );
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_stored_only_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    assert_eq!(Api::new(&server, &key).get("/providers").await.0, 200);
    let secret = key.splitn(3, '_').nth(2).unwrap(); // sy_<id>_<secret>; the secret may contain '_'
    assert!(secret.len() >= 40, "{key}");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(
                !found,
                "the key's secret is stored in plaintext in {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[limits]\nmax_body_bytes = 1024\n");
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let (status, body) = api
        .post(
            "/providers/cache/memory/set",
            json!({"params": {"key": "k", "value": "x".repeat(2000)}}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    let chunked =
        reqwest::Body::wrap_stream(futures_stream(vec![vec![b'x'; 800], vec![b'y'; 800]]));
    let response = api
        .raw()
        .post(format!(
            "{}/providers/storage/fs/put?key=big.bin",
            server.base
        ))
        .bearer_auth(api.key())
        .header("content-type", "application/octet-stream")
        .body(chunked)
        .send()
        .await
        .unwrap();
    let (status, body) = decode(response).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    assert_eq!(
        api.post(
            "/providers/cache/memory/set",
            json!({"params": {"key": "k", "value": "small"}})
        )
        .await
        .0,
        200
    );
}

/// A body sent in chunks without a declared length.
fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    ChunkStream(chunks.into_iter())
}

struct ChunkStream(std::vec::IntoIter<Vec<u8>>);

impl futures_core::Stream for ChunkStream {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next().map(Ok))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_slower_than_the_upstream_timeout_gets_504() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[limits]\nupstream_timeout_ms = 200\n");
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let (status, body) = api.post("/providers/db/sqlite/query", slow_query(10)).await;
    assert_eq!(
        (
            status.as_u16(),
            body["code"].as_str(),
            body["retryable"].as_bool()
        ),
        (504, Some("timeout"), Some(true)),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_healthy_runtime_the_gateway_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dead_runtime = format!("127.0.0.1:{}", free_port());
    let gateway = Server::spawn_unready(
        dir.path(),
        &[
            "gateway",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--runtime",
            &dead_runtime,
        ],
        port,
    );
    let api = Api::new(&gateway, &tenant_with_key(dir.path(), "acme", "*"));
    tokio::time::sleep(Duration::from_millis(1500)).await; // one health-check round
    let response = api
        .raw()
        .get(format!("{}/providers", gateway.base))
        .bearer_auth(api.key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, body) = decode(response).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (503, Some("upstream_unavailable")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_one_of_two_runtimes_mid_load_fails_no_request_once_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, g) = (free_port(), free_port(), free_port());
    let mut runtime_a = Server::spawn(
        dir.path(),
        &["runtime", "--listen", &format!("127.0.0.1:{a}")],
        a,
    );
    let _runtime_b = Server::spawn(
        dir.path(),
        &["runtime", "--listen", &format!("127.0.0.1:{b}")],
        b,
    );
    let config = write_config(dir.path(), "[upstreams]\nhealth_check_interval_ms = 200\n");
    let gateway = Server::spawn(
        dir.path(),
        &[
            "gateway",
            "--listen",
            &format!("127.0.0.1:{g}"),
            "--runtime",
            &format!("127.0.0.1:{a}"),
            "--runtime",
            &format!("127.0.0.1:{b}"),
            "--config",
            &config,
        ],
        g,
    );
    let api = Api::new(&gateway, &tenant_with_key(dir.path(), "acme", "*"));
    let get_failures = Arc::new(AtomicUsize::new(0));
    let post_failures_after_notice = Arc::new(AtomicUsize::new(0));
    let noticed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (api, gets, posts, noticed) = (
            api.clone(),
            get_failures.clone(),
            post_failures_after_notice.clone(),
            noticed.clone(),
        );
        workers.push(tokio::spawn(async move {
            for i in 0..150 {
                if api.get("/providers/db/sqlite/health").await.0 != 200 {
                    gets.fetch_add(1, Ordering::Relaxed);
                }
                let after = noticed.load(Ordering::SeqCst);
                let (status, _) = api
                    .post(
                        "/providers/db/sqlite/query",
                        json!({"params": {"sql": "SELECT ?1 AS n", "params": [w * 1000 + i]}}),
                    )
                    .await;
                if status != 200 && after {
                    posts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    runtime_a.kill9();
    tokio::time::sleep(Duration::from_millis(600)).await; // three health-check rounds
    noticed.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        get_failures.load(Ordering::Relaxed),
        0,
        "idempotent requests failed despite retries"
    );
    assert_eq!(
        post_failures_after_notice.load(Ordering::Relaxed),
        0,
        "requests failed after the health check noticed"
    );
    assert_eq!(
        api.get("/providers").await.0,
        200,
        "the catalog still answers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_slow_request_finish_and_refuses_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let slow = {
        let api = api.clone();
        tokio::spawn(async move { api.post("/providers/db/sqlite/query", slow_query(7)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = reqwest::Client::new()
        .get(format!("{}/providers", server.base))
        .bearer_auth(api.key())
        .send()
        .await;
    match after {
        Ok(response) => {
            let (status, body) = decode(response).await;
            assert_eq!(
                (status.as_u16(), body["code"].as_str()),
                (503, Some("shutting_down")),
                "{body}"
            );
        }
        Err(e) => assert!(
            e.is_connect(),
            "a request after SIGTERM must be refused, got {e}"
        ),
    }
    let (status, body) = slow.await.unwrap();
    assert_eq!(
        status, 200,
        "the in-flight request did not complete: {body}"
    );
    assert_eq!(body["data"]["rows"][0]["n"], 7_000_000);
    assert!(
        server.exited_within(Duration::from_secs(10)),
        "the gateway did not exit after draining"
    );
}
