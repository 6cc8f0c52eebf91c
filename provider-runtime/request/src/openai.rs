//! The OpenAI-compatible surface: `POST /v1/chat/completions`, `POST /v1/embeddings` and
//! `GET /v1/models`, which OpenAI's own clients (its SDKs, LangChain, LiteLLM) call unchanged.
//! Each route is an action of the tenant's AI gateway, `ai/gateway` (ADR 37): the gateway
//! authorizes, rate-limits and judges it as that provider's invoke, and the runtime runs it
//! there. The body is the action's params as it is, without the `{"params": ...}` envelope, and
//! refusals on these routes are written in OpenAI's error shape
//! ([`switchyard_contracts::Problem::to_openai_body`]).

use http::Method;
use serde_json::{Value, json};

/// The provider every `/v1/*` route runs: its domain and name.
pub const PROVIDER: (&str, &str) = ("ai", "gateway");

/// Whether the path is under `/v1`, whose answers (refusals included) are OpenAI-shaped.
pub fn is_openai(segments: &[&str]) -> bool {
    segments.first() == Some(&"v1")
}

/// The `ai/gateway` action a `/v1/*` path runs, whatever the method; `None` for other paths.
pub fn action(segments: &[&str]) -> Option<&'static str> {
    match segments {
        ["v1", "chat", "completions"] => Some("chat_completions"),
        ["v1", "embeddings"] => Some("embeddings"),
        ["v1", "models"] => Some("models"),
        _ => None,
    }
}

/// The one method each `/v1/*` action takes.
pub fn method(action: &str) -> Method {
    if action == "models" {
        Method::GET
    } else {
        Method::POST
    }
}

/// What the policy input says of an AI call (`input.ai`), so that Rego can decide per model
/// and size before anything is spent: the model asked for (an alias of the tenant's AI
/// gateway), the `max_tokens` asked, and a cheap estimate of the prompt's tokens (a quarter of
/// its UTF-8 bytes, plus 4 a message: about what OpenAI's tokenizers give for English text;
/// the budget reserves a bound that cannot be under the count instead, ADR 37).
pub fn policy_facts(params: &Value) -> Value {
    let text_bytes = |value: &Value| match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.len(),
                part => part.get("text").and_then(Value::as_str).map_or(0, str::len),
            })
            .sum(),
        _ => 0,
    };
    let estimated = match (params.get("messages"), params.get("input")) {
        (Some(Value::Array(messages)), _) => messages
            .iter()
            .map(|m| text_bytes(m.get("content").unwrap_or(&Value::Null)).div_ceil(4) + 4)
            .sum(),
        (None, Some(input)) => text_bytes(input).div_ceil(4),
        _ => 0,
    };
    let model = params.get("model").and_then(Value::as_str);
    json!({
        "model": model,
        "alias": model,
        "max_tokens": params.get("max_completion_tokens").or_else(|| params.get("max_tokens")),
        "estimated_tokens": estimated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_facts_estimate_the_prompt_and_name_the_alias() {
        let facts = policy_facts(&json!({
            "model": "smart",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "12345678"}, {"role": "system", "content": [{"type": "text", "text": "abcd"}]}],
        }));
        assert_eq!(facts["alias"], "smart");
        assert_eq!(facts["max_tokens"], 50);
        assert_eq!(facts["estimated_tokens"], 2 + 4 + 1 + 4);
        let facts = policy_facts(&json!({"model": "e", "input": ["abcd", "abcde"]}));
        assert_eq!(facts["estimated_tokens"], 3);
        assert_eq!(policy_facts(&json!({}))["estimated_tokens"], 0);
    }

    #[test]
    fn v1_paths_name_the_gateway_s_actions() {
        assert_eq!(
            action(&["v1", "chat", "completions"]),
            Some("chat_completions")
        );
        assert_eq!(action(&["v1", "embeddings"]), Some("embeddings"));
        assert_eq!(action(&["v1", "models"]), Some("models"));
        assert_eq!(action(&["v1", "completions"]), None);
        assert_eq!(action(&["providers", "ai", "gateway", "chat"]), None);
        assert!(is_openai(&["v1", "nothing"]));
        assert!(!is_openai(&["providers"]));
        assert_eq!(method("models"), Method::GET);
        assert_eq!(method("chat_completions"), Method::POST);
    }
}
