//! The engines' own SQLite files (the webhook's messages, a connector's sync state), one per
//! tenant: WAL, so readers do not wait on the writer, and `synchronous=FULL`, so a write the
//! engine acknowledged (a message accepted, a checkpoint after the destination's ack)
//! survives a crash of the machine, not only of the process.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Concurrent statements per tenant's file; writes are short transactions.
const CONNECTIONS: u32 = 4;

/// Opens (creating if needed) the database at `path` and runs `schema` (idempotent DDL).
pub(crate) async fn open(
    path: &Path,
    busy_timeout: Duration,
    schema: &str,
) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(busy_timeout);
    let pool = SqlitePoolOptions::new()
        .max_connections(CONNECTIONS)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(schema).execute(&pool).await?;
    Ok(pool)
}
