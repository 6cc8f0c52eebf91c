//! The tenant's part of the policy data, written by the operator: role overrides and
//! `deny_actions` (`data.switchyard.tenants.<tenant>`). Gateways poll the highest revision and
//! rebuild their policy when it moves, so a write takes effect on the next bundle revision on
//! every replica.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError, now_rfc3339};

impl PlatformStore {
    /// The tenant's policy data, `None` when the operator never wrote any.
    pub async fn tenant_policy(&self, tenant: &TenantId) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("SELECT data FROM tenant_policy WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| json(&row.try_get::<String, _>("data")?))
            .transpose()
    }

    /// Replaces the tenant's policy data (an empty object removes it) and returns the old one.
    /// The new revision is one above the highest of any tenant, so it always moves forward.
    pub async fn set_tenant_policy(
        &self,
        tenant: &TenantId,
        data: &Value,
    ) -> Result<Option<Value>, StoreError> {
        const ATTEMPTS: usize = 16;
        let mut attempt = 1;
        loop {
            let old = self.tenant_policy(tenant).await?;
            let written = sqlx::query(
                "INSERT INTO tenant_policy (tenant_id, data, revision, updated_at)
                 SELECT $1, $2, COALESCE(MAX(revision), 0) + 1, $3 FROM tenant_policy WHERE true
                 ON CONFLICT (tenant_id) DO UPDATE SET data = excluded.data,
                        revision = excluded.revision, updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(data.to_string())
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await;
            match written {
                // Two writers read the same highest revision: one of them retries.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt < ATTEMPTS => {
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
                Ok(_) => return Ok(old),
            }
        }
    }

    /// The highest revision of any tenant's policy data (0: none written).
    pub async fn tenant_policy_revision(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(revision), 0) AS revision FROM tenant_policy")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("revision")?)
    }

    /// Every tenant's policy data, by tenant, with the highest revision among them.
    pub async fn all_tenant_policy(&self) -> Result<(i64, BTreeMap<String, Value>), StoreError> {
        let rows = sqlx::query("SELECT tenant_id, data, revision FROM tenant_policy")
            .fetch_all(&self.pool)
            .await?;
        let mut revision = 0;
        let mut data = BTreeMap::new();
        for row in &rows {
            revision = revision.max(row.try_get::<i64, _>("revision")?);
            data.insert(
                row.try_get("tenant_id")?,
                json(&row.try_get::<String, _>("data")?)?,
            );
        }
        Ok((revision, data))
    }
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("tenant policy: {e}")))
}
