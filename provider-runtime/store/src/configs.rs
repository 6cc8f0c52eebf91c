use serde_json::Value;
use sqlx::Row;
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError, now_rfc3339};

/// One version of a tenant's config for one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConfig {
    pub version: i64,
    pub values: Value,
    pub updated_at: String,
}

impl PlatformStore {
    /// Appends a new version and returns it. Version numbers only grow; of the versions, the
    /// newest `config_versions_kept` (the operator's quota) stay for an auditor and older ones
    /// are deleted, so a tenant saving configs in a loop cannot grow the store without bound.
    ///
    /// On PostgreSQL two replicas saving the same provider's config at once both read the same
    /// highest version, and the later insert fails on the primary key; it is retried, and then
    /// reads the winner's version. (SQLite runs one writer at a time, so there it never
    /// conflicts.) Every conflict means another save went through, so the retries end; the
    /// bound only stops a save from waiting out an endless stream of others.
    pub async fn save_config(
        &self,
        tenant: &TenantId,
        domain: &str,
        name: &str,
        values: &Value,
    ) -> Result<StoredConfig, StoreError> {
        const ATTEMPTS: usize = 16;
        let updated_at = now_rfc3339();
        let mut attempt = 1;
        let row = loop {
            let inserted = sqlx::query(
                "INSERT INTO provider_configs (tenant_id, domain, name, version, config, created_at)
                 SELECT $1, $2, $3, COALESCE(MAX(version), 0) + 1, $4, $5
                   FROM provider_configs WHERE tenant_id = $1 AND domain = $2 AND name = $3
                 RETURNING version",
            )
            .bind(tenant.as_str())
            .bind(domain)
            .bind(name)
            .bind(values.to_string())
            .bind(&updated_at)
            .fetch_one(&self.pool)
            .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt < ATTEMPTS => {
                    attempt += 1;
                }
                other => break other?,
            }
        };
        let version: i64 = row.try_get("version")?;
        sqlx::query(
            "DELETE FROM provider_configs
              WHERE tenant_id = $1 AND domain = $2 AND name = $3 AND version <= $4",
        )
        .bind(tenant.as_str())
        .bind(domain)
        .bind(name)
        .bind(version.saturating_sub(self.quotas.config_versions_kept))
        .execute(&self.pool)
        .await?;
        self.notify_config_change(&crate::ConfigChange {
            tenant: tenant.to_string(),
            domain: domain.to_owned(),
            name: name.to_owned(),
            version,
        })
        .await?;
        Ok(StoredConfig {
            version,
            values: values.clone(),
            updated_at,
        })
    }

    pub async fn current_config(
        &self,
        tenant: &TenantId,
        domain: &str,
        name: &str,
    ) -> Result<Option<StoredConfig>, StoreError> {
        let row = sqlx::query(
            "SELECT version, config, created_at FROM provider_configs
              WHERE tenant_id = $1 AND domain = $2 AND name = $3 ORDER BY version DESC LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(domain)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let text: String = row.try_get("config")?;
            Ok(StoredConfig {
                version: row.try_get("version")?,
                values: serde_json::from_str(&text)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
                updated_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }
}
