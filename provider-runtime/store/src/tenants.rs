//! Tenants and their lifecycle: `active`, `suspended` (every call refused), `deleting` (refused
//! too, and purged once its grace period has passed unless an operator resumes it first).

use serde::Serialize;
use sqlx::Row;
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError, now_rfc3339};

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
    Deleting,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleting => "deleting",
        }
    }

    fn parse(text: &str) -> Result<TenantStatus, StoreError> {
        match text {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            "deleting" => Ok(TenantStatus::Deleting),
            other => Err(StoreError::Invalid(format!(
                "unknown tenant status {other}"
            ))),
        }
    }
}

/// A tenant as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantInfo {
    pub id: String,
    pub status: TenantStatus,
    pub created_at: String,
    pub status_changed_at: Option<String>,
    /// When a tenant being deleted is purged (RFC 3339).
    pub delete_after: Option<String>,
}

/// The tables holding a tenant's platform rows, children before `tenants`. The audit log is
/// not among them: the record of what happened to a tenant outlives it.
const TENANT_TABLES: &[&str] = &[
    "api_keys",
    "provider_configs",
    "idempotency_records",
    "policy_decisions",
    "ai_budget_buckets",
    "ai_reservations",
    "ai_audit_records",
    "hosted_tenants",
    "tenant_limits",
    "tenant_policy",
    "tenant_usage",
    "tenant_secrets",
];

impl PlatformStore {
    pub async fn create_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::TenantExists(tenant.to_string()));
        }
        Ok(())
    }

    pub async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Every tenant, by id.
    pub async fn list_tenants(&self) -> Result<Vec<TenantInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, status, created_at, status_changed_at, delete_after FROM tenants ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_info).collect()
    }

    pub async fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT id, status, created_at, status_changed_at, delete_after FROM tenants
              WHERE id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(tenant_info).transpose()
    }

    /// The tenants whose calls are refused, with their status: read by every gateway often,
    /// so it returns only the few that are not active.
    pub async fn inactive_tenants(&self) -> Result<Vec<(String, TenantStatus)>, StoreError> {
        let rows = sqlx::query("SELECT id, status FROM tenants WHERE status <> 'active'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    TenantStatus::parse(&row.try_get::<String, _>("status")?)?,
                ))
            })
            .collect()
    }

    /// Moves a tenant to `status` (with the time a deletion becomes final) and returns it as
    /// it was before.
    pub async fn set_tenant_status(
        &self,
        tenant: &TenantId,
        status: TenantStatus,
        delete_after: Option<&str>,
    ) -> Result<TenantInfo, StoreError> {
        let before = self
            .tenant(tenant)
            .await?
            .ok_or_else(|| StoreError::TenantNotFound(tenant.to_string()))?;
        sqlx::query(
            "UPDATE tenants SET status = $1, status_changed_at = $2, delete_after = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(now_rfc3339())
        .bind(delete_after)
        .bind(tenant.as_str())
        .execute(&self.pool)
        .await?;
        Ok(before)
    }

    /// Tenants being deleted whose grace period ended before `now` (RFC 3339, compared as text:
    /// every time here is UTC in the same format).
    pub async fn tenants_due_for_purge(&self, now: &str) -> Result<Vec<TenantId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM tenants WHERE status = 'deleting' AND delete_after IS NOT NULL
                AND delete_after <= $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                TenantId::parse(&row.try_get::<String, _>("id")?)
                    .map_err(|e| StoreError::Invalid(e.to_string()))
            })
            .collect()
    }

    /// Removes every platform row of a tenant still being deleted, in one transaction; the
    /// audit log keeps its chain. `Ok(false)` when the tenant was resumed (or is gone) first.
    pub async fn purge_tenant(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleting = sqlx::query("SELECT 1 FROM tenants WHERE id = $1 AND status = 'deleting'")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !deleting {
            return Ok(false);
        }
        for table in TENANT_TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The config in force for one of a tenant's providers, for an export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentConfig {
    pub domain: String,
    pub name: String,
    pub version: i64,
    pub updated_at: String,
    pub values: serde_json::Value,
}

impl PlatformStore {
    /// The newest config version of each of the tenant's providers.
    pub async fn current_configs_of_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<CurrentConfig>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.domain, c.name, c.version, c.config, c.created_at FROM provider_configs c
              WHERE c.tenant_id = $1 AND c.version = (
                    SELECT MAX(d.version) FROM provider_configs d
                     WHERE d.tenant_id = c.tenant_id AND d.domain = c.domain AND d.name = c.name)
              ORDER BY c.domain, c.name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("config")?;
                Ok(CurrentConfig {
                    domain: row.try_get("domain")?,
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    updated_at: row.try_get("created_at")?,
                    values: serde_json::from_str(&text)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                })
            })
            .collect()
    }
}

fn tenant_info(row: &sqlx::any::AnyRow) -> Result<TenantInfo, StoreError> {
    Ok(TenantInfo {
        id: row.try_get("id")?,
        status: TenantStatus::parse(&row.try_get::<String, _>("status")?)?,
        created_at: row.try_get("created_at")?,
        status_changed_at: row.try_get("status_changed_at")?,
        delete_after: row.try_get("delete_after")?,
    })
}
