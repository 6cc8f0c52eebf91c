#![doc = include_str!("docs.md")]

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::domains;
use switchyard_egress::Egress;
use switchyard_identity::Identity;
use switchyard_identity::oidc::OidcVerifier;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
};

/// What an unconfigured tenant is told, on every call and in its health.
const UNCONFIGURED: &str =
    "auth/jwt is not configured for this tenant: configure issuer, audience and jwks_url";

/// Describes the engine; every tenant's verifier lives in its own instance, because each
/// tenant trusts its own identity provider.
pub struct JwtFactory {
    descriptor: ProviderDescriptor,
    /// The operator's egress ceiling: a tenant's `jwks_url` is the tenant's to choose, so its
    /// fetches must not reach the platform's own network.
    egress: EgressCeiling,
}

impl Default for JwtFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl JwtFactory {
    pub fn new() -> Self {
        JwtFactory {
            descriptor: ProviderDescriptor {
                domain: "auth".into(),
                name: "jwt".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "Verifies and introspects OIDC tokens of the tenant's identity provider."
                    .into(),
                capabilities: vec!["oidc".into(), "jwks_rotation".into()],
                config_schema: config::schema(),
                actions: domains::actions_named("auth", &["verify", "introspect"]),
            },
            egress: EgressCeiling::default(),
        }
    }

    /// Holds every tenant's JWKS fetches to the operator's egress ceiling (by default: no
    /// loopback, private or link-local address).
    pub fn with_egress(mut self, ceiling: &EgressCeiling) -> Self {
        self.egress = ceiling.clone();
        self
    }
}

#[async_trait]
impl ProviderFactory for JwtFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let idp = match config::parse(ctx.config)? {
            None => None,
            Some(config) => {
                // Refused at configure: a key server whose address the operator does not
                // allow. The verifier's client checks again on every fetch.
                let url = config::jwks_url(&config)?;
                Egress::new(&self.egress)
                    .vet_url(&url)
                    .await
                    .map_err(|refusal| refusal.at("/jwks_url"))?;
                Some(Idp {
                    issuer: config.issuer.clone(),
                    verifier: OidcVerifier::new(config, &self.egress)
                        .map_err(|e| ProviderError::internal(e.to_string()))?,
                })
            }
        };
        Ok(Arc::new(JwtVerifier {
            tenant: ctx.tenant,
            idp,
        }))
    }
}

/// The identity provider one tenant trusts. The verifier owns the key cache, so a tenant's
/// calls share one cache and one JWKS refresh rate limit.
struct Idp {
    issuer: String,
    verifier: OidcVerifier,
}

struct JwtVerifier {
    tenant: TenantId,
    /// `None` until the tenant configures its identity provider.
    idp: Option<Idp>,
}

#[derive(Deserialize)]
struct TokenParams {
    token: String,
}

/// The verdict on one token. A refusal is an answer, not an error: the caller asked whether
/// the token is good, and "no" is what it needs to know.
enum Outcome {
    Accepted {
        identity: Identity,
        claims: Map<String, Value>,
    },
    Refused {
        code: ErrorCode,
        detail: String,
    },
}

impl JwtVerifier {
    async fn check(&self, token: &str) -> Result<Outcome, ProviderError> {
        let idp = self
            .idp
            .as_ref()
            .ok_or_else(|| ProviderError::new(ErrorCode::ProviderNotConfigured, UNCONFIGURED))?;
        let identity = match idp.verifier.verify(token).await {
            Ok(identity) => identity,
            Err(problem)
                if matches!(
                    problem.code,
                    ErrorCode::TokenInvalid | ErrorCode::TokenExpired
                ) =>
            {
                return Ok(Outcome::Refused {
                    code: problem.code,
                    detail: problem.detail,
                });
            }
            // The key server's address became one the egress guard refuses (its DNS answer
            // changed since configure): the tenant's config is at fault.
            Err(problem) if problem.code == ErrorCode::EgressForbidden => {
                return Err(ProviderError::field(
                    ErrorCode::EgressForbidden,
                    "/jwks_url",
                    problem.detail,
                )
                .with_retryable(false));
            }
            // The only other failure is the identity provider's keys being out of reach: an
            // outage of this provider's dependency, which the caller may retry.
            Err(problem) => {
                return Err(
                    ProviderError::unavailable(problem.detail).with_retryable(problem.retryable)
                );
            }
        };
        // A genuine token of another tenant is still refused: a tenant must not learn who is
        // behind another tenant's tokens, nor use them as its own callers' identities.
        if identity.tenant != self.tenant {
            return Ok(Outcome::Refused {
                code: ErrorCode::TenantForbidden,
                detail: "the token was issued for another tenant".into(),
            });
        }
        // The signature over exactly these bytes has just been verified, so reading the claims
        // without verifying again is safe; they give introspect the registered claims that
        // `Identity` leaves out.
        let claims = jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|e| {
            ProviderError::internal(format!("verified token claims unreadable: {e}"))
        })?;
        Ok(Outcome::Accepted { identity, claims })
    }
}

fn verify_result(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Accepted { identity, .. } => json!({
            "valid": true,
            "identity": {
                "tenant": identity.tenant.as_str(),
                "subject": identity.subject,
                "scopes": identity.scopes.as_list(),
                "roles": identity.roles,
            },
            "error": null,
        }),
        Outcome::Refused { code, detail } => json!({
            "valid": false,
            "identity": null,
            "error": {"code": code.as_str(), "detail": detail},
        }),
    }
}

/// RFC 7662: an inactive token says nothing but `active: false`, whatever the reason, so
/// introspection cannot be used to probe why another tenant's token is refused.
fn introspect_result(outcome: Outcome) -> Value {
    let Outcome::Accepted { identity, claims } = outcome else {
        return json!({"active": false});
    };
    let mut result = Map::new();
    result.insert("active".into(), Value::Bool(true));
    if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
        result.insert("sub".into(), sub.into());
    }
    result.insert("tenant".into(), identity.tenant.as_str().into());
    result.insert("scope".into(), identity.scopes.as_list().join(" ").into());
    result.insert("roles".into(), identity.roles.into());
    for name in ["exp", "iat"] {
        if let Some(at) = claims.get(name).and_then(numeric_date) {
            result.insert(name.into(), at.into());
        }
    }
    if let Some(iss) = claims.get("iss").and_then(Value::as_str) {
        result.insert("iss".into(), iss.into());
    }
    if let Some(aud) = claims.get("aud").filter(|aud| is_audience(aud)) {
        result.insert("aud".into(), aud.clone());
    }
    Value::Object(result)
}

/// A JWT NumericDate in whole seconds; RFC 7519 allows fractions, which introspection drops.
fn numeric_date(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_f64().map(|seconds| seconds.floor() as i64))
}

fn is_audience(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    }
}

#[async_trait]
impl Provider for JwtVerifier {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "verify" => {
                let p: TokenParams = parse_params(call.params)?;
                Ok(verify_result(self.check(&p.token).await?))
            }
            "introspect" => {
                let p: TokenParams = parse_params(call.params)?;
                Ok(introspect_result(self.check(&p.token).await?))
            }
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("auth/jwt has no action {other}"),
            )),
        }
    }

    /// Reports the configuration only: fetching keys here would let health polling hit the
    /// tenant's identity provider, and key outages already surface on calls.
    async fn health(&self) -> Health {
        let (status, detail) = match &self.idp {
            Some(idp) => (
                HealthStatus::Up,
                format!("trusts tokens issued by {}", idp.issuer),
            ),
            None => (HealthStatus::Down, UNCONFIGURED.to_owned()),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: "identity_provider".into(),
            status,
            detail: Some(detail),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates_accept_fractions_and_refuse_other_types() {
        assert_eq!(numeric_date(&json!(1700000000)), Some(1700000000));
        assert_eq!(numeric_date(&json!(1700000000.9)), Some(1700000000));
        assert_eq!(numeric_date(&json!("1700000000")), None);
    }

    #[test]
    fn audiences_are_a_string_or_strings() {
        assert!(is_audience(&json!("erp")));
        assert!(is_audience(&json!(["erp", "crm"])));
        assert!(!is_audience(&json!(["erp", 1])));
        assert!(!is_audience(&json!(7)));
    }
}
