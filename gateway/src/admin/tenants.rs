//! Tenants' lifecycle: create, list, show, suspend, resume, delete (after a grace period),
//! export, usage, and a tenant's first key.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem, Scopes, TenantId};
use switchyard_platform_store::{StoreError, TenantStatus, utc_day};

use super::{Answer, Caller, Plane, json_body, record, unavailable};

/// Days of usage an operator may ask for at once.
const MAX_USAGE_DAYS: u32 = 366;

pub(super) async fn exists(plane: &Plane<'_>, tenant: &TenantId) -> Result<(), Problem> {
    match plane.store.tenant_exists(tenant).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Problem::new(
            ErrorCode::ResourceNotFound,
            format!("no tenant {tenant}"),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

pub(super) async fn list(plane: &Plane<'_>) -> Result<Answer, Problem> {
    let tenants = plane.store.list_tenants().await.map_err(unavailable)?;
    Ok(Answer::ok(json!({ "tenants": tenants })))
}

pub(super) async fn show(plane: &Plane<'_>, tenant: &TenantId) -> Result<Answer, Problem> {
    let store = plane.store;
    let info = store.tenant(tenant).await.map_err(unavailable)?;
    let limits = store.tenant_limits(tenant).await.map_err(unavailable)?;
    let policy = store.tenant_policy(tenant).await.map_err(unavailable)?;
    let stored = store
        .tenant_stored_rows(tenant)
        .await
        .map_err(unavailable)?;
    Ok(Answer::ok(json!({
        "tenant": info,
        "limits": limits,
        "policy": policy.unwrap_or_else(|| json!({})),
        "stored": stored,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: String,
}

pub(super) async fn create(
    plane: &Plane<'_>,
    caller: &Caller,
    body: &[u8],
) -> Result<Answer, Problem> {
    let NewTenant { id } = json_body(body)?;
    let tenant = TenantId::parse_new(&id)
        .map_err(|e| Problem::new(ErrorCode::RequestInvalid, format!("id: {e}")))?;
    match plane.store.create_tenant(&tenant).await {
        Ok(()) => {}
        Err(StoreError::TenantExists(_)) => {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!("tenant {tenant} already exists"),
            ));
        }
        Err(e) => return Err(unavailable(e)),
    }
    let mut entry = caller.audit(&tenant, "tenant", "create");
    entry.new = Some(json!({"id": tenant.as_str(), "status": "active"}));
    record(plane, entry).await?;
    let info = plane.store.tenant(&tenant).await.map_err(unavailable)?;
    Ok(Answer {
        status: 201,
        body: json!({ "tenant": info }),
    })
}

/// Moves the tenant to `status`; the gate in this gateway follows at once, the other replicas'
/// within a second.
async fn transition(
    plane: &Plane<'_>,
    caller: &Caller,
    tenant: &TenantId,
    status: TenantStatus,
    delete_after: Option<String>,
    operation: &str,
) -> Result<Answer, Problem> {
    let before = plane
        .store
        .set_tenant_status(tenant, status, delete_after.as_deref())
        .await
        .map_err(unavailable)?;
    plane.gate.set(tenant.as_str(), status);
    let mut entry = caller.audit(tenant, "tenant", operation);
    entry.old = Some(json!({"status": before.status, "delete_after": before.delete_after}));
    entry.new = Some(json!({"status": status, "delete_after": delete_after}));
    record(plane, entry).await?;
    let info = plane.store.tenant(tenant).await.map_err(unavailable)?;
    Ok(Answer::ok(json!({ "tenant": info })))
}

pub(super) async fn suspend(
    plane: &Plane<'_>,
    caller: &Caller,
    tenant: &TenantId,
) -> Result<Answer, Problem> {
    transition(
        plane,
        caller,
        tenant,
        TenantStatus::Suspended,
        None,
        "suspend",
    )
    .await
}

pub(super) async fn resume(
    plane: &Plane<'_>,
    caller: &Caller,
    tenant: &TenantId,
) -> Result<Answer, Problem> {
    transition(plane, caller, tenant, TenantStatus::Active, None, "resume").await
}

/// Starts the deletion: calls are refused from now on, and the tenant's platform rows are
/// purged once the grace period has passed, unless an operator resumes it first. The export
/// stays readable until then.
pub(super) async fn delete(
    plane: &Plane<'_>,
    caller: &Caller,
    tenant: &TenantId,
) -> Result<Answer, Problem> {
    let after = time::OffsetDateTime::now_utc()
        + time::Duration::seconds(plane.config.deletion_grace_seconds as i64);
    let after = after
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Problem::new(ErrorCode::Internal, e.to_string()))?;
    let mut answer = transition(
        plane,
        caller,
        tenant,
        TenantStatus::Deleting,
        Some(after),
        "delete",
    )
    .await?;
    answer.status = 202;
    answer.body["export"] = json!(format!("/admin/tenants/{tenant}/export"));
    Ok(answer)
}

/// Everything the platform keeps of the tenant, secrets excepted (configs hold references,
/// keys only their ids and scopes): what an operator hands over before the purge.
pub(super) async fn export(plane: &Plane<'_>, tenant: &TenantId) -> Result<Answer, Problem> {
    let store = plane.store;
    let keys: Vec<Value> = store
        .list_keys(tenant)
        .await
        .map_err(unavailable)?
        .iter()
        .map(|k| {
            json!({"id": k.id, "scopes": k.scopes.to_header_value(), "created_at": k.created_at,
                   "revoked_at": k.revoked_at, "last_used_at": k.last_used_at})
        })
        .collect();
    let configs = store
        .current_configs_of_tenant(tenant)
        .await
        .map_err(unavailable)?;
    let configs: Vec<Value> = configs
        .into_iter()
        .map(|c| {
            json!({"domain": c.domain, "name": c.name, "version": c.version,
                   "updated_at": c.updated_at,
                   "config": switchyard_contracts::masking::mask_secrets(c.values)})
        })
        .collect();
    Ok(Answer::ok(json!({
        "tenant": store.tenant(tenant).await.map_err(unavailable)?,
        "exported_at": now(),
        "keys": keys,
        "configs": configs,
        "limits": store.tenant_limits(tenant).await.map_err(unavailable)?,
        "policy": store.tenant_policy(tenant).await.map_err(unavailable)?.unwrap_or_else(|| json!({})),
        "usage": store.tenant_usage(tenant, "0000-00-00").await.map_err(unavailable)?,
    })))
}

pub(super) async fn usage(
    plane: &Plane<'_>,
    tenant: &TenantId,
    query: Option<&str>,
) -> Result<Answer, Problem> {
    let mut days = 30;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match (key.as_ref(), value.parse::<u32>()) {
            ("days", Ok(n)) if (1..=MAX_USAGE_DAYS).contains(&n) => days = n,
            _ => {
                return Err(Problem::new(
                    ErrorCode::RequestInvalid,
                    format!("unknown or bad parameter {key}; use days=1..{MAX_USAGE_DAYS}"),
                ));
            }
        }
    }
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let since = utc_day(now_ms - i64::from(days - 1) * 86_400_000);
    let per_day = plane
        .store
        .tenant_usage(tenant, &since)
        .await
        .map_err(unavailable)?;
    let total = per_day
        .iter()
        .fold(json!({"calls": 0, "errors": 0, "tokens": 0}), |t, d| {
            json!({"calls": t["calls"].as_i64().unwrap_or(0) + d.calls,
               "errors": t["errors"].as_i64().unwrap_or(0) + d.errors,
               "tokens": t["tokens"].as_i64().unwrap_or(0) + d.tokens})
        });
    let stored = plane
        .store
        .tenant_stored_rows(tenant)
        .await
        .map_err(unavailable)?;
    Ok(Answer::ok(json!({
        "tenant": tenant.as_str(), "since": since, "days": per_day, "total": total,
        "stored": stored,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    scopes: String,
}

/// A key for the tenant, e.g. its first admin's: the plaintext is in this answer only.
pub(super) async fn issue_key(
    plane: &Plane<'_>,
    caller: &Caller,
    tenant: &TenantId,
    body: &[u8],
) -> Result<Answer, Problem> {
    let NewKey { scopes } = json_body(body)?;
    let scopes = Scopes::parse(&scopes)
        .map_err(|e| Problem::new(ErrorCode::RequestInvalid, format!("scopes: {e}")))?;
    let created = plane
        .store
        .create_key(tenant, &scopes)
        .await
        .map_err(unavailable)?;
    let mut entry = caller.audit(tenant, &format!("api_key/{}", created.id), "create");
    entry.new = Some(json!({"id": created.id, "scopes": scopes.to_header_value()}));
    record(plane, entry).await?;
    Ok(Answer {
        status: 201,
        body: json!({"id": created.id, "key": created.plaintext,
                     "scopes": scopes.to_header_value()}),
    })
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
