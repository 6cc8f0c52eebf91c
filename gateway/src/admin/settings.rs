//! What the operator sets per tenant: its limits, and its part of the policy data (role
//! overrides, `deny_actions`, AI rules), which goes into the next bundle revision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem, TenantId};
use switchyard_platform_store::TenantLimits;

use super::{Answer, Caller, Plane, json_body, record, unavailable};

/// `[admin]` in the gateway's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// How long a deleted tenant stays exportable (and resumable) before its platform rows
    /// are purged. Default 7 days.
    pub deletion_grace_seconds: u64,
    /// How often the gateway looks for tenants whose grace period has ended.
    pub purge_interval_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            deletion_grace_seconds: 7 * 24 * 3600,
            purge_interval_ms: 60_000,
        }
    }
}

pub(super) async fn limits(plane: &Plane<'_>, tenant: &TenantId) -> Result<Answer, Problem> {
    let limits = plane
        .store
        .tenant_limits(tenant)
        .await
        .map_err(unavailable)?;
    Ok(Answer::ok(json!({ "limits": limits })))
}

pub(super) async fn set_limits(
    plane: &Plane<'_>,
    caller: &Caller,
    tenant: &TenantId,
    body: &[u8],
) -> Result<Answer, Problem> {
    let limits: TenantLimits = json_body(body)?;
    let mut errors = Vec::new();
    let mut zero = |pointer: &str| {
        errors.push(FieldError {
            pointer: pointer.to_owned(),
            detail: "must be at least 1".to_owned(),
        })
    };
    if let Some(budget) = &limits.rate_limit {
        for (field, value) in [
            ("requests", budget.requests),
            ("per_seconds", budget.per_seconds),
            ("burst", budget.burst),
        ] {
            if value == 0 {
                zero(&format!("/rate_limit/{field}"));
            }
        }
    }
    if limits.ai_tokens_per_day == Some(0) {
        zero("/ai_tokens_per_day");
    }
    if limits.decision_retention_days == Some(0) {
        zero("/decision_retention_days");
    }
    if limits.max_api_keys == Some(0) {
        zero("/max_api_keys");
    }
    if !errors.is_empty() {
        return Err(Problem::new(ErrorCode::RequestInvalid, "invalid limits").with_errors(errors));
    }
    let old = plane
        .store
        .set_tenant_limits(tenant, &limits)
        .await
        .map_err(unavailable)?;
    // This replica applies the budget at once; the others at their next refresh.
    if let Ok(all) = plane.store.all_tenant_limits().await {
        crate::filters::tenant::apply_budgets(plane.limiter, &all);
    }
    let mut entry = caller.audit(tenant, "tenant/limits", "update");
    entry.old = Some(json!(old));
    entry.new = Some(json!(limits));
    record(plane, entry).await?;
    Ok(Answer::ok(json!({ "limits": limits })))
}

/// The tenant's part of `data.switchyard.tenants`, as the shipped Rego reads it
/// (policies/README.md). Unknown fields are refused: a typo would otherwise be a rule that
/// silently never applies.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantPolicy {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    roles: BTreeMap<String, Vec<Permission>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    deny_actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ai: Option<AiRules>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Permission {
    operation: String,
    domain: String,
    provider: String,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warehouses: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AiRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deny_models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_estimated_tokens: Option<u64>,
}

const OPERATIONS: &[&str] = &["*", "read", "admin", "invoke", "audit", "keys"];

impl TenantPolicy {
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-*".contains(c))
        };
        for (role, permissions) in &self.roles {
            if !name_ok(role) || role.contains('*') {
                errors.push(field(
                    &format!("/roles/{role}"),
                    "a role name is 1-64 of A-Z a-z 0-9 _ -",
                ));
            }
            for (i, p) in permissions.iter().enumerate() {
                if !OPERATIONS.contains(&p.operation.as_str()) {
                    errors.push(field(
                        &format!("/roles/{role}/{i}/operation"),
                        "one of *, read, admin, invoke, audit, keys",
                    ));
                }
                for (name, value) in [
                    ("domain", &p.domain),
                    ("provider", &p.provider),
                    ("action", &p.action),
                ] {
                    if !name_ok(value) {
                        errors.push(field(&format!("/roles/{role}/{i}/{name}"), "a name or *"));
                    }
                }
            }
        }
        for (i, pattern) in self.deny_actions.iter().enumerate() {
            let parts: Vec<&str> = pattern.split('/').collect();
            if parts.len() != 3 || !parts.iter().all(|p| name_ok(p)) {
                errors.push(field(
                    &format!("/deny_actions/{i}"),
                    "a <domain>/<provider>/<action> pattern, * allowed per segment",
                ));
            }
        }
        errors
    }
}

fn field(pointer: &str, detail: &str) -> FieldError {
    FieldError {
        pointer: pointer.to_owned(),
        detail: detail.to_owned(),
    }
}

pub(super) async fn policy(plane: &Plane<'_>, tenant: &TenantId) -> Result<Answer, Problem> {
    let data = plane
        .store
        .tenant_policy(tenant)
        .await
        .map_err(unavailable)?
        .unwrap_or_else(|| json!({}));
    Ok(Answer::ok(json!({
        "policy": data,
        "revision": plane.policy.map(|p| p.current().bundle().revision().to_owned()),
    })))
}

/// Writes the tenant's policy data and rebuilds this gateway's policy at once (the other
/// replicas at their next poll); the answer names the revision that now decides.
pub(super) async fn set_policy(
    plane: &Plane<'_>,
    caller: &Caller,
    tenant: &TenantId,
    body: &[u8],
) -> Result<Answer, Problem> {
    let policy: TenantPolicy = json_body(body)?;
    let errors = policy.check();
    if !errors.is_empty() {
        return Err(
            Problem::new(ErrorCode::RequestInvalid, "invalid tenant policy").with_errors(errors),
        );
    }
    let data: Value = json!(policy);
    let old = plane
        .store
        .set_tenant_policy(tenant, &data)
        .await
        .map_err(unavailable)?;
    let revision = match plane.policy {
        None => None,
        Some(policy) => match policy.reload().await {
            Ok(_) => Some(policy.current().bundle().revision().to_owned()),
            Err(e) => {
                // The bundle (its tests, or a data file it cannot merge) refuses the data: put
                // the previous data back, so that no replica keeps retrying a revision that
                // cannot load while the running one stays in force.
                tracing::warn!(error = %e, tenant = %tenant, "the policy refused a tenant's data; the previous data is restored");
                let previous = old.clone().unwrap_or_else(|| json!({}));
                plane
                    .store
                    .set_tenant_policy(tenant, &previous)
                    .await
                    .map_err(unavailable)?;
                return Err(Problem::new(
                    ErrorCode::RequestInvalid,
                    format!("the policy bundle refuses this data, nothing changed: {e}"),
                ));
            }
        },
    };
    let mut entry = caller.audit(tenant, "tenant/policy", "update");
    entry.old = old;
    entry.new = Some(data.clone());
    record(plane, entry).await?;
    Ok(Answer::ok(json!({ "policy": data, "revision": revision })))
}
