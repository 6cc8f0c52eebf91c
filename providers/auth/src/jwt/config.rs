//! Per-tenant config of `auth/jwt`: the tenant's own identity provider, in the gateway's
//! [`OidcConfig`] format, so a tenant configures token verification once and the gateway and
//! this provider read it the same way.

use reqwest::Url;
use schemars::JsonSchema;
use serde_json::Value;
use switchyard_identity::oidc::OidcConfig;
use switchyard_spi::{ErrorCode, ProviderError};

/// The tenant's identity provider: nothing (not configured: calls answer
/// provider_not_configured), or at least issuer, audience and jwks_url.
// Only the schema is this type's (the descriptor's); `parse` reads the config as an
// `OidcConfig`, the struct the gateway reads its own identity provider with.
#[derive(JsonSchema)]
#[schemars(transform = switchyard_spi::unconfigured_or_complete)]
pub struct JwtConfig(#[allow(dead_code)] OidcConfig);

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

/// The config's `jwks_url` as a URL. Another scheme is `config_invalid`, as the schema's
/// pattern says; an http(s) URL the standard refuses (a port past 65535, a name that is no
/// host) is `config_unprocessable`, a rule no pattern states (ADR 23). The runtime's schema
/// check has refused the rest of what the pattern refuses before this runs.
pub fn jwks_url(config: &OidcConfig) -> Result<Url, ProviderError> {
    let code = if ["http://", "https://"]
        .iter()
        .any(|scheme| config.jwks_url.starts_with(scheme))
    {
        ErrorCode::ConfigUnprocessable
    } else {
        ErrorCode::ConfigInvalid
    };
    Url::parse(&config.jwks_url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| {
            ProviderError::field(code, "/jwks_url", "must be an http:// or https:// URL")
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::schema::Compiled;

    use super::*;

    fn schema() -> Value {
        switchyard_spi::config_schema::<JwtConfig>()
    }

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
        let minimal = json!({"issuer": "i", "audience": "a", "jwks_url": "http://idp/jwks"});
        for (field, refused) in [
            ("issuer", json!("")),
            ("tenant_claim", json!("")),
            ("leeway_secs", json!(301)),
            ("jwks_refresh_min_interval_secs", json!(0)),
            ("jwks_cache_ttl_secs", json!(86_401)),
            ("tenant_clam", json!("org")),
        ] {
            let mut config = minimal.clone();
            config[field] = refused;
            assert!(!schema.check(&config).is_empty(), "{config}");
        }
        assert!(schema.check(&minimal).is_empty());
        for refused in ["http://", "http:///jwks", "https://user:pw@idp/jwks"] {
            let mut config = minimal.clone();
            config["jwks_url"] = json!(refused);
            assert!(!schema.check(&config).is_empty(), "{config}");
        }
        for accepted in [
            "http://[::1]:8080/jwks",
            "https://idp.example:8443/jwks?x=1",
        ] {
            let mut config = minimal.clone();
            config["jwks_url"] = json!(accepted);
            assert!(schema.check(&config).is_empty(), "{config}");
        }
    }

    /// What the pattern accepts and the URL standard refuses is 422, at the field.
    #[test]
    fn a_jwks_url_the_pattern_accepts_and_the_standard_refuses_is_unprocessable() {
        let schema = Compiled::new(&schema(), "auth/jwt#config").unwrap();
        let config = json!({"issuer": "i", "audience": "a", "jwks_url": "http://1.2.3.999/jwks"});
        assert!(schema.check(&config).is_empty());
        let err = jwks_url(&parse(config).unwrap().unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigUnprocessable);
        assert_eq!(err.errors[0].pointer, "/jwks_url");
        let ftp = json!({"issuer": "i", "audience": "a", "jwks_url": "ftp://idp/jwks"});
        let err = jwks_url(&parse(ftp).unwrap().unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
    }
}
