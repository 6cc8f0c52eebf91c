//! The tenant's API keys over HTTP, answered by the gateway (it holds the platform store):
//! - `GET /keys`: every key of the caller's tenant, newest first — id, scopes, created, last
//!   used, revoked; never a secret or a hash;
//! - `POST /keys` `{"scopes": "invoke"}`: a new key, whose plaintext is in this answer only;
//! - `POST /keys/{id}/revoke`: revokes one; another tenant's key id is `resource_not_found`.
//!
//! Only the `*` scope reaches here (and, with a policy, only a role granted operation `keys`),
//! so no narrower key can mint a wider one. A revoked key stops working within the
//! authenticator's cache TTL.
//!
//! Each creation and revocation is recorded in the tenant's audit log (entity `api_key/<id>`,
//! the key's id and scopes, never its secret), with who asked, the request id and the client's
//! address.

use std::net::IpAddr;

use http::Method;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem, Scopes, TenantId};
use switchyard_platform_store::{AuditEntry, PlatformStore};

/// Who asked, and from where: what the audit record of a key change carries.
pub struct Caller {
    /// The credential's subject (`key:<id>`, an OIDC subject, a certificate's).
    pub subject: String,
    pub request_id: String,
    /// The peer's address as the gateway's socket saw it (a forwarded header could be forged).
    pub source: Option<IpAddr>,
}

impl Caller {
    fn audit(&self, tenant: &TenantId, id: &str, operation: &str, new: Value) -> AuditEntry {
        AuditEntry {
            tenant: tenant.to_string(),
            actor: self.subject.clone(),
            entity: format!("api_key/{id}"),
            operation: operation.into(),
            old: None,
            new: Some(new),
            request_id: Some(self.request_id.clone()),
            source: self.source.map(|a| a.to_string()),
        }
    }
}

pub async fn answer(
    method: &Method,
    path: &str,
    body: &[u8],
    tenant: &TenantId,
    caller: &Caller,
    store: &PlatformStore,
) -> Result<Value, Problem> {
    let unavailable = |e: switchyard_platform_store::StoreError| match e {
        switchyard_platform_store::StoreError::QuotaExceeded(why) => {
            Problem::new(ErrorCode::QuotaExceeded, why)
        }
        e => {
            tracing::error!(error = %e, "key store failed");
            Problem::new(ErrorCode::Internal, "the key store could not be reached")
                .with_retryable(true)
        }
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
            let scopes = scopes.to_header_value();
            let new = json!({"id": created.id, "scopes": scopes});
            if let Err(problem) =
                record(store, caller.audit(tenant, &created.id, "create", new)).await
            {
                // Nobody has seen its secret yet: a key the log does not know never works.
                if let Err(e) = store.revoke_key(tenant, &created.id).await {
                    tracing::error!(error = %e, key = %created.id, "an unrecorded key could not be revoked");
                }
                return Err(problem);
            }
            Ok(json!({"id": created.id, "key": created.plaintext, "scopes": scopes}))
        }
        ["keys", id, "revoke"] => {
            if store.revoke_key(tenant, id).await.map_err(unavailable)? {
                let new = json!({"id": id, "revoked": true});
                record(store, caller.audit(tenant, id, "revoke", new)).await?;
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

/// Appends to the audit log; a change whose record could not be written is reported, as the
/// operator plane reports its own (`crate::admin`).
async fn record(store: &PlatformStore, entry: AuditEntry) -> Result<(), Problem> {
    store.append_audit(entry).await.map(drop).map_err(|e| {
        tracing::error!(error = %e, "a key change could not be written to the audit log");
        Problem::new(
            ErrorCode::Internal,
            "the key change was not recorded in the audit log",
        )
    })
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
