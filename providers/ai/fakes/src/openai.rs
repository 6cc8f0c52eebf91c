//! The OpenAI family (platform.openai.com/docs/api-reference): chat completions (whole or
//! streamed as `chat.completion.chunk` events), embeddings and models, behind
//! `Authorization: Bearer` when the fake has a key, errors in OpenAI's shape.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::body::Answer;
use crate::echo::{self, Echo, Fault};
use crate::server::{Call, Routed, event_stream, json, now, sse};

/// What `GET /v1/models` lists; any other name is served as well.
const MODELS: [&str; 2] = ["fake-chat", "fake-embedding"];

/// 2026-01-01T00:00:00Z: the models' `created`.
const MODELS_CREATED: u64 = 1_767_225_600;

pub(crate) fn route(call: &Call<'_>) -> Routed {
    if let Some(refusal) = authenticate(call) {
        return refusal.into();
    }
    match (call.method, call.path) {
        (&Method::POST, "/v1/chat/completions") => chat(call),
        (&Method::POST, "/v1/embeddings") => embeddings(call),
        (&Method::GET, "/v1/models") => json(
            StatusCode::OK,
            &json!({"object": "list", "data": MODELS.map(model)}),
        )
        .into(),
        (&Method::GET, path) => match path.strip_prefix("/v1/models/") {
            Some(id) if !id.is_empty() => json(StatusCode::OK, &model(id)).into(),
            _ => invalid_url(call),
        },
        _ => invalid_url(call),
    }
}

fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODELS_CREATED, "owned_by": "switchyard-fake"})
}

/// OpenAI's error: `{"error": {"message", "type", "param", "code"}}`.
fn error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<Answer> {
    json(
        StatusCode::from_u16(status).expect("a valid status"),
        &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
    )
}

fn invalid_url(call: &Call<'_>) -> Routed {
    let message = format!("Invalid URL ({} {})", call.method, call.path);
    error(404, &message, "invalid_request_error", None, None).into()
}

fn invalid(message: &str, param: Option<&str>, code: Option<&str>) -> Routed {
    error(400, message, "invalid_request_error", param, code).into()
}

/// Without a configured key every call passes; with one, it must come as a bearer token.
fn authenticate(call: &Call<'_>) -> Option<Response<Answer>> {
    let key = call.settings.api_key.as_deref()?;
    match call
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    {
        Some(given) if given == key => None,
        Some(_) => Some(error(
            401,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        )),
        None => Some(error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            None,
        )),
    }
}

/// The status a `…-429`/`-500`/`-503`/`-529` model asks for, as OpenAI words it.
fn fault_status(status: u16) -> Response<Answer> {
    match status {
        429 => {
            let mut response = error(
                429,
                "Rate limit reached for requests (fake: a model named …-429).",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        503 | 529 => error(
            status,
            "The engine is currently overloaded, please try again later (fake).",
            "server_error",
            None,
            None,
        ),
        _ => server_error(status),
    }
}

fn server_error(status: u16) -> Response<Answer> {
    error(
        status,
        "The server had an error while processing your request. Sorry about that! (fake)",
        "server_error",
        None,
        None,
    )
}

fn unparsable() -> Routed {
    invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        None,
        None,
    )
}

/// `max_completion_tokens`, else the older `max_tokens`: absent, or an integer ≥ 1. A
/// refusal is its message, parameter and code.
fn max_tokens(body: &Value) -> Result<Option<u64>, (String, &'static str, &'static str)> {
    for param in ["max_completion_tokens", "max_tokens"] {
        let value = &body[param];
        if value.is_null() {
            continue;
        }
        return match value.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            Some(_) => Err((
                format!("Invalid '{param}': integer below minimum value. Expected a value >= 1."),
                param,
                "integer_below_min_value",
            )),
            None => Err((
                format!("Invalid type for '{param}': expected an integer."),
                param,
                "invalid_type",
            )),
        };
    }
    Ok(None)
}

fn chat(call: &Call<'_>) -> Routed {
    let Some(body) = call.body else {
        return unparsable();
    };
    let Some(model) = body["model"].as_str() else {
        return invalid("you must provide a model parameter", None, None);
    };
    let Some(messages) = body["messages"].as_array() else {
        return invalid(
            "Missing required parameter: 'messages'.",
            Some("messages"),
            Some("missing_required_parameter"),
        );
    };
    if messages.is_empty() {
        return invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            Some("messages"),
            Some("empty_array"),
        );
    }
    let max_tokens = match max_tokens(body) {
        Ok(max) => max,
        Err((message, param, code)) => return invalid(&message, Some(param), Some(code)),
    };
    let stream = body["stream"].as_bool().unwrap_or(false);
    let fault = Fault::of(model);
    match fault {
        Some(Fault::Status(status)) => return fault_status(status).into(),
        Some(Fault::Cut) if !stream => return server_error(500).into(),
        _ => {}
    }
    let slow = (fault == Some(Fault::Slow)).then_some(call.settings.slow_first_token);
    let echo = Echo::new(None, messages, max_tokens);
    let finish_reason = if echo.truncated { "length" } else { "stop" };
    let id = format!("chatcmpl-fake{}", call.seq);
    let usage = json!({
        "prompt_tokens": echo.prompt_tokens,
        "completion_tokens": echo.completion_tokens(),
        "total_tokens": echo.prompt_tokens + echo.completion_tokens(),
    });
    if !stream {
        let completion = json!({
            "id": id,
            "object": "chat.completion",
            "created": now(),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": echo.text(), "refusal": null},
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
            "usage": usage,
            "system_fingerprint": null,
        });
        return Routed {
            response: json(StatusCode::OK, &completion),
            delay: slow,
        };
    }

    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let created = now();
    // Every chunk has the same frame; with include_usage, each carries `"usage": null` but
    // the last, which carries the usage and no choices.
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut chunk = Map::with_capacity(7);
        chunk.insert("id".into(), json!(id));
        chunk.insert("object".into(), json!("chat.completion.chunk"));
        chunk.insert("created".into(), json!(created));
        chunk.insert("model".into(), json!(model));
        chunk.insert("system_fingerprint".into(), Value::Null);
        chunk.insert("choices".into(), choices);
        if include_usage {
            chunk.insert("usage".into(), usage.cloned().unwrap_or(Value::Null));
        }
        sse(None, &Value::Object(chunk))
    };
    let delta = |delta: Value, finish: Option<&str>| {
        chunk(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            None,
        )
    };
    let cut = fault == Some(Fault::Cut);
    let words = if cut { 2 } else { usize::MAX };
    let mut frames = Vec::with_capacity(echo.completion_tokens() as usize + 4);
    frames.push(delta(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    ));
    frames.extend(
        echo.pieces()
            .take(words)
            .map(|piece| delta(json!({"content": piece}), None)),
    );
    if !cut {
        frames.push(delta(json!({}), Some(finish_reason)));
        if include_usage {
            frames.push(chunk(json!([]), Some(&usage)));
        }
        frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
    event_stream(frames, slow, cut).into()
}

fn embeddings(call: &Call<'_>) -> Routed {
    let Some(body) = call.body else {
        return unparsable();
    };
    let Some(model) = body["model"].as_str() else {
        return invalid("you must provide a model parameter", None, None);
    };
    let inputs: Vec<&str> = match &body["input"] {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) if !items.is_empty() => {
            match items.iter().map(Value::as_str).collect::<Option<Vec<_>>>() {
                Some(texts) => texts,
                None => return invalid_input(),
            }
        }
        Value::Null => {
            return invalid(
                "Missing required parameter: 'input'.",
                Some("input"),
                Some("missing_required_parameter"),
            );
        }
        _ => return invalid_input(),
    };
    let base64 = match body["encoding_format"].as_str() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return invalid(
                "Invalid value for 'encoding_format': expected 'float' or 'base64'.",
                Some("encoding_format"),
                Some("invalid_value"),
            );
        }
    };
    let fault = Fault::of(model);
    match fault {
        Some(Fault::Status(status)) => return fault_status(status).into(),
        Some(Fault::Cut) => return server_error(500).into(),
        _ => {}
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = echo::embedding(text);
            let embedding = if base64 {
                // Little-endian float32s, as the API and its SDKs decode them.
                let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                json!(STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let words: u64 = inputs
        .iter()
        .map(|t| t.split_whitespace().count() as u64)
        .sum();
    Routed {
        response: json(
            StatusCode::OK,
            &json!({
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": words, "total_tokens": words},
            }),
        ),
        delay: (fault == Some(Fault::Slow)).then_some(call.settings.slow_first_token),
    }
}

fn invalid_input() -> Routed {
    invalid(
        "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        Some("input"),
        None,
    )
}
