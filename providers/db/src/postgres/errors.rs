//! Maps sqlx / PostgreSQL failures onto the contract's stable error codes, by SQLSTATE.
//!
//! The split follows what the caller can do: fix the SQL (`statement_failed`), fix the data
//! (`conflict`), retry later (`provider_unavailable`/`timeout`, retryable only when waiting
//! can help).

use switchyard_spi::{ErrorCode, FieldError, ProviderError};

/// An error raised by the statement at `pointer` (`/sql`, `/statements/2/sql`), which is
/// attached so the caller knows which statement failed.
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
            from_sqlstate(db.code().as_deref().unwrap_or(""), db.message())
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

/// Classifies by SQLSTATE (class = first two characters).
fn from_sqlstate(code: &str, message: &str) -> ProviderError {
    match (code, code.get(..2).unwrap_or("")) {
        (_, "23") => ProviderError::new(ErrorCode::Conflict, message),
        ("40001" | "40P01", _) => ProviderError::unavailable(format!(
            "transaction aborted by a concurrent one, retry: {message}"
        )),
        ("57014", _) => ProviderError::new(
            ErrorCode::Timeout,
            format!("{message}: the statement ran longer than statement_timeout_ms"),
        ),
        ("25006", _) => ProviderError::new(
            ErrorCode::StatementFailed,
            format!("{message}: query is read-only, change data with execute or transaction"),
        ),
        // Server shutting down or restarting, too many connections, out of resources.
        (_, "08" | "53" | "57") => {
            ProviderError::unavailable(format!("database unavailable: {message}"))
        }
        // Wrong password, missing database: waiting will not fix the configuration.
        (_, "28") | ("3D000", _) => {
            ProviderError::unavailable(format!("cannot use the database: {message}"))
                .with_retryable(false)
        }
        (_, "XX" | "58") => ProviderError::internal(format!("database internal error: {message}")),
        _ => ProviderError::new(ErrorCode::StatementFailed, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_what_the_caller_can_do() {
        let cases = [
            ("23505", ErrorCode::Conflict, false),
            ("23503", ErrorCode::Conflict, false),
            ("23514", ErrorCode::Conflict, false),
            ("23502", ErrorCode::Conflict, false),
            ("42601", ErrorCode::StatementFailed, false),
            ("42P01", ErrorCode::StatementFailed, false),
            ("42501", ErrorCode::StatementFailed, false),
            ("25006", ErrorCode::StatementFailed, false),
            ("22003", ErrorCode::StatementFailed, false),
            ("40P01", ErrorCode::ProviderUnavailable, true),
            ("57P01", ErrorCode::ProviderUnavailable, true),
            ("53300", ErrorCode::ProviderUnavailable, true),
            ("08006", ErrorCode::ProviderUnavailable, true),
            ("28P01", ErrorCode::ProviderUnavailable, false),
            ("57014", ErrorCode::Timeout, true),
        ];
        for (code, expected, retryable) in cases {
            let err = from_sqlstate(code, "m");
            assert_eq!((err.code, err.retryable), (expected, retryable), "{code}");
        }
    }
}
