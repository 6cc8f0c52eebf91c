//! The platform operator's plane, `/admin/*`, answered by the gateway (it holds the platform
//! store, the tenant gate and the policy):
//! - `GET /admin/tenants`, `POST /admin/tenants` `{"id"}`;
//! - `GET|DELETE /admin/tenants/{t}` (a delete starts the grace period; `resume` undoes it);
//! - `POST /admin/tenants/{t}/suspend|resume`; `GET /admin/tenants/{t}/export`;
//! - `GET|PUT /admin/tenants/{t}/limits`, `GET|PUT /admin/tenants/{t}/policy`;
//! - `GET /admin/tenants/{t}/usage?days=N`; `POST /admin/tenants/{t}/keys` `{"scopes"}`.
//!
//! Only an operator key (`syop_…`, made by `switchyard operator key create`) is admitted: no
//! credentials is 401 `unauthenticated`, anything else — a tenant's key whatever its scopes, an
//! OIDC token, a wrong or revoked operator key — is 403 `operator_only`. Every change is
//! written to the tenant's audit chain with the operator's key id, the request id and the
//! client's address (docs/adr/0040).

mod purge;
mod settings;
mod tenants;

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderValue, Method};
use serde_json::Value;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_platform_store::{AuditEntry, OperatorKey, PlatformStore, StoreError};

use crate::filters::policy::Policy;
use crate::filters::tenant::TenantGate;

pub use purge::TenantPurge;
pub use settings::AdminConfig;

/// What an admin request may touch.
pub struct Plane<'a> {
    pub store: &'a PlatformStore,
    pub gate: &'a Arc<TenantGate>,
    pub limiter: &'a crate::filters::rate_limit::RateLimiter,
    pub policy: Option<&'a Policy>,
    pub config: &'a AdminConfig,
}

/// Who asked, and from where: what every audit record of the request carries.
pub struct Caller {
    pub operator: OperatorKey,
    pub request_id: String,
    pub source: Option<IpAddr>,
}

impl Caller {
    fn audit(&self, tenant: &TenantId, entity: &str, operation: &str) -> AuditEntry {
        AuditEntry {
            tenant: tenant.to_string(),
            actor: format!("operator:{}", self.operator.id),
            entity: entity.to_owned(),
            operation: operation.to_owned(),
            request_id: Some(self.request_id.clone()),
            source: self.source.map(|a| a.to_string()),
            ..AuditEntry::default()
        }
    }
}

/// An answer: its status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer { status: 200, body }
    }
}

/// The operator behind the request's bearer credential, or why there is none.
pub async fn authenticate(
    authorization: Option<&HeaderValue>,
    store: &PlatformStore,
) -> Result<OperatorKey, Problem> {
    let Some(value) = authorization else {
        return Err(Problem::new(
            ErrorCode::Unauthenticated,
            "the operator plane needs an operator key: Authorization: Bearer syop_…",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match store.verify_operator_key(presented).await {
        Ok(Some(operator)) => Ok(operator),
        Ok(None) => Err(Problem::new(
            ErrorCode::OperatorOnly,
            "only a platform operator's key may use /admin",
        )),
        Err(e) => Err(unavailable(e)),
    }
}

pub async fn answer(
    plane: &Plane<'_>,
    caller: &Caller,
    method: &Method,
    segments: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Result<Answer, Problem> {
    match segments {
        ["admin", "tenants"] if method == Method::GET => tenants::list(plane).await,
        ["admin", "tenants"] if method == Method::POST => {
            tenants::create(plane, caller, body).await
        }
        ["admin", "tenants", tenant, rest @ ..] => {
            let tenant = TenantId::parse(tenant).map_err(|e| {
                Problem::new(ErrorCode::ResourceNotFound, format!("no tenant: {e}"))
            })?;
            tenants::exists(plane, &tenant).await?;
            match (rest, method) {
                ([], &Method::GET) => tenants::show(plane, &tenant).await,
                ([], &Method::DELETE) => tenants::delete(plane, caller, &tenant).await,
                (["suspend"], &Method::POST) => tenants::suspend(plane, caller, &tenant).await,
                (["resume"], &Method::POST) => tenants::resume(plane, caller, &tenant).await,
                (["export"], &Method::GET) => tenants::export(plane, &tenant).await,
                (["usage"], &Method::GET) => tenants::usage(plane, &tenant, query).await,
                (["keys"], &Method::POST) => tenants::issue_key(plane, caller, &tenant, body).await,
                (["limits"], &Method::GET) => settings::limits(plane, &tenant).await,
                (["limits"], &Method::PUT) => {
                    settings::set_limits(plane, caller, &tenant, body).await
                }
                (["policy"], &Method::GET) => settings::policy(plane, &tenant).await,
                (["policy"], &Method::PUT) => {
                    settings::set_policy(plane, caller, &tenant, body).await
                }
                ([] | ["suspend" | "resume" | "keys"], _)
                | (["export" | "usage" | "limits" | "policy"], _) => Err(Problem::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{method} is not allowed here"),
                )),
                _ => Err(not_found(segments)),
            }
        }
        ["admin", "tenants"] => Err(Problem::new(
            ErrorCode::MethodNotAllowed,
            "use GET or POST for /admin/tenants",
        )),
        _ => Err(not_found(segments)),
    }
}

fn not_found(segments: &[&str]) -> Problem {
    Problem::new(
        ErrorCode::RouteNotFound,
        format!("no route for /{}", segments.join("/")),
    )
}

fn unavailable(e: StoreError) -> Problem {
    if let StoreError::QuotaExceeded(why) = e {
        return Problem::new(ErrorCode::QuotaExceeded, why);
    }
    tracing::error!(error = %e, "the platform store failed under the operator plane");
    Problem::new(
        ErrorCode::Internal,
        "the platform store could not be reached",
    )
    .with_retryable(true)
}

/// The body as JSON, or `request_invalid` naming what is wrong.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not what this route takes: {e}"),
        )
    })
}

/// Appends to the audit log; a change whose record could not be written is reported, since
/// an operator plane whose actions go unrecorded is not one an auditor can trust.
async fn record(plane: &Plane<'_>, entry: AuditEntry) -> Result<(), Problem> {
    plane
        .store
        .append_audit(entry)
        .await
        .map(|_| ())
        .map_err(|e| {
            tracing::error!(error = %e, "an operator action could not be written to the audit log");
            Problem::new(
                ErrorCode::Internal,
                "the change was made but its audit record could not be written",
            )
            .with_retryable(false)
        })
}
