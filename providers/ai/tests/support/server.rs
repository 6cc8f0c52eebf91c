//! The real OpenAI-compatible server the tests may run against, from the environment:
//! `SWITCHYARD_TEST_OPENAI_URL` (its base URL, e.g. http://127.0.0.1:11434/v1; without it
//! build.rs leaves `cfg(openai_server)` off and those tests are skipped), optionally
//! `SWITCHYARD_TEST_OPENAI_KEY`, `SWITCHYARD_TEST_OPENAI_CHAT_MODEL` and
//! `SWITCHYARD_TEST_OPENAI_EMBEDDING_MODEL`.

use serde_json::{Value, json};

/// The tenant config that points `ai/openai` at that server, as the runtime hands it over
/// (the key resolved).
pub fn config() -> Value {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let url = var("SWITCHYARD_TEST_OPENAI_URL")
        .expect("SWITCHYARD_TEST_OPENAI_URL was set when the tests were built but is not set now");
    let mut config = json!({
        "base_url": url,
        "chat_model": var("SWITCHYARD_TEST_OPENAI_CHAT_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
        "embedding_model": var("SWITCHYARD_TEST_OPENAI_EMBEDDING_MODEL").unwrap_or_else(|| "text-embedding-3-small".into()),
    });
    if let Some(key) = var("SWITCHYARD_TEST_OPENAI_KEY") {
        config["api_key"] = json!(key);
    }
    config
}
