//! The gateway's config file (TOML), validated before anything starts. Every section is
//! optional: an empty file is the embedded default (API keys only, one local runtime).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchyard_identity::oidc::OidcConfig;

use crate::filters::client_cert::MtlsConfig;
use crate::filters::idempotency::IdempotencyConfig;
use crate::filters::policy::PolicyConfig;
use crate::filters::rate_limit::RateLimitConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub upstreams: UpstreamConfig,
    /// A second, TLS listener that requires client certificates.
    pub mtls: Option<MtlsConfig>,
    /// Accept OIDC bearer tokens from this issuer, besides API keys.
    pub oidc: Option<OidcConfig>,
    /// Per-tenant and per-credential budgets; shared through Redis when `redis_url` is set.
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default)]
    pub idempotency: IdempotencyConfig,
    /// The OPA bundle that decides every request; without it, scopes alone decide.
    pub policy: Option<PolicyConfig>,
    /// The operator's ceilings for every tenant: egress, quotas, secret scope. Read by the
    /// runtime too (`switchyard runtime --config` takes the same file).
    #[serde(default)]
    pub tenancy: switchyard_spi::tenancy::Tenancy,
    /// `[admin]`: the operator plane's settings (a deleted tenant's grace period).
    #[serde(default)]
    pub admin: crate::admin::AdminConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body the gateway forwards; larger → 413 payload_too_large.
    pub max_body_bytes: usize,
    /// How long the runtime may take to answer; longer → 504 timeout. Above the runtime's own
    /// call timeout (30 s) so that its more precise answer normally wins.
    pub upstream_timeout_ms: u64,
    /// On SIGTERM, how long to wait for requests in flight before exiting anyway.
    pub drain_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024 * 1024,
            upstream_timeout_ms: 35_000,
            drain_timeout_ms: 40_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// How often each runtime upstream is probed with `GET /healthz`.
    pub health_check_interval_ms: u64,
    /// How many other upstreams a request may try when one cannot be reached (or, for GET,
    /// fails mid-request).
    pub retries: u32,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            health_check_interval_ms: 1000,
            retries: 2,
        }
    }
}

impl GatewayConfig {
    /// Reads and validates the file; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(GatewayConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Invalid {
            path: path.to_owned(),
            source,
        })
    }
}

/// Why the gateway's config file cannot be used; both name the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_and_unknown_keys_are_refused() {
        let config: GatewayConfig = toml::from_str("").unwrap();
        assert_eq!(config.limits.max_body_bytes, 64 * 1024 * 1024);
        assert!(config.mtls.is_none());
        let err = toml::from_str::<GatewayConfig>("[limits]\nmax_body_byte = 1").unwrap_err();
        assert!(err.to_string().contains("max_body_byte"), "{err}");
    }
}
