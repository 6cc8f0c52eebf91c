//! What `switchyard conformance` certified, per provider version: the catalog shows the level of
//! the version that is registered, so a new build shows none until its suite has run.

use sqlx::Row;

use super::{PlatformStore, StoreError, now_rfc3339};

/// One provider version's last certification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certification {
    pub domain: String,
    pub name: String,
    pub version: String,
    /// The levels joined, e.g. `core+transactions+isolation`, or `none`.
    pub certification: String,
    pub certified_at: String,
}

impl PlatformStore {
    /// Records a run's outcome (and its whole report, as JSON text), replacing an earlier run
    /// of the same provider version.
    pub async fn record_certification(
        &self,
        domain: &str,
        name: &str,
        version: &str,
        certification: &str,
        report: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provider_certifications (domain, name, version, certification, report, certified_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (domain, name, version) DO UPDATE SET \
             certification = excluded.certification, report = excluded.report, certified_at = excluded.certified_at",
        )
        .bind(domain)
        .bind(name)
        .bind(version)
        .bind(certification)
        .bind(report)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every recorded certification; a handful of rows, read whole.
    pub async fn certifications(&self) -> Result<Vec<Certification>, StoreError> {
        let rows = sqlx::query(
            "SELECT domain, name, version, certification, certified_at FROM provider_certifications",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Certification {
                    domain: row.try_get("domain")?,
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    certification: row.try_get("certification")?,
                    certified_at: row.try_get("certified_at")?,
                })
            })
            .collect()
    }
}
