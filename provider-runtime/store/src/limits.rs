//! What the platform operator set for one tenant beyond the `[tenancy]` defaults. The admin
//! API writes it; the gateway (request budget), the AI gateway (tokens per day) and the
//! decision-log purge (retention) read it. A field left out means the operator's default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError, now_rfc3339};

/// One tenant's limits. Unknown fields are refused, so a typo never silently means "no limit".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// The tenant's whole request budget at the gateway, replacing `[rate_limit] per_tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RequestBudget>,
    /// Tokens the tenant's AI calls may spend per UTC day, replacing
    /// `[tenancy.quotas] ai_tokens_per_day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_tokens_per_day: Option<u64>,
    /// Days the tenant's policy decisions are kept, replacing the gateway's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_retention_days: Option<u32>,
    /// Active API keys the tenant may hold at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_api_keys: Option<u32>,
}

/// `requests` per `per_seconds` on average, at most `burst` at once (the gateway's GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBudget {
    pub requests: u32,
    pub per_seconds: u32,
    pub burst: u32,
}

impl PlatformStore {
    /// The tenant's limits, all defaults when the operator set none.
    pub async fn tenant_limits(&self, tenant: &TenantId) -> Result<TenantLimits, StoreError> {
        let row = sqlx::query("SELECT limits FROM tenant_limits WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(TenantLimits::default()),
            Some(row) => parse(&row.try_get::<String, _>("limits")?),
        }
    }

    /// Every tenant that has limits set, by tenant id.
    pub async fn all_tenant_limits(&self) -> Result<BTreeMap<String, TenantLimits>, StoreError> {
        let rows = sqlx::query("SELECT tenant_id, limits FROM tenant_limits")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let tenant: String = row.try_get("tenant_id")?;
                Ok((tenant, parse(&row.try_get::<String, _>("limits")?)?))
            })
            .collect()
    }

    /// Replaces the tenant's limits and returns the ones they replaced.
    pub async fn set_tenant_limits(
        &self,
        tenant: &TenantId,
        limits: &TenantLimits,
    ) -> Result<TenantLimits, StoreError> {
        let mut tx = self.begin_write().await?;
        let old = sqlx::query("SELECT limits FROM tenant_limits WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| parse(&row.try_get::<String, _>("limits")?))
            .transpose()?
            .unwrap_or_default();
        let text = serde_json::to_string(limits).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO tenant_limits (tenant_id, limits, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET limits = excluded.limits,
                                                   updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(text)
        .bind(now_rfc3339())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(old)
    }
}

fn parse(text: &str) -> Result<TenantLimits, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("tenant limits: {e}")))
}
