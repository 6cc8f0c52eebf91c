//! The config every engine that talks to a tenant's server shares: where the server is, the
//! key it takes and how long one request may take. Each engine declares these fields in its
//! own config schema (with its own examples) and reads them here, so they check alike.
//!
//! The stored config holds the key as a `secret://` reference (the schema admits nothing
//! else); the factory gets the resolved key. Nothing here ever shows it.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use switchyard_spi::{ErrorCode, ProviderError};

pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 25_000;
/// Below the runtime's 30 s call timeout, so a slow server is reported as this provider's
/// `timeout` rather than cut off by the runtime.
pub(crate) const MAX_TIMEOUT_MS: u64 = 28_000;
pub(crate) const MIN_TIMEOUT_MS: u64 = 1_000;

/// What the schema publishes of `base_url`: http(s), a host (a name of letters, digits, dots
/// and dashes, or a bracketed IPv6 address), no credentials, an optional port. What it cannot
/// state (a name the URL standard refuses, a port past 65535) is 422 `config_unprocessable`.
pub(crate) const BASE_URL_PATTERN: &str =
    r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$";
/// A `secret://` reference as the runtime's resolver parses it: `env/NAME`, `file/<path>` or
/// `vault/<mount>/<path>#<key>`.
pub(crate) const SECRET_PATTERN: &str =
    r"^secret://(env/[^/]+|file/[\s\S]*|vault/[^/#]+/[^#]+#[\s\S]+)$";

pub(crate) fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// A resolved API key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// The tenant's server as a config names it, checked.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Without a trailing `/`: paths are appended to it.
    pub base_url: Url,
    pub api_key: Option<ApiKey>,
    pub timeout: Duration,
}

impl Endpoint {
    /// Checks what the schema let through but could not state: a URL the URL standard
    /// accepts, a timeout in range, a key reference that resolved.
    pub(crate) fn parse(
        base_url: &str,
        api_key: Option<String>,
        timeout_ms: u64,
    ) -> Result<Endpoint, ProviderError> {
        // A URL the schema's pattern accepts and the URL standard refuses is 422; one the
        // pattern refuses (another scheme) was refused by the runtime's schema check already.
        let code = if base_url.starts_with("http://") || base_url.starts_with("https://") {
            ErrorCode::ConfigUnprocessable
        } else {
            ErrorCode::ConfigInvalid
        };
        let base_url = Url::parse(base_url.trim_end_matches('/'))
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| {
                ProviderError::field(code, "/base_url", "must be an http:// or https:// URL")
            })?;
        if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/timeout_ms",
                format!("must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}"),
            ));
        }
        let api_key = api_key.map(ApiKey);
        if api_key
            .as_ref()
            .is_some_and(|key| key.0.is_empty() || key.0.starts_with("secret://"))
        {
            // The schema sees the reference, never what it resolved to.
            return Err(ProviderError::field(
                ErrorCode::ConfigUnprocessable,
                "/api_key",
                "the API key reference did not resolve to a key",
            ));
        }
        Ok(Endpoint {
            base_url,
            api_key,
            timeout: Duration::from_millis(timeout_ms),
        })
    }

    /// `<base_url>/<path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.as_str().trim_end_matches('/'))
    }
}
