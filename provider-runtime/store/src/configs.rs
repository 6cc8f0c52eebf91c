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

/// What the history keeps beside a version's values: who saved it, how it differs from the
/// version before it (the caller computes the diff, since only it knows which fields of the
/// provider's schema are secret), and why (`rollback to 3`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigNote {
    pub actor: Option<String>,
    pub diff: Option<Value>,
    pub note: Option<String>,
}

/// One version as the history lists it. Versions saved before the history was kept have no
/// note at all.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigVersion {
    pub version: i64,
    pub values: Value,
    pub at: String,
    pub note: ConfigNote,
}

/// What became of one version number of a provider's config.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionLookup {
    Found(StoredConfig),
    /// It was saved, and deleted since: only the newest `config_versions_kept` stay, and
    /// `oldest_kept` is the oldest of them.
    Pruned {
        oldest_kept: i64,
    },
    /// This provider's config never had that version.
    Never,
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
        self.save_config_noted(tenant, domain, name, values, &ConfigNote::default())
            .await
    }

    /// [`PlatformStore::save_config`] with the history's note of who saved it and what changed.
    pub async fn save_config_noted(
        &self,
        tenant: &TenantId,
        domain: &str,
        name: &str,
        values: &Value,
        note: &ConfigNote,
    ) -> Result<StoredConfig, StoreError> {
        const ATTEMPTS: usize = 16;
        let updated_at = now_rfc3339();
        let mut attempt = 1;
        let row = loop {
            let inserted = sqlx::query(
                "INSERT INTO provider_configs (tenant_id, domain, name, version, config, created_at,
                                               actor, diff, note)
                 SELECT $1, $2, $3, COALESCE(MAX(version), 0) + 1, $4, $5, $6, $7, $8
                   FROM provider_configs WHERE tenant_id = $1 AND domain = $2 AND name = $3
                 RETURNING version",
            )
            .bind(tenant.as_str())
            .bind(domain)
            .bind(name)
            .bind(values.to_string())
            .bind(&updated_at)
            .bind(note.actor.as_deref())
            .bind(note.diff.as_ref().map(Value::to_string))
            .bind(note.note.as_deref())
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

    /// How many versions of one provider's config are kept (the operator's quota).
    pub fn config_versions_kept(&self) -> i64 {
        self.quotas.config_versions_kept
    }

    /// Every kept version of `tenant`'s config of `domain/name`, newest first.
    pub async fn config_history(
        &self,
        tenant: &TenantId,
        domain: &str,
        name: &str,
    ) -> Result<Vec<ConfigVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, config, created_at, actor, diff, note FROM provider_configs
              WHERE tenant_id = $1 AND domain = $2 AND name = $3 ORDER BY version DESC",
        )
        .bind(tenant.as_str())
        .bind(domain)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let diff: Option<String> = row.try_get("diff")?;
                Ok(ConfigVersion {
                    version: row.try_get("version")?,
                    values: json_text(&row.try_get::<String, _>("config")?)?,
                    at: row.try_get("created_at")?,
                    note: ConfigNote {
                        actor: row.try_get("actor")?,
                        diff: diff.as_deref().map(json_text).transpose()?,
                        note: row.try_get("note")?,
                    },
                })
            })
            .collect()
    }

    /// Version `version` of `tenant`'s config of `domain/name`, or why there is none.
    pub async fn config_version(
        &self,
        tenant: &TenantId,
        domain: &str,
        name: &str,
        version: i64,
    ) -> Result<VersionLookup, StoreError> {
        let row = sqlx::query(
            "SELECT config, created_at FROM provider_configs
              WHERE tenant_id = $1 AND domain = $2 AND name = $3 AND version = $4",
        )
        .bind(tenant.as_str())
        .bind(domain)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(VersionLookup::Found(StoredConfig {
                version,
                values: json_text(&row.try_get::<String, _>("config")?)?,
                updated_at: row.try_get("created_at")?,
            }));
        }
        // Versions are numbered from 1 without gaps and only the oldest are deleted, so a
        // missing number below the oldest kept one was pruned, and any other never existed.
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(version) FROM provider_configs
              WHERE tenant_id = $1 AND domain = $2 AND name = $3",
        )
        .bind(tenant.as_str())
        .bind(domain)
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(match oldest {
            Some(oldest_kept) if (1..oldest_kept).contains(&version) => {
                VersionLookup::Pruned { oldest_kept }
            }
            _ => VersionLookup::Never,
        })
    }
}

fn json_text(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(e.to_string()))
}
