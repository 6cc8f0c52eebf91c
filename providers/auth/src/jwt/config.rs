//! Per-tenant config of `auth/jwt`: the tenant's own identity provider, in the gateway's
//! [`OidcConfig`] format, so a tenant configures token verification once and the gateway and
//! this provider read it the same way.

use reqwest::Url;
use serde_json::{Value, json};
use switchyard_identity::oidc::OidcConfig;
use switchyard_spi::{ErrorCode, ProviderError};

/// Reads a tenant's config. An empty object (a tenant that never configured `auth/jwt`) is
/// `None`: the instance starts, so listing the catalog never fails for that tenant, and its
/// calls answer provider_not_configured until the tenant configures its identity provider.
pub fn parse(config: Value) -> Result<Option<OidcConfig>, ProviderError> {
    if config.as_object().is_some_and(|fields| fields.is_empty()) {
        return Ok(None);
    }
    serde_json::from_value(config)
        .map(Some)
        .map_err(|e| ProviderError::new(ErrorCode::ConfigInvalid, e.to_string()))
}

/// The config's `jwks_url` as a URL; anything else is `config_invalid` at `/jwks_url`.
pub fn jwks_url(config: &OidcConfig) -> Result<Url, ProviderError> {
    Url::parse(&config.jwks_url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| {
            ProviderError::field(
                ErrorCode::ConfigInvalid,
                "/jwks_url",
                "must be an http:// or https:// URL",
            )
        })
}

pub fn schema() -> Value {
    let seconds = |minimum: u64, maximum: u64, default: u64, description: &str| json!({"type": "integer", "minimum": minimum, "maximum": maximum, "default": default, "description": description});
    let claim = |default: &str, description: &str| json!({"type": "string", "minLength": 1, "default": default, "description": description});
    json!({
        "type": "object",
        "additionalProperties": false,
        "anyOf": [
            {"maxProperties": 0, "description": "Not configured: calls answer provider_not_configured."},
            {"required": ["issuer", "audience", "jwks_url"]}
        ],
        "properties": {
            "issuer": {"type": "string", "minLength": 1, "description": "The exact iss the identity provider writes into its tokens."},
            "audience": {"type": "string", "minLength": 1, "description": "The audience a token's aud must contain."},
            "jwks_url": {"type": "string", "pattern": "^https?://", "description": "Where the identity provider publishes its signing keys."},
            "tenant_claim": claim("tenant", "Claim holding the tenant id; it must equal the calling tenant."),
            "roles_claim": claim("roles", "Claim holding the roles, an array of strings."),
            "scopes_claim": claim("scope", "Claim holding the scopes (string or array); scp is read when it is absent."),
            "leeway_secs": seconds(0, 300, 30, "Clock skew tolerated on exp and nbf."),
            "jwks_refresh_min_interval_secs": seconds(1, 3600, 10, "Shortest time between two key fetches caused by unknown kids."),
            "jwks_cache_ttl_secs": seconds(1, 86400, 300, "How long fetched keys are trusted before they are fetched again.")
        }
    })
}

#[cfg(test)]
mod tests {
    use switchyard_contracts::schema::Compiled;

    use super::*;

    #[test]
    fn an_empty_config_is_unconfigured_and_a_partial_one_is_refused() {
        assert_eq!(parse(json!({})).unwrap(), None);
        let partial = parse(json!({"issuer": "https://idp.example"})).unwrap_err();
        assert_eq!(partial.code, ErrorCode::ConfigInvalid);
        let typo = parse(json!({
            "issuer": "i", "audience": "a", "jwks_url": "http://idp/jwks", "tenant_clam": "org"
        }))
        .unwrap_err();
        assert_eq!(typo.code, ErrorCode::ConfigInvalid);
    }

    #[test]
    fn the_schema_admits_exactly_empty_or_complete_configs() {
        let schema = Compiled::new(&schema(), "auth/jwt#config").unwrap();
        let complete = json!({
            "issuer": "https://idp.example", "audience": "erp",
            "jwks_url": "https://idp.example/jwks", "tenant_claim": "org", "leeway_secs": 5
        });
        assert!(schema.check(&json!({})).is_empty());
        assert!(schema.check(&complete).is_empty());
        assert!(parse(complete).unwrap().is_some());
        assert!(
            !schema
                .check(&json!({"issuer": "https://idp.example"}))
                .is_empty()
        );
        assert!(
            !schema
                .check(&json!({"issuer": "i", "audience": "a", "jwks_url": "file:///etc/passwd"}))
                .is_empty()
        );
    }
}
