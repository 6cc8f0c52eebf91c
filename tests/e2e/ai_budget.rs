//! The AI gateway's token budget under concurrency, on the real binary: three `serve` replicas
//! on one PostgreSQL platform store, one tenant whose `tokens`/`total` budget has room for
//! about 100 calls' reservations, and 1,000 chat completions sent at once, round robin over
//! the replicas, to a FAKE upstream (`switchyard-ai-fakes`). LiteLLM's users report budgets
//! overspent with several replicas because spend is checked after the call; here every call
//! reserves its bound in the shared store first (ADR 37), so:
//!
//! - while the load runs, a sampler reading the store never sees `spent + reserved` above the
//!   cap, and `reserved` is always exactly the sum of the reservations of the calls in flight;
//! - at the end nothing is reserved, the spend is within the cap, and it equals both the sum
//!   of the usage the 200 answers reported and the usage the fake computed for what it got;
//! - every call that did not answer was refused with 429 `budget_exceeded` (or 503
//!   `provider_unavailable` from a replica's bulkhead), and each budget refusal says the
//!   budget truly had no room for that call.
//!
//! Needs `SWITCHYARD_TEST_POSTGRES_URL` (set by `scripts/test`), like the other PostgreSQL
//! store tests; fails without it.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Api, Database, Server, cli, psql, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_ai_fakes::{FakeAi, FakeAiSettings};

const TENANT: &str = "acme";
const REPLICAS: usize = 3;
const REQUESTS: usize = 1000;
/// How many calls' reservations the budget holds.
const FITTING: i64 = 100;
/// The completion tokens each call asks for (and reserves).
const MAX_TOKENS: u64 = 24;
/// The tenant's one limit, as the usage readout names it.
const BUCKET: &str = "tenant|tokens|total|all";

/// Request `i`'s prompt: 10 to 30 one-letter words, so calls differ in what they reserve and
/// what they spend, and a sum that matches is not a count times a constant.
fn words_of(i: usize) -> u64 {
    10 + (i % 21) as u64
}

fn prompt_of(i: usize) -> String {
    vec!["w"; words_of(i) as usize].join(" ")
}

/// What the gateway reserves for request `i`: the prompt's bound (its UTF-8 bytes, 4 for the
/// message, 3 for the reply) plus `max_tokens` (switchyard_ai_gateway::tokens).
fn reservation_of(i: usize) -> i64 {
    (prompt_of(i).len() as u64 + 4 + 3 + MAX_TOKENS) as i64
}

/// What the fake reports for request `i`: the prompt's words, and the words of
/// "echo: <prompt>" up to `max_tokens`.
fn usage_of(i: usize) -> i64 {
    (words_of(i) + (words_of(i) + 1).min(MAX_TOKENS)) as i64
}

/// One reading of the budget in the store, in one statement (one snapshot): the bucket and
/// what the reservations of the calls in flight hold in it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    cap: i64,
    spent: i64,
    reserved: i64,
    in_flight: i64,
    held_by_in_flight: i64,
}

fn sample(db: &str) -> Option<Sample> {
    let row = psql(
        db,
        &format!(
            "SELECT b.cap, b.spent, b.reserved,
                    (SELECT count(*) FROM ai_reservations r WHERE r.tenant_id = b.tenant_id),
                    (SELECT coalesce(sum((c->>'amount')::bigint), 0)
                       FROM ai_reservations r, json_array_elements(r.charges::json) c
                      WHERE r.tenant_id = b.tenant_id AND c->>'bucket' = b.bucket)
               FROM ai_budget_buckets b
              WHERE b.tenant_id = '{TENANT}' AND b.bucket = '{BUCKET}'"
        ),
    );
    let fields: Vec<i64> = row
        .trim()
        .split('|')
        .filter(|f| !f.is_empty())
        .map(|f| f.parse().expect("a number from psql"))
        .collect();
    match fields[..] {
        [cap, spent, reserved, in_flight, held_by_in_flight] => Some(Sample {
            cap,
            spent,
            reserved,
            in_flight,
            held_by_in_flight,
        }),
        [] => None,
        _ => panic!("unexpected sample {row:?}"),
    }
}

/// The first number after `label` in a refusal's message.
fn number_after(message: &str, label: &str) -> i64 {
    let rest = &message[message
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {message}"))
        + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number after {label:?} in {message}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_budget_holds_across_three_replicas_under_1000_concurrent_calls_to_a_fake_upstream() {
    let db = Database::create("ai_budget");
    let fake = FakeAi::start(FakeAiSettings::default()).await;
    let mean_reservation = (0..REQUESTS).map(reservation_of).sum::<i64>() / REQUESTS as i64;
    let cap = FITTING * mean_reservation;

    // One tenant and key, created once in the shared store.
    let cli_dir = tempfile::tempdir().unwrap();
    let store = ["--store-url", db.url.as_str()];
    cli(
        cli_dir.path(),
        &[&store[..], &["tenant", "create", TENANT]].concat(),
    );
    let key = cli(
        cli_dir.path(),
        &[
            &store[..],
            &["key", "create", "--tenant", TENANT, "--scopes", "*"],
        ]
        .concat(),
    )
    .trim()
    .to_owned();

    // Three replicas, each with its own data dir and in-process dispatch, sharing only the
    // store; loopback egress is opened for the fake upstream.
    let dirs: Vec<_> = (0..REPLICAS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let replicas: Vec<Server> = dirs
        .iter()
        .map(|dir| {
            let config = write_config(
                dir.path(),
                "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n",
            );
            // The services' default books (db/sqlite) and the lifecycle bus (bus/embedded) are
            // node-local; this test calls neither.
            Server::start_with(
                dir.path(),
                &[
                    "--store-url",
                    &db.url,
                    "--config",
                    &config,
                    "--node-local",
                    "allow",
                ],
            )
        })
        .collect();

    // Configured once, through the first replica, before any call: the others read the
    // config from the store when their instances start.
    let first = Api::new(&replicas[0], &key);
    let (status, body) = first
        .post(
            "/providers/ai/openai/configure",
            json!({"config": {"base_url": format!("{}/v1", fake.base_url()), "chat_model": "fake-ok"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "configure ai/openai: {body}");
    let (status, body) = first
        .post(
            "/providers/ai/gateway/configure",
            json!({"config": {
                "aliases": {"smart": {"targets": [{"provider": "openai", "model": "fake-ok"}]}},
                "limits": [{"scope": "tenant", "unit": "tokens", "window": "total", "cap": cap}],
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "configure ai/gateway: {body}");
    for replica in &replicas {
        let (status, models) = Api::new(replica, &key).get("/v1/models").await;
        assert_eq!(status, StatusCode::OK, "{}: {models}", replica.base);
        assert_eq!(
            models["data"][0]["id"], "smart",
            "{} does not run the stored config: {models}",
            replica.base
        );
    }

    // The sampler: the store itself, read as often as psql allows while the load runs.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, url) = (stop.clone(), db.url.clone());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                samples.extend(sample(&url));
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        })
    };

    // 1,000 calls, all spawned before any is sent, then released together.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(REQUESTS + 1));
    let calls: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (http, start, key) = (http.clone(), start.clone(), key.clone());
            let url = format!("{}/v1/chat/completions", replicas[i % REPLICAS].base);
            tokio::spawn(async move {
                let body = json!({"model": "smart", "max_tokens": MAX_TOKENS,
                                  "messages": [{"role": "user", "content": prompt_of(i)}]});
                start.wait().await;
                let response = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("call {i}: {e}"));
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                (i, status, answer)
            })
        })
        .collect();
    let began = Instant::now();
    start.wait().await;
    let mut outcomes = Vec::with_capacity(REQUESTS);
    for call in calls {
        outcomes.push(call.await.expect("a call's task"));
    }
    let load_took = began.elapsed();
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().expect("the sampler");

    // What the callers saw.
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    let mut successes_by_replica = [0usize; REPLICAS];
    let mut reported = 0i64;
    for (i, status, answer) in &outcomes {
        if *status == StatusCode::OK {
            let usage = &answer["usage"];
            let total = usage["total_tokens"].as_i64().expect("usage in a 200");
            assert_eq!(total, usage_of(*i), "call {i}'s usage: {answer}");
            assert_eq!(
                usage["prompt_tokens"].as_i64().unwrap()
                    + usage["completion_tokens"].as_i64().unwrap(),
                total,
                "call {i}: {answer}"
            );
            reported += total;
            successes_by_replica[i % REPLICAS] += 1;
            *by_outcome.entry("200".into()).or_default() += 1;
            continue;
        }
        let code = answer["error"]["code"].as_str().unwrap_or_default();
        match (status.as_u16(), code) {
            (429, "budget_exceeded") => {
                // The refusal is honest: the budget had no room for this call's reservation.
                let message = answer["error"]["message"].as_str().unwrap();
                assert_eq!(
                    number_after(message, "needs up to "),
                    reservation_of(*i),
                    "call {i}: {message}"
                );
                let then = number_after(message, " with ");
                let held_then = number_after(message, " spent and ");
                assert_eq!(
                    number_after(message, &format!(" with {then} of ")),
                    cap,
                    "call {i}: {message}"
                );
                assert!(
                    then + held_then + reservation_of(*i) > cap,
                    "call {i} was refused with room for it: {message}"
                );
            }
            (503, "provider_unavailable") => {}
            _ => panic!("call {i} answered {status}: {answer}"),
        }
        *by_outcome
            .entry(format!("{} {code}", status.as_u16()))
            .or_default() += 1;
    }
    let successes = by_outcome.get("200").copied().unwrap_or(0);
    let budget_refusals = by_outcome.get("429 budget_exceeded").copied().unwrap_or(0);

    // What the fake upstream got and reported, computed from the requests it recorded.
    let received = fake.requests();
    let upstream: i64 = received
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .map(|r| {
            let prompt = r.body["messages"][0]["content"].as_str().unwrap();
            let words = prompt.split_whitespace().count() as u64;
            let max = r.body["max_tokens"]
                .as_u64()
                .expect("max_tokens reached the fake");
            assert_eq!(max, MAX_TOKENS, "{:?}", r.body);
            (words + (words + 1).min(max)) as i64
        })
        .sum();

    // What the store counted, read through the usage action of another replica.
    let usage = Api::new(&replicas[1], &key)
        .ok("ai/gateway", "usage", json!({}))
        .await;
    let bucket = usage["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bucket"] == BUCKET)
        .unwrap_or_else(|| panic!("no bucket {BUCKET}: {usage}"))
        .clone();
    let spent = bucket["spent"].as_i64().unwrap();
    let peak = samples
        .iter()
        .map(|s| s.spent + s.reserved)
        .max()
        .unwrap_or(0);
    let peak_in_flight = samples.iter().map(|s| s.in_flight).max().unwrap_or(0);

    eprintln!(
        "ai budget, {REPLICAS} replicas on one PostgreSQL store, {REQUESTS} concurrent calls in {load_took:?}:\n  \
         cap {cap} tokens (about {FITTING} reservations of {mean_reservation} on average; a call spends {}..{})\n  \
         final spend {spent}, sum of usage reported in the 200 answers {reported}, usage the fake reported {upstream}\n  \
         outcomes {by_outcome:?}, successes by replica {successes_by_replica:?}\n  \
         {} store samples during the load: peak spent+reserved {peak} of {cap}, peak calls in flight {peak_in_flight}",
        (0..REQUESTS).map(usage_of).min().unwrap(),
        (0..REQUESTS).map(usage_of).max().unwrap(),
        samples.len(),
    );

    // The final spend is the sum of reported usage, as the callers and as the upstream saw it.
    assert_eq!(spent, reported, "spend vs usage in the answers: {bucket}");
    assert_eq!(
        spent, upstream,
        "spend vs usage the fake reported: {bucket}"
    );
    assert_eq!(fake.calls(), successes as u64, "one upstream call per 200");
    // Nothing held once every call has answered, and the budget held.
    assert_eq!(bucket["reserved"], 0, "{bucket}");
    assert_eq!(bucket["cap"], cap, "{bucket}");
    assert!(spent <= cap, "overspent: {bucket}");
    assert_eq!(
        psql(
            &db.url,
            &format!("SELECT count(*) FROM ai_reservations WHERE tenant_id = '{TENANT}'")
        )
        .trim(),
        "0"
    );

    // While it ran: never more than the cap counted, and what was reserved was exactly what
    // the calls in flight held.
    assert!(
        samples.len() >= 3,
        "the sampler saw the budget {} times",
        samples.len()
    );
    for s in &samples {
        assert_eq!(s.cap, cap, "{s:?}");
        assert!(s.spent + s.reserved <= s.cap, "over the cap: {s:?}");
        assert_eq!(s.reserved, s.held_by_in_flight, "{s:?}");
    }

    // The budget bound, and at least the calls whose reservations fit at once went through;
    // settled calls hand back what they reserved but did not use, so more may have.
    assert!(
        budget_refusals > 0,
        "the budget never refused: {by_outcome:?}"
    );
    let largest = (0..REQUESTS).map(reservation_of).max().unwrap();
    assert!(
        successes as i64 >= cap / largest,
        "only {successes} calls fit a budget of {cap} with reservations up to {largest}"
    );
    assert!(
        successes_by_replica.iter().all(|&n| n > 0),
        "a replica served no call: {successes_by_replica:?}"
    );
}
