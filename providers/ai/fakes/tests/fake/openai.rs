//! The OpenAI family: chat (whole and streamed), embeddings, models, keys, faults.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::{KEY, Sse, fake, stream};

fn post(base: &str, path: &str, body: Value) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{base}/v1/{path}"))
        .bearer_auth(KEY)
        .json(&body)
}

async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.expect("JSON"))
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Where is order SO-1042?"}
    ]})
}

/// The `delta.content` of every chunk, concatenated.
fn streamed_text(sse: &Sse) -> String {
    sse.events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn fake_openai_chat_answers_the_echo_with_word_usage() {
    let fake = fake().await;
    let (status, headers, body) =
        send(post(&fake.base_url(), "chat/completions", chat("gpt-fake"))).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-fake");
    assert_eq!(body["choices"][0]["index"], 0);
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: Where is order SO-1042?"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // 3 + 4 prompt words; "echo:" and the 4 words echoed.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12})
    );
}

#[tokio::test]
async fn fake_openai_chat_max_tokens_truncates_with_finish_reason_length() {
    let fake = fake().await;
    for param in ["max_tokens", "max_completion_tokens"] {
        let mut request = chat("gpt-fake");
        request[param] = json!(3);
        let (status, _, body) = send(post(&fake.base_url(), "chat/completions", request)).await;
        assert_eq!(status, 200);
        assert_eq!(body["choices"][0]["message"]["content"], "echo: Where is");
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert_eq!(body["usage"]["completion_tokens"], 3);
    }
    let mut zero = chat("gpt-fake");
    zero["max_tokens"] = json!(0);
    let (status, _, body) = send(post(&fake.base_url(), "chat/completions", zero)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "max_tokens");
}

#[tokio::test]
async fn fake_openai_chat_refuses_what_openai_refuses() {
    let fake = fake().await;
    let (status, _, body) = send(post(
        &fake.base_url(),
        "chat/completions",
        json!({"model": "m"}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        json!({"message": "Missing required parameter: 'messages'.", "type": "invalid_request_error",
               "param": "messages", "code": "missing_required_parameter"})
    );
    let not_json = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", fake.base_url()))
        .bearer_auth(KEY)
        .body("{not json");
    let (status, _, body) = send(not_json).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, _, body) = send(post(&fake.base_url(), "completions", json!({}))).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        "Invalid URL (POST /v1/completions)"
    );
}

#[tokio::test]
async fn fake_openai_chat_stream_sends_role_then_words_then_finish_then_done() {
    let fake = fake().await;
    let mut request = chat("gpt-fake");
    request["stream"] = json!(true);
    let sse = stream(post(&fake.base_url(), "chat/completions", request)).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.content_type, "text/event-stream");
    assert!(!sse.broken);
    let events = &sse.events;
    // role, 5 words, finish, [DONE]
    assert_eq!(events.len(), 8, "{events:?}");
    assert!(events.iter().all(|e| e.name.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..7].iter().map(|e| e.json()).collect();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["model"], "gpt-fake");
        assert!(
            chunk.get("usage").is_none(),
            "no usage unless asked: {chunk}"
        );
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    let words: Vec<&str> = chunks[1..6]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["echo:", " Where", " is", " order", " SO-1042?"]);
    assert!(
        chunks[..6]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert_eq!(streamed_text(&sse), "echo: Where is order SO-1042?");
}

#[tokio::test]
async fn fake_openai_chat_stream_include_usage_ends_with_a_usage_chunk() {
    let fake = fake().await;
    let mut request = chat("gpt-fake");
    request["stream"] = json!(true);
    request["max_tokens"] = json!(2);
    request["stream_options"] = json!({"include_usage": true});
    let sse = stream(post(&fake.base_url(), "chat/completions", request)).await;
    let events = &sse.events;
    // role, 2 words, finish, usage, [DONE]
    assert_eq!(events.len(), 6, "{events:?}");
    assert_eq!(events[5].data, "[DONE]");
    let finish = events[3].json();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert!(
        finish["usage"].is_null(),
        "every chunk but the last has usage null"
    );
    let last = events[4].json();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9})
    );
    assert_eq!(streamed_text(&sse), "echo: Where");
}

#[tokio::test]
async fn fake_openai_embeddings_are_deterministic_for_a_string_or_an_array() {
    let fake = fake().await;
    let (status, _, many) = send(post(
        &fake.base_url(),
        "embeddings",
        json!({"model": "fake-embedding", "input": ["red shoes", "blue hat for sale"]}),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(many["object"], "list");
    assert_eq!(many["model"], "fake-embedding");
    assert_eq!(
        many["usage"],
        json!({"prompt_tokens": 6, "total_tokens": 6})
    );
    let data = many["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 8);
    }
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    let (_, _, one) = send(post(
        &fake.base_url(),
        "embeddings",
        json!({"model": "fake-embedding", "input": "blue hat for sale"}),
    ))
    .await;
    assert_eq!(one["data"][0]["embedding"], data[1]["embedding"]);
    assert_eq!(one["usage"]["prompt_tokens"], 4);

    let (_, _, encoded) = send(post(
        &fake.base_url(),
        "embeddings",
        json!({"model": "fake-embedding", "input": "blue hat for sale", "encoding_format": "base64"}),
    ))
    .await;
    let bytes = STANDARD
        .decode(encoded["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let plain: Vec<f32> = serde_json::from_value(data[1]["embedding"].clone()).unwrap();
    assert_eq!(floats, plain);

    let (status, _, body) = send(post(
        &fake.base_url(),
        "embeddings",
        json!({"model": "fake-embedding", "input": [1, 2]}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "input");
}

#[tokio::test]
async fn fake_openai_models_are_listed_and_any_is_retrieved() {
    let fake = fake().await;
    let get = |path: &str| {
        reqwest::Client::new()
            .get(format!("{}/v1/{path}", fake.base_url()))
            .bearer_auth(KEY)
    };
    let (status, _, list) = send(get("models")).await;
    assert_eq!(status, 200);
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            m["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids, ["fake-chat", "fake-embedding"]);
    let (status, _, one) = send(get("models/gpt-anything")).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], "gpt-anything");
    assert_eq!(one["owned_by"], "switchyard-fake");
}

#[tokio::test]
async fn fake_openai_key_is_required_only_when_configured() {
    let fake = fake().await;
    let url = format!("{}/v1/models", fake.base_url());
    let client = reqwest::Client::new();
    let (status, _, body) = send(client.get(&url)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, _, body) = send(client.get(&url).bearer_auth("sk-wrong")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(
        !body.to_string().contains("sk-wrong"),
        "the key is not quoted back"
    );

    let open = switchyard_ai_fakes::FakeAi::start(Default::default()).await;
    let (status, _, _) = send(client.get(format!("{}/v1/models", open.base_url()))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn fake_openai_faults_answer_their_status_before_any_token() {
    let fake = fake().await;
    for (model, status, kind) in [
        ("gpt-fake-429", 429, "requests"),
        ("gpt-fake-500", 500, "server_error"),
        ("gpt-fake-503", 503, "server_error"),
    ] {
        for streamed in [false, true] {
            let mut request = chat(model);
            request["stream"] = json!(streamed);
            let (got, headers, body) =
                send(post(&fake.base_url(), "chat/completions", request)).await;
            assert_eq!(got, status, "{model}");
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(body["error"]["type"], kind);
            assert_eq!(
                headers.get("retry-after").map(|v| v.to_str().unwrap()),
                (status == 429).then_some("1"),
                "{model}"
            );
        }
        let (got, _, _) = send(post(
            &fake.base_url(),
            "embeddings",
            json!({"model": model, "input": "x"}),
        ))
        .await;
        assert_eq!(got, status, "embeddings with {model}");
    }
    assert_eq!(
        send(post(
            &fake.base_url(),
            "chat/completions",
            chat("gpt-429-not-last")
        ))
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn fake_openai_slow_holds_the_first_token_back() {
    let fake = fake().await;
    let mut request = chat("gpt-fake-slow");
    request["stream"] = json!(true);
    let sse = stream(post(&fake.base_url(), "chat/completions", request)).await;
    assert_eq!(sse.status, 200);
    assert!(
        sse.first_event_after.unwrap() >= Duration::from_millis(300),
        "{:?}",
        sse.first_event_after
    );
    assert_eq!(streamed_text(&sse), "echo: Where is order SO-1042?");

    let started = Instant::now();
    let (status, _, body) = send(post(
        &fake.base_url(),
        "chat/completions",
        chat("gpt-fake-slow"),
    ))
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(status, 200);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: Where is order SO-1042?"
    );
}

#[tokio::test]
async fn fake_openai_cut_streams_two_words_then_drops_the_connection() {
    let fake = fake().await;
    let mut request = chat("gpt-fake-cut");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let sse = stream(post(&fake.base_url(), "chat/completions", request)).await;
    assert_eq!(sse.status, 200);
    assert!(sse.broken, "the stream must break, not end");
    assert_eq!(sse.events.len(), 3, "role and two words: {:?}", sse.events);
    assert_eq!(streamed_text(&sse), "echo: Where");
    assert!(sse.events.iter().all(|e| e.data != "[DONE]"));

    let (status, _, body) = send(post(
        &fake.base_url(),
        "chat/completions",
        chat("gpt-fake-cut"),
    ))
    .await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "server_error");
}
