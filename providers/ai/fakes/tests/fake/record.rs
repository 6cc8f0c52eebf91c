//! The record of what reached the fake, in process and over HTTP, and the binary.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_ai_fakes::{FakeAi, FakeAiSettings};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{KEY, fake};

#[tokio::test]
async fn fake_records_every_request_in_arrival_order_with_its_headers() {
    let fake = fake().await;
    let client = reqwest::Client::new();
    let base = fake.base_url();
    let chat = json!({"model": "gpt-fake", "messages": [{"role": "user", "content": "my card is [REDACTED]"}]});
    client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&chat)
        .send()
        .await
        .unwrap();
    let message = json!({"model": "claude-fake-429", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    client
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&message)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap();

    assert_eq!(fake.calls(), 3, "refused and failed calls count too");
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(requests[0].body, chat);
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Bearer {KEY}")
    );
    assert_eq!(requests[1].path, "/v1/messages");
    assert_eq!(requests[1].body, message);
    assert_eq!(requests[1].headers["x-api-key"], KEY);
    assert_eq!(requests[1].headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        (requests[2].method.as_str(), &requests[2].body),
        ("GET", &Value::Null)
    );
    assert!(!requests[2].headers.contains_key("authorization"));
}

#[tokio::test]
async fn fake_records_a_slow_request_when_it_arrives_not_when_it_is_answered() {
    let fake = fake().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", fake.base_url());
    let body =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "x"}]});
    let slow = client
        .post(&url)
        .bearer_auth(KEY)
        .json(&body("m-slow"))
        .send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .post(&url)
        .bearer_auth(KEY)
        .json(&body("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    let models: Vec<Value> = fake
        .requests()
        .into_iter()
        .map(|r| r.body["model"].clone())
        .collect();
    assert_eq!(models, [json!("m-slow"), json!("m")]);
}

#[tokio::test]
async fn fake_record_keeps_the_latest_up_to_its_limit() {
    let fake = FakeAi::start(FakeAiSettings {
        record_limit: 2,
        ..FakeAiSettings::default()
    })
    .await;
    let client = reqwest::Client::new();
    for n in 0..3 {
        client
            .post(format!("{}/v1/embeddings", fake.base_url()))
            .json(&json!({"model": "e", "input": format!("text {n}")}))
            .send()
            .await
            .unwrap();
    }
    let inputs: Vec<Value> = fake
        .requests()
        .into_iter()
        .map(|r| r.body["input"].clone())
        .collect();
    assert_eq!(inputs, [json!("text 1"), json!("text 2")]);
    assert_eq!(fake.calls(), 3);

    let off = FakeAi::start(FakeAiSettings {
        record_limit: 0,
        ..FakeAiSettings::default()
    })
    .await;
    client
        .get(format!("{}/v1/models", off.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!((off.requests().len(), off.calls()), (0, 1));
}

#[tokio::test]
async fn fake_requests_endpoint_serves_and_clears_the_record() {
    let fake = fake().await;
    let client = reqwest::Client::new();
    let url = format!("{}/__fake/requests", fake.base_url());
    let body = json!({"model": "e", "input": "some text"});
    client
        .post(format!("{}/v1/embeddings", fake.base_url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    client
        .post(format!("{}/v1/embeddings", fake.base_url()))
        .body("plain text")
        .send()
        .await
        .unwrap();
    let listed: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[0]["path"], "/v1/embeddings");
    assert_eq!(listed[0]["body"], body);
    assert_eq!(
        listed[1]["body"], "plain text",
        "a body that is not JSON, as text"
    );
    assert_eq!(
        listed[0]["headers"]["authorization"],
        format!("Bearer {KEY}")
    );
    assert_eq!(fake.calls(), 2, "the fake's own endpoint is not counted");

    let cleared = client.delete(&url).send().await.unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(fake.requests().is_empty());
    let listed: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn fake_binary_prints_its_address_and_serves() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard-ai-fake"))
        .args(["--listen", "127.0.0.1:0", "--slow-ms", "150"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the binary");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the binary binds within 10 s")
    .unwrap()
    .expect("a line");
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let answer: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "m-slow", "messages": [{"role": "user", "content": "ping"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(answer["choices"][0]["message"]["content"], "echo: ping");
    let listed: Value = client
        .get(format!("{base}/__fake/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["body"]["model"], "m-slow");
    child.kill().await.unwrap();
}
