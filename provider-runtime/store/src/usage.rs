//! What each tenant used, for its operator: calls and errors counted by the gateways, AI
//! tokens counted as the AI gateway's audit records are written, and the platform rows it
//! holds. Counted per UTC day, added to in batches, so any replica's share lands in one place.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError};

/// One tenant's counts on one UTC day (`YYYY-MM-DD`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageDay {
    pub day: String,
    pub calls: i64,
    pub errors: i64,
    pub tokens: i64,
}

/// What a tenant holds in the platform store now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoredRows {
    pub api_keys: i64,
    pub config_versions: i64,
    pub idempotency_bytes: i64,
    pub decisions: i64,
    pub audit_records: i64,
}

/// Calls and errors one gateway counted since its last flush, by tenant and day.
pub type UsageBatch = BTreeMap<(String, String), (i64, i64)>;

impl PlatformStore {
    /// Adds a gateway's counts in one transaction.
    pub async fn add_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for ((tenant, day), (calls, errors)) in batch {
            add(&mut tx, tenant, day, *calls, *errors, 0).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's days from `since_day` on, oldest first.
    pub async fn tenant_usage(
        &self,
        tenant: &TenantId,
        since_day: &str,
    ) -> Result<Vec<UsageDay>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, calls, errors, tokens FROM tenant_usage
              WHERE tenant_id = $1 AND day >= $2 ORDER BY day",
        )
        .bind(tenant.as_str())
        .bind(since_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UsageDay {
                    day: row.try_get("day")?,
                    calls: row.try_get("calls")?,
                    errors: row.try_get("errors")?,
                    tokens: row.try_get("tokens")?,
                })
            })
            .collect()
    }

    /// What the tenant holds in the platform store.
    pub async fn tenant_stored_rows(&self, tenant: &TenantId) -> Result<StoredRows, StoreError> {
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(tenant.as_str())
                .fetch_one(&self.pool)
                .await
        };
        Ok(StoredRows {
            api_keys: count("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1").await?,
            config_versions: count("SELECT COUNT(*) FROM provider_configs WHERE tenant_id = $1")
                .await?,
            // SUM of bigints is numeric on PostgreSQL: cast back, so both answer an i64.
            idempotency_bytes: count(
                "SELECT CAST(COALESCE(SUM(LENGTH(body)), 0) AS BIGINT) FROM idempotency_records
                  WHERE tenant_id = $1",
            )
            .await?,
            decisions: count("SELECT COUNT(*) FROM policy_decisions WHERE tenant_id = $1").await?,
            audit_records: count("SELECT COUNT(*) FROM audit_log WHERE tenant_id = $1").await?,
        })
    }
}

/// Adds to one tenant's day inside `tx`.
pub(crate) async fn add(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    day: &str,
    calls: i64,
    errors: i64,
    tokens: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tenant_usage (tenant_id, day, calls, errors, tokens) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, day) DO UPDATE SET calls = tenant_usage.calls + excluded.calls,
                errors = tenant_usage.errors + excluded.errors,
                tokens = tenant_usage.tokens + excluded.tokens",
    )
    .bind(tenant)
    .bind(day)
    .bind(calls)
    .bind(errors)
    .bind(tokens)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The UTC day (`YYYY-MM-DD`) of a Unix time in milliseconds.
pub fn utc_day(at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}
