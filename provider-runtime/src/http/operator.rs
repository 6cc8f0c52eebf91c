//! The platform operator's routes, answered by the runtime itself:
//!
//! - `POST /providers/register` with a remote provider's manifest (JSON) → 201 and the
//!   registration, once the domain's core conformance checks passed against it;
//! - `GET /providers/register` → every registration; `GET /providers/register/{d}/{n}` → one;
//! - `DELETE /providers/register/{d}/{n}` → unlisted, every tenant's instance stopped.
//!
//! There is no operator identity in the platform yet, so these routes take one shared secret:
//! `Authorization: Bearer <SWITCHYARD_OPERATOR_TOKEN>`, compared in constant time (by SHA-256
//! digests, so not even the length leaks). Anything else — no token, another token, a tenant's
//! API key, a request the gateway signed for a tenant — is refused; a runtime without the
//! variable refuses every registration. docs/adr/0022-runtime-registration.md says why.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchyard_contracts::{ErrorCode, Problem};

use super::{RequestBody, json_response, read_body};
use crate::internal_auth::CONTEXT_HEADER;
use crate::runtime::Runtime;

/// The environment variable holding the operator's token.
pub const TOKEN_VARIABLE: &str = "SWITCHYARD_OPERATOR_TOKEN";

/// Shortest token accepted: a guessable one would hand the platform to whoever guesses it.
const MIN_TOKEN_LEN: usize = 16;

/// Largest manifest body; a manifest is a few hundred bytes.
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// The operator's token, kept as its digest; `None` turns registration off.
pub struct OperatorToken(Option<[u8; 32]>);

impl OperatorToken {
    /// From [`TOKEN_VARIABLE`]; unset, empty or too short, registration is off (said once
    /// in the log, since an operator who set a short token expects it to work).
    pub fn from_env() -> Self {
        match std::env::var(TOKEN_VARIABLE) {
            Ok(token) if token.len() >= MIN_TOKEN_LEN => OperatorToken::new(&token),
            Ok(token) if !token.is_empty() => {
                tracing::warn!(
                    "{TOKEN_VARIABLE} is shorter than {MIN_TOKEN_LEN} characters; runtime registration is off"
                );
                OperatorToken(None)
            }
            _ => OperatorToken(None),
        }
    }

    pub fn new(token: &str) -> Self {
        OperatorToken(Some(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether the request is the operator's. `tenant` is set when the request carries a
    /// tenant's verified context (in-process, or signed by the gateway).
    fn admit(&self, headers: &HeaderMap, tenant: bool) -> Result<(), Problem> {
        let refused = |why: &str| {
            Problem::new(
                ErrorCode::OperatorOnly,
                format!(
                    "/providers/register is the platform operator's (Authorization: Bearer \
                     <{TOKEN_VARIABLE}>), not a tenant's; {why}"
                ),
            )
        };
        let Some(expected) = &self.0 else {
            return Err(refused(&format!(
                "this runtime has no {TOKEN_VARIABLE}, so runtime registration is off"
            )));
        };
        if tenant || headers.contains_key(CONTEXT_HEADER) {
            return Err(refused("the request comes with a tenant's credentials"));
        }
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|token| !token.trim().is_empty())
        else {
            return Err(Problem::new(
                ErrorCode::Unauthenticated,
                format!("/providers/register needs Authorization: Bearer <{TOKEN_VARIABLE}>"),
            ));
        };
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        if bool::from(given.ct_eq(expected)) {
            Ok(())
        } else {
            Err(refused(
                "the credentials given are not the operator's token",
            ))
        }
    }
}

/// Answers one request under `/providers/register` (`split` is its path, split).
pub(super) async fn answer(
    runtime: &Runtime,
    token: &OperatorToken,
    req: Request<RequestBody>,
    split: &[&str],
    tenant: bool,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, Problem> {
    token.admit(req.headers(), tenant)?;
    let (parts, body) = req.into_parts();
    let (status, answer) = match (&parts.method, split) {
        (&Method::GET, [_, _]) => (StatusCode::OK, runtime.registrations()),
        (&Method::POST, [_, _]) => {
            let manifest = manifest(&parts.headers, body).await?;
            (
                StatusCode::CREATED,
                runtime.register_remote(manifest).await?,
            )
        }
        (&Method::GET, [_, _, domain, name]) => {
            (StatusCode::OK, runtime.registration(domain, name)?)
        }
        (&Method::DELETE, [_, _, domain, name]) => {
            (StatusCode::OK, runtime.unregister(domain, name).await?)
        }
        (_, [_, _] | [_, _, _, _]) => {
            return Err(Problem::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here", parts.method),
            ));
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::RouteNotFound,
                "no such route under /providers/register",
            ));
        }
    };
    Ok(json_response(
        status,
        Bytes::from(answer.to_string()),
        Some(request_id),
    ))
}

/// The manifest: a JSON object sent as `application/json`.
async fn manifest(headers: &HeaderMap, body: RequestBody) -> Result<Value, Problem> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == "application/json");
    if !json {
        return Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "a manifest is sent as Content-Type: application/json",
        ));
    }
    let body = read_body(body, MAX_MANIFEST_BYTES).await?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(manifest @ Value::Object(_)) => Ok(manifest),
        Ok(_) => Err(Problem::new(
            ErrorCode::ManifestInvalid,
            "the manifest must be a JSON object",
        )),
        Err(e) => Err(Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn only_the_operators_token_is_admitted() {
        let token = OperatorToken::new("operator-token-0123456789");
        assert!(
            token
                .admit(&bearer("operator-token-0123456789"), false)
                .is_ok()
        );
        let code = |r: Result<(), Problem>| r.unwrap_err().code;
        assert_eq!(
            code(token.admit(&bearer("sk_acme_tenantkey"), false)),
            ErrorCode::OperatorOnly
        );
        assert_eq!(
            code(token.admit(&HeaderMap::new(), false)),
            ErrorCode::Unauthenticated
        );
        // The right token beside a tenant's verified context is still a tenant's request.
        assert_eq!(
            code(token.admit(&bearer("operator-token-0123456789"), true)),
            ErrorCode::OperatorOnly
        );
        assert_eq!(
            code(OperatorToken(None).admit(&bearer("operator-token-0123456789"), false)),
            ErrorCode::OperatorOnly
        );
    }
}
