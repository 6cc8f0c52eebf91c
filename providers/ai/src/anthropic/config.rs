//! Per-tenant config of `ai/anthropic`: which server speaking the Anthropic Messages API, with
//! which key, API version and model (the server's fields are read as every upstream engine
//! reads them, see [`crate::upstream::config`]).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use switchyard_spi::{ProviderError, parse_config};

use crate::upstream::config::{
    BASE_URL_PATTERN, Endpoint, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, SECRET_PATTERN, default_timeout_ms,
};

/// The Messages API's version every tenant gets unless it names another: the one the API
/// has been stable at since its release.
const DEFAULT_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens` on every request; the domain leaves it optional.
const DEFAULT_MAX_TOKENS: u32 = 1024;
/// The domain's own bound on `max_tokens`.
const MAX_MAX_TOKENS: u32 = 32_768;

#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// Where the API lives, e.g. `https://api.anthropic.com`; actions append `/v1/messages`.
    /// Its key is sent as `x-api-key`.
    pub endpoint: Endpoint,
    /// Sent as `anthropic-version`.
    pub version: String,
    pub chat_model: Option<String>,
    pub default_max_tokens: u32,
}

/// The tenant's server: nothing (not configured: calls answer provider_not_configured), or at
/// least base_url.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = switchyard_spi::unconfigured_or_complete)]
pub struct AnthropicConfigFields {
    /// The API's base URL, without /v1: https://api.anthropic.com, or a gateway speaking the
    /// same API.
    #[schemars(regex(pattern = BASE_URL_PATTERN))]
    base_url: String,
    /// A secret:// reference to the API key, sent as x-api-key; omit for a server that needs
    /// none.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    api_key: Option<String>,
    /// The Messages API version, sent as anthropic-version.
    #[serde(default = "default_version")]
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    anthropic_version: String,
    /// The model chat uses, e.g. claude-sonnet-4-5; without it (and without a model in the
    /// call) chat answers provider_not_configured.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 256))]
    chat_model: Option<String>,
    /// The max_tokens sent when a chat names none (Anthropic requires one).
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1, max = MAX_MAX_TOKENS))]
    default_max_tokens: u32,
    /// How long one request to the server may take, in milliseconds; a streamed chat may
    /// take this long for its first piece and again between any two.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = MIN_TIMEOUT_MS, max = MAX_TIMEOUT_MS))]
    timeout_ms: u64,
}

fn default_version() -> String {
    DEFAULT_VERSION.into()
}

fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}

/// Reads a resolved config. An empty object is `None`: the tenant has not configured a
/// server; the instance still starts (the catalog must list it for every tenant) and its
/// calls say what to configure.
pub fn parse(config: Value) -> Result<Option<AnthropicConfig>, ProviderError> {
    if config.as_object().is_some_and(|fields| fields.is_empty()) {
        return Ok(None);
    }
    let raw: AnthropicConfigFields = parse_config(config)?;
    if !(1..=MAX_MAX_TOKENS).contains(&raw.default_max_tokens) {
        return Err(ProviderError::field(
            switchyard_spi::ErrorCode::ConfigInvalid,
            "/default_max_tokens",
            format!("must be between 1 and {MAX_MAX_TOKENS}"),
        ));
    }
    Ok(Some(AnthropicConfig {
        endpoint: Endpoint::parse(&raw.base_url, raw.api_key, raw.timeout_ms)?,
        version: raw.anthropic_version,
        chat_model: raw.chat_model,
        default_max_tokens: raw.default_max_tokens,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use switchyard_contracts::schema::Compiled;
    use switchyard_spi::ErrorCode;

    use super::*;

    fn schema() -> Compiled {
        let derived = switchyard_spi::config_schema::<AnthropicConfigFields>();
        assert_eq!(derived["properties"]["api_key"]["x-secret"], json!(true));
        Compiled::new(&derived, "ai/anthropic#config").unwrap()
    }

    #[test]
    fn empty_is_unconfigured_and_defaults_fill_the_rest() {
        assert!(parse(json!({})).unwrap().is_none());
        let schema = schema();
        assert!(schema.check(&json!({})).is_empty());
        let stored = json!({"base_url": "https://api.anthropic.com", "api_key": "secret://env/ANTHROPIC_API_KEY",
                            "chat_model": "claude-sonnet-4-5", "anthropic_version": "2023-06-01"});
        assert!(schema.check(&stored).is_empty());
        let config =
            parse(json!({"base_url": "https://api.anthropic.com/", "api_key": "sk-ant-5ecret"}))
                .unwrap()
                .unwrap();
        assert_eq!(
            config.endpoint.url("v1/messages"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(config.version, "2023-06-01");
        assert_eq!(config.default_max_tokens, 1024);
        assert_eq!(config.endpoint.timeout, Duration::from_millis(25_000));
        assert!(config.chat_model.is_none());
        assert!(!format!("{config:?}").contains("5ecret"));
    }

    #[test]
    fn the_schema_refuses_what_anthropic_would_and_the_code_what_it_cannot_state() {
        let schema = schema();
        for refused in [
            json!({"chat_model": "claude"}),
            json!({"base_url": "https://api.anthropic.com", "api_key": "sk-ant-plain"}),
            json!({"base_url": "https://api.anthropic.com", "anthropic_version": "latest"}),
            json!({"base_url": "https://api.anthropic.com", "anthropic_version": "2023-06-01\r\nx: y"}),
            json!({"base_url": "https://api.anthropic.com", "default_max_tokens": 0}),
            json!({"base_url": "https://api.anthropic.com", "default_max_tokens": 32_769}),
            json!({"base_url": "https://api.anthropic.com", "timeout_ms": 28_001}),
            json!({"base_url": "https://api.anthropic.com", "organization": "o"}),
        ] {
            assert!(!schema.check(&refused).is_empty(), "{refused}");
        }
        for (bad, pointer, code) in [
            (
                json!({"base_url": "https://api.anthropic.com", "default_max_tokens": 0}),
                "/default_max_tokens",
                ErrorCode::ConfigInvalid,
            ),
            (
                json!({"base_url": "https://api.anthropic.com", "api_key": "secret://env/NOT_RESOLVED"}),
                "/api_key",
                ErrorCode::ConfigUnprocessable,
            ),
            (
                json!({"base_url": "http://1.2.3.999"}),
                "/base_url",
                ErrorCode::ConfigUnprocessable,
            ),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.code, code, "{bad}");
            assert_eq!(err.errors[0].pointer, pointer, "{bad}");
            assert!(!err.detail.contains("NOT_RESOLVED"));
        }
    }
}
