//! Maps sqlx / MySQL (MariaDB) failures onto the contract's stable error codes, by server
//! error number first and SQLSTATE class second.
//!
//! The split follows what the caller can do: fix the SQL (`statement_failed`), fix the data
//! (`conflict`), retry later (`provider_unavailable`/`timeout`, retryable only when waiting
//! can help).

use sqlx::mysql::MySqlDatabaseError;
use switchyard_spi::{ErrorCode, FieldError, ProviderError};

/// An error raised by the statement at `pointer` (`/sql`, `/statements/2/sql`).
pub(crate) fn statement(err: sqlx::Error, pointer: &str) -> ProviderError {
    at(from_sqlx(err), pointer)
}

/// Attaches `pointer` as the error's field.
pub(crate) fn at(mut error: ProviderError, pointer: &str) -> ProviderError {
    error.errors.push(FieldError {
        pointer: pointer.to_owned(),
        detail: error.detail.clone(),
    });
    error
}

/// An error not tied to one statement (connecting, opening the call's transaction).
pub(crate) fn from_sqlx(err: sqlx::Error) -> ProviderError {
    match err {
        sqlx::Error::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map_or(0, MySqlDatabaseError::number);
            classify(number, db.code().as_deref().unwrap_or(""), db.message())
        }
        sqlx::Error::PoolTimedOut => {
            ProviderError::unavailable("no database connection became free in time")
        }
        sqlx::Error::PoolClosed => {
            ProviderError::unavailable("this instance was stopped; send the call again")
        }
        sqlx::Error::Io(e) => {
            ProviderError::unavailable(format!("database connection failed: {e}"))
        }
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

/// Classifies a server error by its number (MySQL/MariaDB `ER_*`) and SQLSTATE.
fn classify(number: u16, sqlstate: &str, message: &str) -> ProviderError {
    match (number, sqlstate.get(..2).unwrap_or("")) {
        // Deadlock, lock wait timeout: another transaction was in the way.
        (1213 | 1205, _) | (_, "40") => ProviderError::unavailable(format!(
            "transaction aborted by a concurrent one, retry: {message}"
        )),
        // MariaDB max_statement_time / MySQL max_execution_time.
        (1969 | 3024, _) => ProviderError::new(
            ErrorCode::Timeout,
            format!("{message}: the statement ran too long"),
        ),
        (1792, _) => ProviderError::new(
            ErrorCode::StatementFailed,
            format!("{message}: query is read-only, change data with execute or transaction"),
        ),
        // Too many connections (server-wide or for the tenant's user), server shutting down.
        (1040 | 1203 | 1226 | 1053 | 1077 | 1317, _) | (_, "08") => {
            ProviderError::unavailable(format!("database unavailable: {message}"))
        }
        // Wrong password: waiting will not fix the configuration.
        (1045, _) | (_, "28") => {
            ProviderError::unavailable(format!("cannot use the database: {message}"))
                .with_retryable(false)
        }
        (_, "23") => ProviderError::new(ErrorCode::Conflict, message),
        _ => ProviderError::new(ErrorCode::StatementFailed, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_map_to_what_the_caller_can_do() {
        let cases = [
            (1062, "23000", ErrorCode::Conflict, false),
            (1048, "23000", ErrorCode::Conflict, false),
            (1452, "23000", ErrorCode::Conflict, false),
            (4025, "23000", ErrorCode::Conflict, false),
            (1064, "42000", ErrorCode::StatementFailed, false),
            (1146, "42S02", ErrorCode::StatementFailed, false),
            (1142, "42000", ErrorCode::StatementFailed, false),
            (1044, "42000", ErrorCode::StatementFailed, false),
            (1792, "25006", ErrorCode::StatementFailed, false),
            (1213, "40001", ErrorCode::ProviderUnavailable, true),
            (1205, "HY000", ErrorCode::ProviderUnavailable, true),
            (1040, "08004", ErrorCode::ProviderUnavailable, true),
            (1045, "28000", ErrorCode::ProviderUnavailable, false),
            (1969, "70100", ErrorCode::Timeout, true),
        ];
        for (number, sqlstate, expected, retryable) in cases {
            let err = classify(number, sqlstate, "m");
            assert_eq!((err.code, err.retryable), (expected, retryable), "{number}");
        }
    }
}
