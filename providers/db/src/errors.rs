//! The errors every engine reports alike. Each engine's own `errors.rs` keeps its table of
//! which server error (number, SQLSTATE, result code) is which kind; the kind's code,
//! retryability and wording are written here once, so a caller reads the same failure the
//! same way whichever engine answers.

use sqlx::error::DatabaseError;
use switchyard_spi::{ErrorCode, FieldError, ProviderError};

/// Attaches `pointer` (`/sql`, `/statements/2/sql`, …) as the error's field, so the caller
/// knows which statement failed.
pub(crate) fn at(mut error: ProviderError, pointer: &str) -> ProviderError {
    error.errors.push(FieldError {
        pointer: pointer.to_owned(),
        detail: error.detail.clone(),
    });
    error
}

/// A call that reached an instance after it stopped; sent again, it reaches the instance that
/// replaced it.
pub(crate) fn stopped() -> ProviderError {
    ProviderError::unavailable("this instance was stopped; send the call again")
}

/// sqlx's failures on a database server (db/mysql, db/postgres): the server's own errors are
/// the engine's to `classify`, the rest are the connection's.
pub(crate) fn from_sqlx(
    err: sqlx::Error,
    classify: impl FnOnce(&dyn DatabaseError) -> ProviderError,
) -> ProviderError {
    match err {
        sqlx::Error::Database(db) => classify(db.as_ref()),
        sqlx::Error::PoolTimedOut => no_free_connection(),
        sqlx::Error::PoolClosed => stopped(),
        sqlx::Error::Io(e) => connection_failed(e),
        sqlx::Error::Tls(e) => ProviderError::unavailable(format!("database TLS failed: {e}")),
        sqlx::Error::Protocol(e) => {
            ProviderError::unavailable(format!("database protocol error: {e}"))
        }
        sqlx::Error::WorkerCrashed => {
            ProviderError::unavailable("the database connection's worker stopped")
        }
        other => ProviderError::internal(other.to_string()),
    }
}

/// Every connection of the pool stayed busy until the acquire timeout.
pub(crate) fn no_free_connection() -> ProviderError {
    ProviderError::unavailable("no database connection became free in time")
}

/// The connection failed or was lost.
pub(crate) fn connection_failed(error: impl std::fmt::Display) -> ProviderError {
    ProviderError::unavailable(format!("database connection failed: {error}"))
}

/// The data refused the statement (a unique, foreign key, check or NOT NULL constraint).
pub(crate) fn conflict(message: &str) -> ProviderError {
    ProviderError::new(ErrorCode::Conflict, message)
}

/// Another transaction was in the way (deadlock, lock timeout, serialization failure): the
/// same call may succeed if sent again.
pub(crate) fn concurrent(message: &str) -> ProviderError {
    ProviderError::unavailable(format!(
        "transaction aborted by a concurrent one, retry: {message}"
    ))
}

/// The server cannot take the call now (shutting down, too many connections, out of
/// resources).
pub(crate) fn server_unavailable(message: &str) -> ProviderError {
    ProviderError::unavailable(format!("database unavailable: {message}"))
}

/// The login or the database is wrong: waiting will not fix the configuration.
pub(crate) fn unusable(message: &str) -> ProviderError {
    ProviderError::unavailable(format!("cannot use the database: {message}")).with_retryable(false)
}

/// A write the read-only transaction of `query` refused.
pub(crate) fn read_only(message: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::StatementFailed,
        format!("{message}: query is read-only, change data with execute or transaction"),
    )
}

/// Anything else the SQL caused (syntax, unknown names, permissions, conversions).
pub(crate) fn failed(message: &str) -> ProviderError {
    ProviderError::new(ErrorCode::StatementFailed, message)
}
