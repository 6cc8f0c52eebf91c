//! The Anthropic family (docs.anthropic.com/en/api/messages): `POST /v1/messages`, whole or
//! as the documented event sequence, and the model list; `x-api-key` when the fake has a
//! key, `anthropic-version` always, errors in Anthropic's shape.

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::body::Answer;
use crate::echo::{Echo, Fault};
use crate::server::{Call, Routed, event_stream, json, sse};

/// What `GET /v1/models` lists; any other name is served as well.
const MODELS: [&str; 1] = ["fake-claude"];

pub(crate) fn route(call: &Call<'_>) -> Routed {
    if let Some(refusal) = authenticate(call) {
        return refusal.into();
    }
    if call.header("anthropic-version").is_none() {
        return invalid("anthropic-version: header is required");
    }
    match (call.method, call.path) {
        (&Method::POST, "/v1/messages") => messages(call),
        (&Method::GET, "/v1/models") => {
            let data = MODELS.map(|id| {
                json!({"type": "model", "id": id, "display_name": "Fake Claude",
                       "created_at": "2026-01-01T00:00:00Z"})
            });
            json(
                StatusCode::OK,
                &json!({"data": data, "has_more": false,
                        "first_id": MODELS.first(), "last_id": MODELS.last()}),
            )
            .into()
        }
        _ => error(404, "not_found_error", "Not found").into(),
    }
}

/// Anthropic's error: `{"type": "error", "error": {"type", "message"}}`.
fn error(status: u16, kind: &str, message: &str) -> Response<Answer> {
    json(
        StatusCode::from_u16(status).expect("a valid status"),
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn invalid(message: &str) -> Routed {
    error(400, "invalid_request_error", message).into()
}

fn authenticate(call: &Call<'_>) -> Option<Response<Answer>> {
    let key = call.settings.api_key.as_deref()?;
    match call.header("x-api-key") {
        Some(given) if given == key => None,
        Some(_) => Some(error(401, "authentication_error", "invalid x-api-key")),
        None => Some(error(
            401,
            "authentication_error",
            "x-api-key header is required",
        )),
    }
}

/// The status a `…-429`/`-500`/`-503`/`-529` model asks for, as Anthropic words it (529 is
/// its "overloaded"; 503 is answered the same way).
fn fault_status(status: u16) -> Response<Answer> {
    match status {
        429 => {
            let mut response = error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit (fake: a model named …-429).",
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        503 | 529 => error(status, "overloaded_error", "Overloaded"),
        _ => error(status, "api_error", "Internal server error"),
    }
}

fn messages(call: &Call<'_>) -> Routed {
    let Some(body) = call.body else {
        return invalid("The request body is not valid JSON.");
    };
    let Some(model) = body["model"].as_str() else {
        return invalid("model: Field required");
    };
    let max_tokens = match &body["max_tokens"] {
        Value::Null => return invalid("max_tokens: Field required"),
        value => match value.as_u64() {
            Some(n) if n >= 1 => n,
            _ => return invalid("max_tokens: Input should be greater than or equal to 1"),
        },
    };
    let Some(messages) = body["messages"].as_array() else {
        return invalid("messages: Field required");
    };
    if messages.is_empty() {
        return invalid("messages: at least one message is required");
    }
    // The Messages API takes the system prompt as a parameter: a gateway that forwards
    // OpenAI's system message as is would be refused here as it is there.
    if let Some(role) = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .find(|role| !matches!(*role, "user" | "assistant"))
    {
        return invalid(&format!(
            "messages: Unexpected role \"{role}\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role."
        ));
    }
    let stream = body["stream"].as_bool().unwrap_or(false);
    let fault = Fault::of(model);
    match fault {
        Some(Fault::Status(status)) => return fault_status(status).into(),
        Some(Fault::Cut) if !stream => {
            return error(500, "api_error", "Internal server error").into();
        }
        _ => {}
    }
    let slow = (fault == Some(Fault::Slow)).then_some(call.settings.slow_first_token);
    let system = body.get("system").filter(|s| !s.is_null());
    let echo = Echo::new(system, messages, Some(max_tokens));
    let stop_reason = if echo.truncated {
        "max_tokens"
    } else {
        "end_turn"
    };
    let id = format!("msg_fake{}", call.seq);
    if !stream {
        let message = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": echo.text()}],
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": echo.prompt_tokens, "output_tokens": echo.completion_tokens()},
        });
        return Routed {
            response: json(StatusCode::OK, &message),
            delay: slow,
        };
    }

    let cut = fault == Some(Fault::Cut);
    let words = if cut { 2 } else { usize::MAX };
    let mut frames = Vec::with_capacity(echo.completion_tokens() as usize + 6);
    frames.push(sse(
        Some("message_start"),
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": null, "stop_sequence": null,
            // As documented: the input is counted, output_tokens starts at 1; message_delta
            // carries the cumulative output count.
            "usage": {"input_tokens": echo.prompt_tokens, "output_tokens": 1},
        }}),
    ));
    frames.push(sse(
        Some("content_block_start"),
        &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
    ));
    frames.push(sse(Some("ping"), &json!({"type": "ping"})));
    frames.extend(echo.pieces().take(words).map(|piece| {
        sse(
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}),
        )
    }));
    if !cut {
        frames.push(sse(
            Some("content_block_stop"),
            &json!({"type": "content_block_stop", "index": 0}),
        ));
        frames.push(sse(
            Some("message_delta"),
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                    "usage": {"output_tokens": echo.completion_tokens()}}),
        ));
        frames.push(sse(Some("message_stop"), &json!({"type": "message_stop"})));
    }
    event_stream(frames, slow, cut).into()
}
