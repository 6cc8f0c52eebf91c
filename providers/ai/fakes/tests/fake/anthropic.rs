//! The Anthropic family: messages (whole and streamed), the required headers and fields,
//! faults.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{KEY, Sse, fake, stream};

const VERSION: &str = "2023-06-01";

fn post(base: &str, body: Value) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", KEY)
        .header("anthropic-version", VERSION)
        .json(&body)
}

async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.expect("JSON"))
}

fn message(model: &str, max_tokens: u64) -> Value {
    json!({
        "model": model,
        "max_tokens": max_tokens,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": [{"type": "text", "text": "Where is SO-1042?"}]}
        ],
        "temperature": 0.2
    })
}

fn streamed_text(sse: &Sse) -> String {
    sse.events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| e.json()["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn fake_anthropic_message_answers_the_echo_with_usage() {
    let fake = fake().await;
    let (status, _, body) = send(post(&fake.base_url(), message("claude-fake", 1024))).await;
    assert_eq!(status, 200);
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-fake");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "echo: Where is SO-1042?"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["stop_sequence"].is_null());
    // system 3 + 2 + 1 + 3 words in; "echo:" and 3 words out.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 9, "output_tokens": 4})
    );
}

#[tokio::test]
async fn fake_anthropic_max_tokens_stops_with_max_tokens() {
    let fake = fake().await;
    let (_, _, body) = send(post(&fake.base_url(), message("claude-fake", 2))).await;
    assert_eq!(body["content"][0]["text"], "echo: Where");
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn fake_anthropic_stream_follows_the_documented_event_sequence() {
    let fake = fake().await;
    let mut request = message("claude-fake", 1024);
    request["stream"] = json!(true);
    let sse = stream(post(&fake.base_url(), request)).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.content_type, "text/event-stream");
    assert!(!sse.broken);
    let names: Vec<&str> = sse
        .events
        .iter()
        .map(|e| e.name.as_deref().expect("every event is named"))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for event in &sse.events {
        assert_eq!(
            event.json()["type"],
            event.name.as_deref().unwrap(),
            "{event:?}"
        );
    }
    let start = sse.events[0].json();
    assert_eq!(start["message"]["type"], "message");
    assert_eq!(start["message"]["role"], "assistant");
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["usage"]["input_tokens"], 9);
    assert_eq!(
        sse.events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(sse.events[3].json()["delta"]["type"], "text_delta");
    assert_eq!(streamed_text(&sse), "echo: Where is SO-1042?");
    let delta = sse.events[8].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn fake_anthropic_requires_its_headers_and_fields() {
    let fake = fake().await;
    let url = format!("{}/v1/messages", fake.base_url());
    let client = reqwest::Client::new();
    let body = message("claude-fake", 10);

    let (status, _, error) = send(
        client
            .post(&url)
            .header("anthropic-version", VERSION)
            .json(&body),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        error,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "x-api-key header is required"}})
    );
    let wrong_key = client
        .post(&url)
        .header("x-api-key", "sk-wrong")
        .header("anthropic-version", VERSION)
        .json(&body);
    assert_eq!(send(wrong_key).await.0, 401);
    let bearer_only = client
        .post(&url)
        .bearer_auth(KEY)
        .header("anthropic-version", VERSION)
        .json(&body);
    assert_eq!(send(bearer_only).await.0, 401, "Anthropic takes x-api-key");

    let (status, _, error) = send(client.post(&url).header("x-api-key", KEY).json(&body)).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version")
    );

    let mut no_max = body.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let (status, _, error) = send(post(&fake.base_url(), no_max)).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["message"], "max_tokens: Field required");

    let system_message = json!({"model": "claude-fake", "max_tokens": 10, "messages": [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]});
    let (status, _, error) = send(post(&fake.base_url(), system_message)).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("top-level `system`")
    );
}

#[tokio::test]
async fn fake_anthropic_models_are_listed_in_anthropics_shape() {
    let fake = fake().await;
    let (status, _, list) = send(
        reqwest::Client::new()
            .get(format!("{}/v1/models", fake.base_url()))
            .header("x-api-key", KEY)
            .header("anthropic-version", VERSION),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["type"], "model");
    assert_eq!(list["first_id"], "fake-claude");
    assert_eq!(list["has_more"], false);
}

#[tokio::test]
async fn fake_anthropic_faults_answer_their_status_before_any_token() {
    let fake = fake().await;
    for (model, status, kind) in [
        ("claude-fake-429", 429, "rate_limit_error"),
        ("claude-fake-500", 500, "api_error"),
        ("claude-fake-503", 503, "overloaded_error"),
        ("claude-fake-529", 529, "overloaded_error"),
    ] {
        for streamed in [false, true] {
            let mut request = message(model, 100);
            request["stream"] = json!(streamed);
            let (got, headers, body) = send(post(&fake.base_url(), request)).await;
            assert_eq!(got, status, "{model}");
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], kind, "{model}");
            assert_eq!(
                headers.get("retry-after").map(|v| v.to_str().unwrap()),
                (status == 429).then_some("1"),
                "{model}"
            );
        }
    }
}

#[tokio::test]
async fn fake_anthropic_slow_holds_the_first_token_back() {
    let fake = fake().await;
    let mut request = message("claude-fake-slow", 100);
    request["stream"] = json!(true);
    let sse = stream(post(&fake.base_url(), request)).await;
    assert!(
        sse.first_event_after.unwrap() >= Duration::from_millis(300),
        "{:?}",
        sse.first_event_after
    );
    assert_eq!(
        sse.events.last().unwrap().name.as_deref(),
        Some("message_stop")
    );

    let started = Instant::now();
    let (status, _, _) = send(post(&fake.base_url(), message("claude-fake-slow", 100))).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn fake_anthropic_cut_streams_two_words_then_drops_the_connection() {
    let fake = fake().await;
    let mut request = message("claude-fake-cut", 100);
    request["stream"] = json!(true);
    let sse = stream(post(&fake.base_url(), request)).await;
    assert_eq!(sse.status, 200);
    assert!(sse.broken, "the stream must break, not end");
    let names: Vec<&str> = sse
        .events
        .iter()
        .filter_map(|e| e.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta"
        ]
    );
    assert_eq!(streamed_text(&sse), "echo: Where");

    let (status, _, body) = send(post(&fake.base_url(), message("claude-fake-cut", 100))).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "api_error");
}
