//! A client that retries right after a success (issue 18): a write with an `Idempotency-Key`,
//! then the same request again as soon as its 200 arrived, must get the replay — never 409
//! `idempotency_in_flight` because the first record was still being completed after its
//! response had left — and the write must have happened once per pair.

use std::time::Instant;

use crate::common;

use common::{Api, Server, decode, tenant_with_key};
use serde_json::{Value, json};

/// Sends `pairs` sequential request/immediate-retry pairs (`cache/memory` `incr` on one counter,
/// a fresh key per pair) and checks every retry replays the first answer, none is refused, and
/// the counter moved once per pair.
async fn request_then_retry_at_once(server: &Server, key: &str, pairs: u32, label: &str) {
    let api = Api::new(server, key);
    // A fresh connection per request, as a client with a pool of connections retries on
    // another one: on the same keep-alive connection the gateway reads the retry only after it
    // has finished the first request, which would hide the race.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/providers/cache/memory/incr", server.base);
    let body = json!({"params": {"key": "retried", "by": 1}});
    let send = |idempotency_key: String| {
        http.post(&url)
            .bearer_auth(key)
            .header("idempotency-key", idempotency_key)
            .json(&body)
            .send()
    };
    let started = Instant::now();
    let (mut replays, mut in_flight, mut other) = (0u32, 0u32, Vec::new());
    for pair in 0..pairs {
        let idempotency_key = format!("{label}-{pair}");
        let first = send(idempotency_key.clone()).await.unwrap();
        let first_replayed = first.headers().get("idempotent-replayed").is_some();
        let (status, first_body) = decode(first).await;
        assert_eq!(status, 200, "pair {pair}: {first_body}");
        assert!(!first_replayed, "pair {pair}: the first request ran");
        let retry = send(idempotency_key).await.unwrap();
        let replayed = retry
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let (status, retry_body) = decode(retry).await;
        match (status.as_u16(), replayed) {
            (200, true) => {
                assert_eq!(
                    retry_body, first_body,
                    "pair {pair}: the replay is the answer"
                );
                replays += 1;
            }
            (409, _) => in_flight += 1,
            other_answer => other.push((pair, other_answer, retry_body)),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{label}: {pairs} pairs in {elapsed:?}: {replays} replays, {in_flight} answers of 409, \
         {} other",
        other.len()
    );
    let counter: Value = api
        .ok("cache/memory", "get", json!({"key": "retried"}))
        .await;
    assert_eq!(
        (replays, in_flight, other.len()),
        (pairs, 0, 0),
        "every retry replays; other answers: {other:?}"
    );
    assert_eq!(
        counter["value"],
        json!(pairs),
        "one increment per pair: {counter}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_right_after_a_success_replays_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let server = Server::start(dir.path());
    request_then_retry_at_once(&server, &key, 1_000, "in-process").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_right_after_a_success_replays_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let server = Server::start_with(dir.path(), &["--dispatch", "http"]);
    request_then_retry_at_once(&server, &key, 200, "http").await;
}
