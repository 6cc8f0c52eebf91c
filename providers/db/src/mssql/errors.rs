//! Maps tiberius / SQL Server failures onto the contract's stable error codes, by the server's
//! error number (`sys.messages.message_id`) and severity.
//!
//! The split follows what the caller can do, as in the other engines: fix the SQL
//! (`statement_failed`), fix the data (`conflict`), retry later (`provider_unavailable`,
//! retryable only when waiting can help).

use switchyard_spi::ProviderError;
use tiberius::error::Error;

pub(crate) use crate::errors::at;
use crate::errors::{
    concurrent, conflict, connection_failed, failed, no_free_connection, server_unavailable,
    unusable,
};

/// What bb8 gives back when no connection could be had.
pub(crate) type PoolError = bb8::RunError<bb8_tiberius::Error>;

/// An error raised by the statement at `pointer` (`/sql`, `/statements/2/sql`).
pub(crate) fn statement(err: Error, pointer: &str) -> ProviderError {
    at(from_tiberius(err), pointer)
}

/// An error not tied to one statement (connecting, opening the call's transaction).
pub(crate) fn from_tiberius(err: Error) -> ProviderError {
    match err {
        Error::Server(e) => classify(e.code(), e.class(), e.message()),
        Error::Io { message, .. } => connection_failed(message),
        Error::Tls(message) => {
            ProviderError::unavailable(format!("database TLS failed: {message}"))
        }
        Error::Protocol(message) => {
            ProviderError::unavailable(format!("database protocol error: {message}"))
        }
        // bb8-tiberius follows one redirect (Azure SQL's gateway); a second one ends here.
        Error::Routing { .. } => ProviderError::unavailable(
            "the server redirected the connection more than once, which db/mssql does not follow",
        ),
        other => ProviderError::internal(other.to_string()),
    }
}

/// A failure to get one of the pool's connections.
pub(crate) fn from_pool(err: PoolError) -> ProviderError {
    match err {
        bb8::RunError::TimedOut => no_free_connection(),
        bb8::RunError::User(bb8_tiberius::Error::Tiberius(e)) => from_tiberius(e),
        bb8::RunError::User(bb8_tiberius::Error::Io(e)) => connection_failed(e),
    }
}

/// Classifies a server error by its number and severity (`class`).
fn classify(number: u32, class: u8, message: &str) -> ProviderError {
    match number {
        // Unique constraint (2627) or index (2601), foreign key or check (547), NOT NULL (515).
        2627 | 2601 | 547 | 515 => conflict(message),
        // Deadlock victim, lock request timeout, snapshot isolation update conflicts, and the
        // in-memory OLTP validation and dependency failures: another transaction was in the way.
        1205 | 1222 | 3960 | 3961 | 41301 | 41302 | 41305 | 41325 => concurrent(message),
        // Out of memory or lock resources, log or filegroup full, server shutting down, and
        // Azure SQL's transient "busy" / "not currently available" / resource-limit errors.
        701 | 802 | 1204 | 1105 | 8645 | 9002 | 6005 | 6006 | 40197 | 40501 | 40613 | 49918
        | 49919 | 49920 | 10928 | 10929 => server_unavailable(message),
        // Login failed, or the login's database cannot be opened: waiting will not fix the
        // configuration.
        18456 | 18452 | 18486 | 18487 | 18488 | 4060 => unusable(message),
        // Severity 20 and above ends the connection: a server-side failure, not the SQL's.
        _ if class >= 20 => connection_failed(message),
        // Syntax (102, 156), unknown object or column (208, 207), permission denied (229,
        // 262, 916), conversion and overflow (245, 8115), and everything else the SQL causes.
        _ => failed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_spi::ErrorCode;

    #[test]
    fn server_errors_map_to_what_the_caller_can_do() {
        let cases = [
            (2627, 14, ErrorCode::Conflict, false),
            (2601, 14, ErrorCode::Conflict, false),
            (547, 16, ErrorCode::Conflict, false),
            (515, 16, ErrorCode::Conflict, false),
            (102, 15, ErrorCode::StatementFailed, false),
            (156, 15, ErrorCode::StatementFailed, false),
            (208, 16, ErrorCode::StatementFailed, false),
            (207, 16, ErrorCode::StatementFailed, false),
            (229, 14, ErrorCode::StatementFailed, false),
            (916, 14, ErrorCode::StatementFailed, false),
            (8115, 16, ErrorCode::StatementFailed, false),
            (3902, 16, ErrorCode::StatementFailed, false),
            (1205, 13, ErrorCode::ProviderUnavailable, true),
            (1222, 16, ErrorCode::ProviderUnavailable, true),
            (3960, 16, ErrorCode::ProviderUnavailable, true),
            (40501, 20, ErrorCode::ProviderUnavailable, true),
            (9002, 17, ErrorCode::ProviderUnavailable, true),
            (18456, 14, ErrorCode::ProviderUnavailable, false),
            (4060, 11, ErrorCode::ProviderUnavailable, false),
            (21, 21, ErrorCode::ProviderUnavailable, true),
        ];
        for (number, class, expected, retryable) in cases {
            let err = classify(number, class, "m");
            assert_eq!((err.code, err.retryable), (expected, retryable), "{number}");
            assert!(
                err.detail.contains('m'),
                "{number}: the server's message is kept"
            );
        }
    }

    #[test]
    fn client_side_failures_are_unavailable_or_internal() {
        let io = from_tiberius(Error::Io {
            kind: std::io::ErrorKind::ConnectionRefused,
            message: "refused".into(),
        });
        assert_eq!(
            (io.code, io.retryable),
            (ErrorCode::ProviderUnavailable, true)
        );
        let timeout = from_pool(bb8::RunError::TimedOut);
        assert_eq!(timeout.code, ErrorCode::ProviderUnavailable);
        let conversion = from_tiberius(Error::Conversion("bad".into()));
        assert_eq!(conversion.code, ErrorCode::Internal);
        let pointed = statement(Error::Protocol("x".into()), "/statements/3/sql");
        assert_eq!(pointed.errors[0].pointer, "/statements/3/sql");
    }
}
