//! OIDC bearer tokens: JWTs signed by the identity provider (IdP), checked against its JWKS.
//!
//! Trust comes from the IdP's published key set alone. A token names its key with `kid`; the
//! key, not the token header, decides the algorithm, so a token cannot talk the verifier into
//! `alg: none` or into using an RSA public key as an HMAC secret. Only RS256, ES256 and EdDSA
//! keys are trusted; symmetric (`oct`) keys and encryption keys in the set are ignored.
//! Header fields that point at other keys (`jku`, `x5u`, an embedded `jwk`) are never used.
//!
//! The key set is cached for [`OidcConfig::jwks_cache_ttl_secs`]. A token signed with a key the
//! cache does not know triggers one refetch (that is how key rotation is picked up), but at most
//! one fetch per [`OidcConfig::jwks_refresh_min_interval_secs`], whoever asks: tokens with
//! made-up `kid`s must not turn the gateway into a load generator against the IdP. Concurrent
//! verifications that all need keys share one fetch.
//!
//! A token that fails any check is `token_invalid` (or `token_expired`), with a detail saying
//! which check failed but never echoing the token. An IdP whose keys cannot be fetched is an
//! outage, not a client error: that answers `internal`, retryable.
//!
//! JWKS fetches go through the platform's egress guard (`switchyard-egress`) with the
//! operator's `[tenancy.egress]` ceiling: a tenant's `auth/jwt` names its own `jwks_url`, which
//! must not reach the platform's network, and the gateway's own issuer is held to the same
//! ceiling. A refused address answers `egress_forbidden` (403, not retryable) pointing at
//! `jwks_url`; no error quotes the URL or the IdP's answer.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_contracts::{ErrorCode, FieldError, Problem, Scopes, TenantId};
use switchyard_egress::{Egress, Redirects, Refusal};
use switchyard_spi::tenancy::EgressCeiling;
use tokio::sync::Mutex;

use crate::Identity;

/// How long one JWKS request may take. Verifications waiting for keys wait this long at worst,
/// so it stays well below a client's patience.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The claim some IdPs (Azure AD, Okta) put scopes in, as an array, when `scope` is absent.
const SCP_CLAIM: &str = "scp";

/// Where the IdP is and how its tokens map onto an [`Identity`].
/// Its JSON Schema (derived) is `auth/jwt`'s tenant config schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The exact `iss` the IdP writes into its tokens; any other issuer is refused.
    #[schemars(length(min = 1))]
    pub issuer: String,
    /// The audience the gateway answers to; a token's `aud` (string or array) must contain it,
    /// so tokens minted for another service of the same IdP are refused.
    #[schemars(length(min = 1))]
    pub audience: String,
    /// Where the IdP publishes its signing keys (the `jwks_uri` of its discovery document):
    /// http(s), a host (a name of letters, digits, dots and dashes, or a bracketed IPv6
    /// address), no credentials, an optional port.
    #[schemars(regex(
        pattern = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$"
    ))]
    pub jwks_url: String,
    /// The claim holding the tenant id; it must parse as a [`TenantId`].
    #[serde(default = "default_tenant_claim")]
    #[schemars(length(min = 1))]
    pub tenant_claim: String,
    /// The claim holding the caller's roles, an array of strings; absent means no roles.
    #[serde(default = "default_roles_claim")]
    #[schemars(length(min = 1))]
    pub roles_claim: String,
    /// The claim holding the scopes: a space-separated string (RFC 8693) or an array of
    /// strings. When it is absent, an `scp` claim (string or array) is used instead.
    #[serde(default = "default_scopes_claim")]
    #[schemars(length(min = 1))]
    pub scopes_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway_secs")]
    #[schemars(range(max = 300))]
    pub leeway_secs: u64,
    /// The shortest time between two JWKS fetches caused by unknown `kid`s (or by a failed
    /// fetch), in seconds: the bound on how hard bad tokens can make the gateway hit the IdP.
    #[serde(default = "default_jwks_refresh_min_interval_secs")]
    #[schemars(range(min = 1, max = 3600))]
    pub jwks_refresh_min_interval_secs: u64,
    /// How long a fetched key set is trusted before it is fetched again, in seconds; a key the
    /// IdP withdraws stops verifying within this time.
    #[serde(default = "default_jwks_cache_ttl_secs")]
    #[schemars(range(min = 1, max = 86_400))]
    pub jwks_cache_ttl_secs: u64,
}

fn default_tenant_claim() -> String {
    "tenant".to_owned()
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

fn default_scopes_claim() -> String {
    "scope".to_owned()
}

fn default_leeway_secs() -> u64 {
    30
}

fn default_jwks_refresh_min_interval_secs() -> u64 {
    10
}

fn default_jwks_cache_ttl_secs() -> u64 {
    300
}

/// A key from the JWKS together with the one algorithm it may verify.
struct TrustedKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// One successfully fetched key set, replaced wholesale on every fetch so withdrawn keys go.
struct KeySet {
    keys: HashMap<String, Arc<TrustedKey>>,
    fetched_at: Instant,
}

/// Bookkeeping of the single-flight refresh; only touched while its mutex is held.
#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_attempt_failed: bool,
}

/// The verifier could not be built: no HTTP client for JWKS fetches (no TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("the OIDC verifier's HTTP client: {0}")]
pub struct VerifierBuildError(#[source] reqwest::Error);

/// Why a key set could not be fetched.
enum FetchError {
    /// The egress guard refused the JWKS address (or a redirect from it).
    Refused(Refusal),
    /// The IdP is unreachable, answered badly or sent something else than a key set.
    Failed(String),
}

/// Verifies OIDC bearer tokens for one IdP; share one per gateway so its key cache and
/// refresh rate limit are shared too.
pub struct OidcVerifier {
    config: OidcConfig,
    /// Checks the JWKS URL's port and IP literal before each fetch; `http`'s resolver and
    /// redirect policy check the rest.
    egress: Egress,
    http: reqwest::Client,
    /// Read on every verification; written only by the task holding `refresh`.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held across a JWKS fetch, so concurrent verifications queue behind one fetch instead of
    /// each starting their own.
    refresh: Mutex<RefreshState>,
}

impl OidcVerifier {
    /// A verifier whose JWKS fetches are held to the operator's egress `ceiling`. Fails only
    /// when no HTTP client can be built (no TLS backend).
    pub fn new(config: OidcConfig, ceiling: &EgressCeiling) -> Result<Self, VerifierBuildError> {
        let egress = Egress::new(ceiling);
        let http = egress
            .client(Redirects::Checked)
            .build()
            .map_err(VerifierBuildError)?;
        Ok(OidcVerifier {
            config,
            egress,
            http,
            keys: RwLock::new(None),
            refresh: Mutex::new(RefreshState::default()),
        })
    }

    /// Verifies a compact JWS (the bearer token without `Bearer `) and maps its claims.
    pub async fn verify(&self, token: &str) -> Result<Identity, Problem> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("the token is malformed or its header names an unsupported alg")
        })?;
        if header.crit.is_some() {
            return Err(invalid(
                "the token header marks extensions critical, none of which are supported",
            ));
        }
        let kid = header
            .kid
            .as_deref()
            .filter(|kid| !kid.is_empty())
            .ok_or_else(|| invalid("the token header has no kid"))?;
        let trusted = self.key_for(kid).await?;
        if header.alg != trusted.algorithm {
            return Err(invalid(format!(
                "the token header says alg {:?} but its key is for {:?}",
                header.alg, trusted.algorithm
            )));
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &trusted.key,
            &self.validation(trusted.algorithm),
        )
        .map_err(|e| refusal(e.kind()))?
        .claims;
        identity_from_claims(&claims, &self.config)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation
    }

    fn cached(&self) -> Option<Arc<KeySet>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn is_fresh(&self, set: &KeySet) -> bool {
        set.fetched_at.elapsed() < Duration::from_secs(self.config.jwks_cache_ttl_secs)
    }

    /// The trusted key named `kid`, fetching the key set when the cache is empty, expired, or
    /// (rate-limited) does not know the kid.
    async fn key_for(&self, kid: &str) -> Result<Arc<TrustedKey>, Problem> {
        if let Some(set) = self.cached().filter(|set| self.is_fresh(set))
            && let Some(key) = set.keys.get(kid)
        {
            return Ok(Arc::clone(key));
        }

        let mut refresh = self.refresh.lock().await;
        let min_interval = Duration::from_secs(self.config.jwks_refresh_min_interval_secs);
        let attempted_recently = refresh
            .last_attempt
            .is_some_and(|at| at.elapsed() < min_interval);
        // Whoever held the lock before may have just fetched what this call needs.
        match self.cached().filter(|set| self.is_fresh(set)) {
            Some(set) => {
                if let Some(key) = set.keys.get(kid) {
                    return Ok(Arc::clone(key));
                }
                if attempted_recently {
                    return Err(unknown_kid());
                }
            }
            None if attempted_recently && refresh.last_attempt_failed => {
                return Err(keys_unavailable());
            }
            None => {}
        }

        refresh.last_attempt = Some(Instant::now());
        let keys = match self.fetch_keys().await {
            Ok(keys) => keys,
            Err(FetchError::Refused(refusal)) => {
                refresh.last_attempt_failed = true;
                return Err(egress_refused(&refusal));
            }
            Err(FetchError::Failed(reason)) => {
                refresh.last_attempt_failed = true;
                // Without the URL: a tenant's may carry a token.
                tracing::warn!(issuer = %self.config.issuer, %reason, "JWKS fetch failed");
                return Err(keys_unavailable());
            }
        };
        refresh.last_attempt_failed = false;
        let found = keys.get(kid).cloned();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(KeySet {
            keys,
            fetched_at: Instant::now(),
        }));
        found.ok_or_else(unknown_kid)
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<TrustedKey>>, FetchError> {
        let url = Url::parse(&self.config.jwks_url)
            .map_err(|_| FetchError::Failed("jwks_url is not a URL".into()))?;
        // The resolver never sees an IP literal: its range and the port are checked here.
        self.egress.check_url(&url).map_err(FetchError::Refused)?;
        let response = self
            .http
            .get(url)
            .timeout(JWKS_FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| match Refusal::of(&e) {
                Some(refusal) => FetchError::Refused(refusal.clone()),
                None => FetchError::Failed(format!("request failed: {}", e.without_url())),
            })?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Failed(format!(
                "answered {}xx",
                status.as_u16() / 100
            )));
        }
        let set: JwkSet = response
            .json()
            .await
            .map_err(|_| FetchError::Failed("the answer is not a JWK set".into()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.as_deref() else {
                tracing::debug!("JWKS key without kid ignored");
                continue;
            };
            match trust(jwk) {
                Ok(key) => {
                    keys.insert(kid.to_owned(), Arc::new(key));
                }
                Err(reason) => tracing::debug!(kid, reason, "JWKS key ignored"),
            }
        }
        Ok(keys)
    }
}

/// Decides which algorithm a JWK may verify, from its key type and curve; a declared `alg`
/// must agree. Anything outside RS256, ES256 and EdDSA is not trusted at all.
fn trust(jwk: &Jwk) -> Result<TrustedKey, &'static str> {
    if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature) {
        return Err("not a signing key");
    }
    let (algorithm, declared_ok) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        _ => return Err("unsupported key type or curve"),
    };
    if jwk
        .common
        .key_algorithm
        .is_some_and(|declared| declared != declared_ok)
    {
        return Err("declared alg is not supported for this key type");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "malformed key parameters")?;
    Ok(TrustedKey { algorithm, key })
}

/// Maps verified claims onto an [`Identity`]. The signature and the registered claims
/// (`exp`, `nbf`, `iss`, `aud`, `sub` present) have been checked already.
fn identity_from_claims(
    claims: &Map<String, Value>,
    config: &OidcConfig,
) -> Result<Identity, Problem> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|sub| !sub.is_empty())
        .ok_or_else(|| invalid("the token has no sub claim"))?;

    let tenant_claim = &config.tenant_claim;
    let tenant = claims
        .get(tenant_claim)
        .ok_or_else(|| invalid(format!("the token has no {tenant_claim} claim")))?
        .as_str()
        .ok_or_else(|| invalid(format!("the {tenant_claim} claim is not a string")))?;
    let tenant = TenantId::parse(tenant)
        .map_err(|e| invalid(format!("the {tenant_claim} claim is not a tenant id: {e}")))?;

    let (scopes_claim, raw_scopes) = [config.scopes_claim.as_str(), SCP_CLAIM]
        .into_iter()
        .find_map(|name| claims.get(name).map(|value| (name, value)))
        .ok_or_else(|| invalid("the token carries no scopes"))?;
    let scopes = scope_string(raw_scopes)
        .ok_or_else(|| {
            invalid(format!(
                "the {scopes_claim} claim must be a string or an array of strings"
            ))
        })
        .and_then(|raw| {
            Scopes::parse(&raw).map_err(|e| invalid(format!("the {scopes_claim} claim: {e}")))
        })?;

    let roles_claim = &config.roles_claim;
    let roles = match claims.get(roles_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => string_array(value).ok_or_else(|| {
            invalid(format!(
                "the {roles_claim} claim must be an array of strings"
            ))
        })?,
    };

    Ok(Identity {
        tenant,
        subject: format!("oidc:{sub}"),
        scopes,
        roles,
    })
}

/// A scope claim as one space-separated string, the form [`Scopes::parse`] reads.
fn scope_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        other => string_array(other).map(|items| items.join(" ")),
    }
}

fn string_array(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(ErrorCode::TokenInvalid, detail)
}

fn unknown_kid() -> Problem {
    invalid("unknown kid: the identity provider publishes no such key")
}

fn keys_unavailable() -> Problem {
    Problem::new(
        ErrorCode::Internal,
        "identity provider keys could not be fetched",
    )
    .with_retryable(true)
}

/// The egress guard refused the JWKS address: the config is at fault, not the token, and
/// retrying changes nothing.
fn egress_refused(refusal: &Refusal) -> Problem {
    let detail = format!("the egress guard refuses jwks_url: {refusal}");
    Problem::new(ErrorCode::EgressForbidden, detail.clone())
        .with_errors(vec![FieldError {
            pointer: "/jwks_url".into(),
            detail,
        }])
        .with_retryable(false)
}

/// Why `jsonwebtoken` refused a token, in words a client can act on.
fn refusal(kind: &ErrorKind) -> Problem {
    match kind {
        ErrorKind::ExpiredSignature => {
            Problem::new(ErrorCode::TokenExpired, "the token has expired")
        }
        ErrorKind::ImmatureSignature => invalid("the token is not yet valid (nbf)"),
        ErrorKind::InvalidIssuer => invalid("the token comes from another issuer"),
        ErrorKind::InvalidAudience => invalid("the token is meant for another audience"),
        ErrorKind::InvalidSignature => invalid("the token signature does not verify"),
        ErrorKind::InvalidAlgorithm => invalid("the token alg does not match its key"),
        ErrorKind::MissingRequiredClaim(claim) => {
            invalid(format!("the token has no {claim} claim"))
        }
        ErrorKind::InvalidClaimFormat(claim) => invalid(format!("the {claim} claim is malformed")),
        _ => invalid("the token is malformed"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> OidcConfig {
        serde_json::from_value(json!({
            "issuer": "https://idp.example",
            "audience": "switchyard",
            "jwks_url": "http://127.0.0.1:1/jwks",
        }))
        .unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            panic!("claims must be an object")
        };
        map
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let config = config();
        assert_eq!(config.tenant_claim, "tenant");
        assert_eq!(config.roles_claim, "roles");
        assert_eq!(config.scopes_claim, "scope");
        assert_eq!(config.leeway_secs, 30);
        assert_eq!(config.jwks_refresh_min_interval_secs, 10);
        assert_eq!(config.jwks_cache_ttl_secs, 300);
        let typo = serde_json::from_value::<OidcConfig>(json!({
            "issuer": "i", "audience": "a", "jwks_url": "u", "tenant_clam": "org",
        }));
        assert!(typo.is_err());
    }

    #[test]
    fn claims_map_onto_an_identity() {
        let identity = identity_from_claims(
            &claims(json!({
                "sub": "u-1", "tenant": "acme", "scope": "read invoke:db",
                "roles": ["admin", "auditor"],
            })),
            &config(),
        )
        .unwrap();
        assert_eq!(identity.tenant.as_str(), "acme");
        assert_eq!(identity.subject, "oidc:u-1");
        assert_eq!(identity.scopes.as_list(), ["read", "invoke:db"]);
        assert_eq!(identity.roles, ["admin", "auditor"]);
    }

    #[test]
    fn scopes_come_as_string_array_or_scp_and_roles_are_optional() {
        for scopes in [
            json!({ "scope": "read admin" }),
            json!({ "scope": ["read", "admin"] }),
            json!({ "scp": ["read", "admin"] }),
            json!({ "scp": "read admin" }),
        ] {
            let mut map = claims(json!({ "sub": "u", "tenant": "acme" }));
            map.extend(claims(scopes.clone()));
            let identity = identity_from_claims(&map, &config()).unwrap();
            assert_eq!(identity.scopes.as_list(), ["read", "admin"], "{scopes}");
            assert!(identity.roles.is_empty());
        }
    }

    #[test]
    fn bad_claims_are_token_invalid() {
        for bad in [
            json!({ "tenant": "acme", "scope": "read" }),
            json!({ "sub": "", "tenant": "acme", "scope": "read" }),
            json!({ "sub": "u", "scope": "read" }),
            json!({ "sub": "u", "tenant": "Acme!", "scope": "read" }),
            json!({ "sub": "u", "tenant": 7, "scope": "read" }),
            json!({ "sub": "u", "tenant": "acme" }),
            json!({ "sub": "u", "tenant": "acme", "scope": "" }),
            json!({ "sub": "u", "tenant": "acme", "scope": "write" }),
            json!({ "sub": "u", "tenant": "acme", "scope": ["read", 1] }),
            json!({ "sub": "u", "tenant": "acme", "scope": "read", "roles": "admin" }),
        ] {
            let err = identity_from_claims(&claims(bad.clone()), &config()).unwrap_err();
            assert_eq!(err.code, ErrorCode::TokenInvalid, "{bad}");
        }
    }
}
