use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError, now_rfc3339};

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
}
