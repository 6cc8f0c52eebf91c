//! The auth domain's params and results (`contracts/schemas/domains/auth.json`) as Rust
//! types, shared by every engine so that they read and answer exactly the same shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `verify` and `introspect`.
#[derive(Deserialize)]
pub(crate) struct TokenParams {
    pub(crate) token: String,
}

/// Whether a token is good. A refusal is an answer, not an error: `valid` is false, `error`
/// says why and `identity` is null.
#[derive(Serialize)]
pub(crate) struct VerifyResult {
    pub(crate) valid: bool,
    pub(crate) identity: Option<VerifiedIdentity>,
    pub(crate) error: Option<TokenError>,
}

#[derive(Serialize)]
pub(crate) struct VerifiedIdentity {
    pub(crate) tenant: String,
    pub(crate) subject: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) roles: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct TokenError {
    /// One of the contract's error codes (`token_invalid`, `token_expired`, …).
    pub(crate) code: &'static str,
    pub(crate) detail: String,
}

/// RFC 7662's answer: an inactive token has `active: false` and nothing else.
#[derive(Default, Serialize)]
pub(crate) struct IntrospectResult {
    pub(crate) active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tenant: Option<String>,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    /// A string or an array of strings, as the token had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<Value>,
}

#[derive(Deserialize)]
pub(crate) struct EvaluateParams {
    pub(crate) input: Map<String, Value>,
}

#[derive(Serialize)]
pub(crate) struct EvaluateResult {
    pub(crate) decision: Decision,
    /// Revision of the bundle that decided.
    pub(crate) revision: String,
}

#[derive(Serialize)]
pub(crate) struct Decision {
    pub(crate) allow: bool,
    pub(crate) reasons: Vec<String>,
}
