//! Per-tenant config of `ai/openai`: which OpenAI-compatible server, with which key and models
//! (the server's fields are read as every upstream engine reads them, see
//! [`crate::upstream::config`]).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use switchyard_spi::{ProviderError, parse_config};

use crate::upstream::config::{
    BASE_URL_PATTERN, Endpoint, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, SECRET_PATTERN, default_timeout_ms,
};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Where the API lives, e.g. `https://api.openai.com/v1`; actions append
    /// `/chat/completions` and `/embeddings`. Its key is sent as `Authorization: Bearer`;
    /// servers on a private network often need none.
    pub endpoint: Endpoint,
    pub chat_model: Option<String>,
    pub embedding_model: Option<String>,
}

/// The tenant's server: nothing (not configured: calls answer provider_not_configured), or at
/// least base_url.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = switchyard_spi::unconfigured_or_complete)]
pub struct OpenAiConfigFields {
    /// The API's base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1.
    #[schemars(regex(pattern = BASE_URL_PATTERN))]
    base_url: String,
    /// A secret:// reference to the API key, sent as a bearer token; omit for servers that
    /// need none.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    api_key: Option<String>,
    /// The model chat uses, e.g. gpt-4o-mini; without it chat answers
    /// provider_not_configured.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 256))]
    chat_model: Option<String>,
    /// The model embed uses, e.g. text-embedding-3-small; without it embed answers
    /// provider_not_configured.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 256))]
    embedding_model: Option<String>,
    /// How long one request to the server may take, in milliseconds; a streamed chat may
    /// take this long for its first piece and again between any two.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = MIN_TIMEOUT_MS, max = MAX_TIMEOUT_MS))]
    timeout_ms: u64,
}

/// Reads a resolved config. An empty object is `None`: the tenant has not configured a
/// server; the instance still starts (the catalog must list it for every tenant) and its
/// calls say what to configure.
pub fn parse(config: Value) -> Result<Option<OpenAiConfig>, ProviderError> {
    if config.as_object().is_some_and(|fields| fields.is_empty()) {
        return Ok(None);
    }
    let raw: OpenAiConfigFields = parse_config(config)?;
    Ok(Some(OpenAiConfig {
        endpoint: Endpoint::parse(&raw.base_url, raw.api_key, raw.timeout_ms)?,
        chat_model: raw.chat_model,
        embedding_model: raw.embedding_model,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use switchyard_contracts::schema::Compiled;
    use switchyard_spi::ErrorCode;

    use super::*;

    fn derived() -> Value {
        switchyard_spi::config_schema::<OpenAiConfigFields>()
    }

    #[test]
    fn empty_is_unconfigured_and_the_schema_takes_only_key_references() {
        assert!(parse(json!({})).unwrap().is_none());
        let schema = Compiled::new(&derived(), "ai/openai#config").unwrap();
        assert!(schema.check(&json!({})).is_empty());
        let stored = json!({"base_url": "https://api.openai.com/v1", "api_key": "secret://env/OPENAI_API_KEY", "chat_model": "gpt-4o-mini"});
        assert!(schema.check(&stored).is_empty());
        for accepted in [
            "http://[::1]:11434/v1",
            "http://127.0.0.1:11434",
            "https://api.openai.com/v1?x=1",
        ] {
            assert!(
                schema.check(&json!({"base_url": accepted})).is_empty(),
                "{accepted}"
            );
        }
        assert!(
            !schema
                .check(&json!({"base_url": "https://api.openai.com/v1", "api_key": "sk-plain"}))
                .is_empty()
        );
        for refused in [
            json!({"chat_model": "gpt-4o-mini"}),
            json!({"base_url": "ftp://x"}),
            json!({"base_url": "http://"}),
            json!({"base_url": "http:///v1"}),
            json!({"base_url": "http://user:pw@x/v1"}),
            json!({"base_url": "http://x", "api_key": "secret://"}),
            json!({"base_url": "http://x", "api_key": "secret://env/"}),
            json!({"base_url": "http://x", "api_key": "secret://vault/kv/path"}),
            json!({"base_url": null}),
            json!({"base_url": "http://x", "chat_model": ""}),
            json!({"base_url": "http://x", "timeout_ms": 999}),
            json!({"base_url": "http://x", "timeout_ms": 28_001}),
            json!({"base_url": "http://x", "organisation": "o"}),
        ] {
            assert!(!schema.check(&refused).is_empty(), "{refused}");
        }
        assert_eq!(derived()["properties"]["api_key"]["x-secret"], json!(true));
    }

    #[test]
    fn a_resolved_config_reads_and_never_shows_its_key() {
        let config =
            parse(json!({"base_url": "http://127.0.0.1:11434/v1/", "api_key": "sk-very-secret"}))
                .unwrap()
                .unwrap();
        assert_eq!(
            config.endpoint.base_url.as_str(),
            "http://127.0.0.1:11434/v1"
        );
        assert_eq!(
            config.endpoint.timeout,
            Duration::from_millis(crate::upstream::config::DEFAULT_TIMEOUT_MS)
        );
        assert!(!format!("{config:?}").contains("very-secret"));
    }

    #[test]
    fn bad_fields_are_config_invalid_without_echoing_the_key() {
        let schema = Compiled::new(&derived(), "ai/openai#config").unwrap();
        for (bad, pointer, code) in [
            (
                json!({"base_url": "ftp://x"}),
                "/base_url",
                ErrorCode::ConfigInvalid,
            ),
            (
                json!({"base_url": "http://x", "timeout_ms": 60000}),
                "/timeout_ms",
                ErrorCode::ConfigInvalid,
            ),
            // What the schema accepts and only the code refuses is 422.
            (
                json!({"base_url": "http://x", "api_key": "secret://env/NOT_RESOLVED"}),
                "/api_key",
                ErrorCode::ConfigUnprocessable,
            ),
            (
                json!({"base_url": "http://1.2.3.999/v1"}),
                "/base_url",
                ErrorCode::ConfigUnprocessable,
            ),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.code, code, "{bad}");
            assert_eq!(
                schema.check(&bad).is_empty(),
                code == ErrorCode::ConfigUnprocessable,
                "{bad}"
            );
            assert_eq!(err.errors[0].pointer, pointer, "{bad}");
            assert!(!err.detail.contains("NOT_RESOLVED"));
        }
    }
}
