//! The tenant's API keys over HTTP, answered by the gateway (it holds the platform store):
//! - `GET /keys`: every key of the caller's tenant, newest first — id, scopes, created, last
//!   used, revoked; never a secret or a hash;
//! - `POST /keys` `{"scopes": "invoke"}`: a new key, whose plaintext is in this answer only;
//! - `POST /keys/{id}/revoke`: revokes one; another tenant's key id is `resource_not_found`.
//!
//! Only the `*` scope reaches here (and, with a policy, only a role granted operation `keys`),
//! so no narrower key can mint a wider one. A revoked key stops working within the
//! authenticator's cache TTL.

use http::Method;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem, Scopes, TenantId};
use switchyard_platform_store::PlatformStore;

pub async fn answer(
    method: &Method,
    path: &str,
    body: &[u8],
    tenant: &TenantId,
    store: &PlatformStore,
) -> Result<Value, Problem> {
    let unavailable = |e: switchyard_platform_store::StoreError| {
        tracing::error!(error = %e, "key store failed");
        Problem::new(ErrorCode::Internal, "the key store could not be reached").with_retryable(true)
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["keys"] if method == Method::GET => {
            let keys = store.list_keys(tenant).await.map_err(unavailable)?;
            let keys: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({"id": k.id, "scopes": k.scopes.to_header_value(),
                           "created_at": k.created_at, "last_used_at": k.last_used_at,
                           "revoked_at": k.revoked_at})
                })
                .collect();
            Ok(json!({"keys": keys}))
        }
        ["keys"] => {
            let scopes = requested_scopes(body)?;
            let created = store
                .create_key(tenant, &scopes)
                .await
                .map_err(unavailable)?;
            Ok(json!({"id": created.id, "key": created.plaintext,
                      "scopes": scopes.to_header_value()}))
        }
        ["keys", id, "revoke"] => {
            if store.revoke_key(tenant, id).await.map_err(unavailable)? {
                Ok(json!({"id": id, "revoked": true}))
            } else {
                Err(Problem::new(
                    ErrorCode::ResourceNotFound,
                    format!("no live key {id} in this tenant"),
                ))
            }
        }
        _ => Err(Problem::new(
            ErrorCode::RouteNotFound,
            format!("no route for {path}"),
        )),
    }
}

fn requested_scopes(body: &[u8]) -> Result<Scopes, Problem> {
    let invalid = |detail: String| {
        Problem::new(ErrorCode::ParamsInvalid, "the new key's scopes are invalid").with_errors(
            vec![FieldError {
                pointer: "/scopes".into(),
                detail,
            }],
        )
    };
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not JSON: {e}"),
        )
    })?;
    // The published CreateKeyRequest takes `scopes` only; a typo such as `scope` is refused
    // rather than ignored.
    if let Some(extra) = request
        .as_object()
        .and_then(|fields| fields.keys().find(|name| *name != "scopes"))
    {
        return Err(Problem::new(
            ErrorCode::ParamsInvalid,
            format!("{extra:?} is not an accepted property"),
        )
        .with_errors(vec![FieldError {
            pointer: format!("/{}", extra.replace('~', "~0").replace('/', "~1")),
            detail: format!("{extra:?} is not an accepted property"),
        }]));
    }
    let scopes = request["scopes"]
        .as_str()
        .ok_or_else(|| invalid("a string such as \"invoke\" or \"read,audit\"".into()))?;
    Scopes::parse(scopes).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_must_be_a_known_list() {
        assert_eq!(
            requested_scopes(br#"{"scopes": "read,invoke:db"}"#)
                .unwrap()
                .as_list(),
            ["read", "invoke:db"]
        );
        for bad in [&br#"{"scopes": "root"}"#[..], br#"{"scopes": 7}"#, b"{}"] {
            let problem = requested_scopes(bad).unwrap_err();
            assert_eq!(problem.code, ErrorCode::ParamsInvalid);
            assert_eq!(problem.errors[0].pointer, "/scopes");
        }
        let typo = requested_scopes(br#"{"scopes": "read", "scope": "*"}"#).unwrap_err();
        assert_eq!(typo.code, ErrorCode::ParamsInvalid);
        assert_eq!(typo.errors[0].pointer, "/scope");
        assert_eq!(
            requested_scopes(b"scopes=read").unwrap_err().code,
            ErrorCode::RequestInvalid
        );
    }
}
