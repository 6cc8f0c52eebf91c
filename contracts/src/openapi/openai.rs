//! The OpenAI-compatible surface (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`),
//! present when the tenant-facing `ai/gateway` engine is: each path runs one of its actions
//! with the body as the params, without the invoke envelope, and answers OpenAI's objects as
//! they are. Refusals are in OpenAI's error shape (`OpenAiError`), so OpenAI's own clients
//! raise their usual exceptions; `error.code` is the stable code of the problem+json routes.

use serde_json::{Map, Value, json};

use crate::descriptor::ProviderDescriptor;
use crate::problem::ErrorCode;

/// The `/v1` paths, when `providers` include `ai/gateway`.
pub fn paths(providers: &[ProviderDescriptor]) -> Map<String, Value> {
    let mut paths = Map::new();
    let Some(gateway) = providers
        .iter()
        .find(|p| p.domain == "ai" && p.name == "gateway")
    else {
        return paths;
    };
    let action = |name: &str| gateway.actions.iter().find(|a| a.name == name);
    if let Some(chat) = action("chat_completions") {
        paths.insert(
            "/v1/chat/completions".into(),
            json!({"post": {
                "operationId": "openai_chat_completions",
                "summary": "OpenAI's chat completion over the tenant's AI gateway: model names one of its aliases. With \"stream\": true the answer is server-sent events, one chat.completion.chunk per data line, then data: [DONE]; a failure after the first chunk arrives as a data line holding an error object.",
                "tags": ["openai"],
                "requestBody": {"required": true, "content": {"application/json": {"schema": chat.params}}},
                "responses": {
                    "200": {"description": "The completion, or its chunks as they are written.",
                            "content": {
                                "application/json": {"schema": chat.result},
                                "text/event-stream": {"schema": {"type": "string"}}
                            }},
                    "default": error()
                }
            }}),
        );
    }
    if let Some(embeddings) = action("embeddings") {
        paths.insert(
            "/v1/embeddings".into(),
            json!({"post": {
                "operationId": "openai_embeddings",
                "summary": "OpenAI's embeddings over the tenant's AI gateway: model names one of its embedding aliases.",
                "tags": ["openai"],
                "requestBody": {"required": true, "content": {"application/json": {"schema": embeddings.params}}},
                "responses": {
                    "200": {"description": "One vector per input, in order.",
                            "content": {"application/json": {"schema": embeddings.result}}},
                    "default": error()
                }
            }}),
        );
    }
    if let Some(models) = action("models") {
        paths.insert(
            "/v1/models".into(),
            json!({"get": {
                "operationId": "openai_models",
                "summary": "The tenant's AI gateway aliases, as OpenAI's model list.",
                "tags": ["openai"],
                "responses": {
                    "200": {"description": "The aliases.",
                            "content": {"application/json": {"schema": models.result}}},
                    "default": error()
                }
            }}),
        );
    }
    paths
}

/// OpenAI's error object, which every refusal on `/v1` is written as.
pub fn error_schema() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object", "required": ["error"], "additionalProperties": false,
        "properties": {"error": {
            "type": "object", "required": ["message", "type", "param", "code"], "additionalProperties": false,
            "properties": {
                "message": {"type": "string"},
                "type": {"enum": ["invalid_request_error", "authentication_error", "permission_error", "rate_limit_error", "insufficient_quota", "api_error"]},
                "param": {"type": ["string", "null"], "description": "A JSON pointer to the first invalid field."},
                "code": {"enum": codes, "description": "The stable code, as the problem+json routes name it."}
            }
        }}
    })
}

fn error() -> Value {
    json!({"description": "A refusal, in OpenAI's error shape.",
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAiError"}}}})
}
