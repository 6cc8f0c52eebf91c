//! What the platform knows of the secrets a tenant wrote through the API: their names, how
//! often each was written and when — never a value. The values live in Vault under the
//! tenant's prefix only (docs/adr/0043), so neither this table nor a backup of the store can
//! leak one.

use sqlx::Row;
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError, now_rfc3339};

/// One secret of a tenant, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    /// Writes through the API so far, counting from 1.
    pub version: i64,
    pub updated_at: String,
}

impl PlatformStore {
    /// Counts one more write of `tenant`'s secret `name` by `actor`, after the value reached
    /// Vault; answers the secret's new version.
    pub async fn record_secret_write(
        &self,
        tenant: &TenantId,
        name: &str,
        actor: &str,
    ) -> Result<SecretMeta, StoreError> {
        let updated_at = now_rfc3339();
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO tenant_secrets (tenant_id, name, version, updated_at, updated_by)
             VALUES ($1, $2, 1, $3, $4)
             ON CONFLICT (tenant_id, name) DO UPDATE
                SET version = tenant_secrets.version + 1,
                    updated_at = excluded.updated_at, updated_by = excluded.updated_by
             RETURNING version",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(&updated_at)
        .bind(actor)
        .fetch_one(&self.pool)
        .await?;
        Ok(SecretMeta {
            name: name.to_owned(),
            version,
            updated_at,
        })
    }

    /// `tenant`'s secrets written through the API, by name.
    pub async fn tenant_secrets(&self, tenant: &TenantId) -> Result<Vec<SecretMeta>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, updated_at FROM tenant_secrets
              WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SecretMeta {
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }
}
