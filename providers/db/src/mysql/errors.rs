//! Maps sqlx / MySQL (MariaDB) failures onto the contract's stable error codes, by server
//! error number first and SQLSTATE class second.
//!
//! The split follows what the caller can do: fix the SQL (`statement_failed`), fix the data
//! (`conflict`), retry later (`provider_unavailable`/`timeout`, retryable only when waiting
//! can help).

use sqlx::mysql::MySqlDatabaseError;
use switchyard_spi::{ErrorCode, ProviderError};

pub(crate) use crate::errors::at;
use crate::errors::{concurrent, conflict, failed, read_only, server_unavailable, unusable};

/// An error raised by the statement at `pointer` (`/sql`, `/statements/2/sql`).
pub(crate) fn statement(err: sqlx::Error, pointer: &str) -> ProviderError {
    at(from_sqlx(err), pointer)
}

/// An error not tied to one statement (connecting, opening the call's transaction).
pub(crate) fn from_sqlx(err: sqlx::Error) -> ProviderError {
    crate::errors::from_sqlx(err, |db| {
        let number = db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map_or(0, MySqlDatabaseError::number);
        classify(number, db.code().as_deref().unwrap_or(""), db.message())
    })
}

/// Classifies a server error by its number (MySQL/MariaDB `ER_*`) and SQLSTATE.
fn classify(number: u16, sqlstate: &str, message: &str) -> ProviderError {
    match (number, sqlstate.get(..2).unwrap_or("")) {
        // Deadlock, lock wait timeout: another transaction was in the way.
        (1213 | 1205, _) | (_, "40") => concurrent(message),
        // MariaDB max_statement_time / MySQL max_execution_time.
        (1969 | 3024, _) => ProviderError::new(
            ErrorCode::Timeout,
            format!("{message}: the statement ran too long"),
        ),
        (1792, _) => read_only(message),
        // Too many connections (server-wide or for the tenant's user), server shutting down.
        (1040 | 1203 | 1226 | 1053 | 1077 | 1317, _) | (_, "08") => server_unavailable(message),
        // Wrong password: waiting will not fix the configuration.
        (1045, _) | (_, "28") => unusable(message),
        (_, "23") => conflict(message),
        _ => failed(message),
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
