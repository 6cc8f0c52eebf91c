//! The platform store: tenants, API keys and per-tenant provider configs.
//!
//! SQLite in the data directory is the embedded default; the schema is applied by sqlx
//! migrations at open, so an existing data directory is upgraded in place.

mod configs;
mod decisions;
mod idempotency;
mod keys;
mod tenants;

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use configs::StoredConfig;
pub use decisions::{DecisionFilter, DecisionRecord};
pub use idempotency::{Begin, StoredResponse};
pub use keys::{CreatedKey, VerifiedKey};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("tenant {0} already exists")]
    TenantExists(String),
    #[error("tenant {0} does not exist")]
    TenantNotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("platform store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("platform store migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone)]
pub struct PlatformStore {
    pool: SqlitePool,
}

impl PlatformStore {
    /// Opens (creating if needed) `platform.db` in the data directory and migrates it.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let url = format!("sqlite://{}", data_dir.join("platform.db").display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(PlatformStore { pool })
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
