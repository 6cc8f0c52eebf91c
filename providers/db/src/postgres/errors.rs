//! Maps sqlx / PostgreSQL failures onto the contract's stable error codes, by SQLSTATE.
//!
//! The split follows what the caller can do: fix the SQL (`statement_failed`), fix the data
//! (`conflict`), retry later (`provider_unavailable`/`timeout`, retryable only when waiting
//! can help).

use switchyard_spi::{ErrorCode, ProviderError};

pub(crate) use crate::errors::at;
use crate::errors::{concurrent, conflict, failed, read_only, server_unavailable, unusable};

/// An error raised by the statement at `pointer` (`/sql`, `/statements/2/sql`), which is
/// attached so the caller knows which statement failed.
pub(crate) fn statement(err: sqlx::Error, pointer: &str) -> ProviderError {
    at(from_sqlx(err), pointer)
}

/// An error not tied to one statement (connecting, opening the call's transaction).
pub(crate) fn from_sqlx(err: sqlx::Error) -> ProviderError {
    crate::errors::from_sqlx(err, |db| {
        from_sqlstate(db.code().as_deref().unwrap_or(""), db.message())
    })
}

/// Classifies by SQLSTATE (class = first two characters).
fn from_sqlstate(code: &str, message: &str) -> ProviderError {
    match (code, code.get(..2).unwrap_or("")) {
        (_, "23") => conflict(message),
        ("40001" | "40P01", _) => concurrent(message),
        ("57014", _) => ProviderError::new(
            ErrorCode::Timeout,
            format!("{message}: the statement ran longer than statement_timeout_ms"),
        ),
        ("25006", _) => read_only(message),
        // Server shutting down or restarting, too many connections, out of resources.
        (_, "08" | "53" | "57") => server_unavailable(message),
        // Wrong password, missing database: waiting will not fix the configuration.
        (_, "28") | ("3D000", _) => unusable(message),
        (_, "XX" | "58") => ProviderError::internal(format!("database internal error: {message}")),
        _ => failed(message),
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
