#![doc = include_str!("docs.md")]

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use switchyard_contracts::SchemaError;
use switchyard_egress::Egress;
use switchyard_identity::Identity;
use switchyard_identity::oidc::OidcVerifier;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    ErrorCode, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext,
    TenantId,
};

use crate::contract::{IntrospectResult, TokenError, TokenParams, VerifiedIdentity, VerifyResult};
use crate::engine::{Engine, Instance, describe};

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
            descriptor: describe("jwt", &["verify", "introspect"])
                .summary("Verifies and introspects OIDC tokens of the tenant's identity provider.")
                .capabilities(&["oidc", "jwks_rotation"])
                .config::<config::JwtConfig>()
                .build(),
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
        Ok(Arc::new(Instance(JwtVerifier {
            tenant: ctx.tenant,
            idp,
        })))
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
    fn idp(&self) -> Result<&Idp, ProviderError> {
        self.idp
            .as_ref()
            .ok_or_else(|| ProviderError::new(ErrorCode::ProviderNotConfigured, UNCONFIGURED))
    }

    async fn check(&self, token: &str) -> Result<Outcome, ProviderError> {
        let idp = self.idp()?;
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

fn verify_result(outcome: Outcome) -> VerifyResult {
    match outcome {
        Outcome::Accepted { identity, .. } => VerifyResult {
            valid: true,
            identity: Some(VerifiedIdentity {
                tenant: identity.tenant.as_str().to_owned(),
                subject: identity.subject,
                scopes: identity.scopes.as_list().to_vec(),
                roles: identity.roles,
            }),
            error: None,
        },
        Outcome::Refused { code, detail } => VerifyResult {
            valid: false,
            identity: None,
            error: Some(TokenError {
                code: code.as_str(),
                detail,
            }),
        },
    }
}

/// RFC 7662: an inactive token says nothing but `active: false`, whatever the reason, so
/// introspection cannot be used to probe why another tenant's token is refused.
fn introspect_result(outcome: Outcome) -> IntrospectResult {
    let Outcome::Accepted { identity, claims } = outcome else {
        return IntrospectResult::default();
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    IntrospectResult {
        active: true,
        sub: text("sub"),
        tenant: Some(identity.tenant.as_str().to_owned()),
        scope: Some(identity.scopes.as_list().join(" ")),
        roles: Some(identity.roles),
        exp: claims.get("exp").and_then(numeric_date),
        iat: claims.get("iat").and_then(numeric_date),
        iss: text("iss"),
        aud: claims.get("aud").filter(|aud| is_audience(aud)).cloned(),
    }
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
impl Engine for JwtVerifier {
    const NAME: &'static str = "jwt";
    const DEPENDENCY: &'static str = "identity_provider";

    async fn verify(&self, p: TokenParams) -> Result<VerifyResult, ProviderError> {
        Ok(verify_result(self.check(&p.token).await?))
    }

    async fn introspect(&self, p: TokenParams) -> Result<IntrospectResult, ProviderError> {
        Ok(introspect_result(self.check(&p.token).await?))
    }

    /// Reports the configuration only: fetching keys here would let health polling hit the
    /// tenant's identity provider, and key outages already surface on calls.
    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let idp = self.idp()?;
        Ok(Some(format!("trusts tokens issued by {}", idp.issuer)))
    }
}

/// Always hosted: each tenant configures its identity provider, whose key server is held to the
/// operator's egress ceiling.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(
        JwtFactory::new().with_egress(&host.tenancy.egress),
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
