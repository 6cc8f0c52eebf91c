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
    /// Appends a new version and returns it. Versions only grow, so an auditor can see every
    /// config a tenant ever ran with.
    pub async fn save_config(
        &self,
        tenant: &TenantId,
        domain: &str,
        name: &str,
        values: &Value,
    ) -> Result<StoredConfig, StoreError> {
        let updated_at = now_rfc3339();
        let row = sqlx::query(
            "INSERT INTO provider_configs (tenant_id, domain, name, version, config, created_at)
             SELECT ?1, ?2, ?3, COALESCE(MAX(version), 0) + 1, ?4, ?5
               FROM provider_configs WHERE tenant_id = ?1 AND domain = ?2 AND name = ?3
             RETURNING version",
        )
        .bind(tenant.as_str())
        .bind(domain)
        .bind(name)
        .bind(values.to_string())
        .bind(&updated_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(StoredConfig {
            version: row.try_get("version")?,
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
              WHERE tenant_id = ?1 AND domain = ?2 AND name = ?3 ORDER BY version DESC LIMIT 1",
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn versions_grow_and_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        {
            let store = PlatformStore::open(dir.path()).await.unwrap();
            store.create_tenant(&acme).await.unwrap();
            assert_eq!(
                store
                    .save_config(&acme, "cache", "memory", &json!({"a": 1}))
                    .await
                    .unwrap()
                    .version,
                1
            );
            assert_eq!(
                store
                    .save_config(&acme, "cache", "memory", &json!({"a": 2}))
                    .await
                    .unwrap()
                    .version,
                2
            );
            assert_eq!(
                store
                    .save_config(&acme, "db", "sqlite", &json!({}))
                    .await
                    .unwrap()
                    .version,
                1
            );
        }
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let current = store
            .current_config(&acme, "cache", "memory")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((current.version, current.values), (2, json!({"a": 2})));
        let globex = TenantId::parse("globex").unwrap();
        assert_eq!(
            store
                .current_config(&globex, "cache", "memory")
                .await
                .unwrap(),
            None
        );
    }
}
