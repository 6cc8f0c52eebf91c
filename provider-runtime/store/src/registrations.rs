//! Remote providers registered while serving (`POST /providers/register`): kept so that a
//! restart registers them again, listed by `GET /providers/register`.

use sqlx::Row;

use super::{PlatformStore, StoreError, now_rfc3339};

/// One registration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistration {
    pub domain: String,
    pub name: String,
    /// The manifest as the operator sent it (JSON text).
    pub manifest: String,
    /// The levels its conformance run earned, e.g. `core`.
    pub certification: String,
    pub registered_at: String,
}

impl PlatformStore {
    /// Records a registration and answers when it was made. One `(domain, name)` is
    /// registered once: the runtime removes a registration before it accepts another.
    pub async fn save_registration(
        &self,
        domain: &str,
        name: &str,
        manifest: &str,
        certification: &str,
    ) -> Result<String, StoreError> {
        let registered_at = now_rfc3339();
        sqlx::query(
            "INSERT INTO provider_registrations (domain, name, manifest, certification, registered_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(domain)
        .bind(name)
        .bind(manifest)
        .bind(certification)
        .bind(&registered_at)
        .execute(&self.pool)
        .await?;
        Ok(registered_at)
    }

    /// Forgets a registration; answers whether there was one.
    pub async fn delete_registration(&self, domain: &str, name: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM provider_registrations WHERE domain = $1 AND name = $2")
                .bind(domain)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every registration, oldest first; a handful of rows, read whole.
    pub async fn registrations(&self) -> Result<Vec<StoredRegistration>, StoreError> {
        let rows = sqlx::query(
            "SELECT domain, name, manifest, certification, registered_at \
             FROM provider_registrations ORDER BY registered_at, domain, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredRegistration {
                    domain: row.try_get("domain")?,
                    name: row.try_get("name")?,
                    manifest: row.try_get("manifest")?,
                    certification: row.try_get("certification")?,
                    registered_at: row.try_get("registered_at")?,
                })
            })
            .collect()
    }
}
