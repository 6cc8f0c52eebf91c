//! Maps sqlx / SQLite failures onto the contract's stable error codes.
//!
//! Callers branch on the code, so the split follows what they can do about it: fix the SQL
//! (`statement_failed`), fix the data (`conflict`), or retry later (`provider_unavailable`,
//! retryable only when waiting can help).

use libsqlite3_sys::{
    SQLITE_AUTH, SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_CONSTRAINT, SQLITE_CORRUPT, SQLITE_ERROR,
    SQLITE_FULL, SQLITE_INTERRUPT, SQLITE_IOERR, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_NOTADB,
    SQLITE_PERM, SQLITE_PROTOCOL, SQLITE_READONLY, SQLITE_TOOBIG,
};
use switchyard_spi::{ErrorCode, ProviderError};

use crate::errors::{at, conflict, failed, read_only, stopped};

/// Prefixed to SQLite's bare "not authorized" so the caller learns what the engine refuses.
const REFUSED: &str = "statement refused by db/sqlite: ATTACH/DETACH, VACUUM, \
    transaction control (use the transaction action), load_extension and pragmas other than \
    schema introspection are not allowed";

/// An error raised while running the statement at `pointer` (e.g. `/sql`,
/// `/statements/2/sql`): the pointer is attached so the caller knows which one failed.
pub(crate) fn statement(err: sqlx::Error, pointer: &str) -> ProviderError {
    at(from_sqlx(err), pointer)
}

/// An error not tied to one statement (acquiring a connection, opening the file).
pub(crate) fn from_sqlx(err: sqlx::Error) -> ProviderError {
    match err {
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .unwrap_or(SQLITE_ERROR);
            from_sqlite(code, db.message())
        }
        sqlx::Error::PoolTimedOut => {
            ProviderError::unavailable("no database connection became free within busy_timeout")
        }
        sqlx::Error::PoolClosed => stopped(),
        sqlx::Error::Io(e) => ProviderError::unavailable(format!("database i/o failed: {e}")),
        sqlx::Error::WorkerCrashed => {
            ProviderError::unavailable("the database connection's worker thread stopped")
        }
        other => ProviderError::internal(other.to_string()),
    }
}

/// Classifies by the primary result code (the low byte of SQLite's extended code).
fn from_sqlite(extended_code: i32, message: &str) -> ProviderError {
    match extended_code & 0xff {
        SQLITE_CONSTRAINT => conflict(message),
        SQLITE_BUSY | SQLITE_LOCKED => {
            ProviderError::unavailable(format!("database is busy, retry later: {message}"))
        }
        SQLITE_AUTH => failed(&format!("{REFUSED} ({message})")),
        SQLITE_READONLY => read_only(message),
        // Only the engine interrupts, when a call's statement timeout has passed.
        SQLITE_INTERRUPT => ProviderError::new(
            ErrorCode::Timeout,
            format!("{message}: the statements ran longer than statement_timeout_ms"),
        ),
        SQLITE_TOOBIG => ProviderError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "{message}: a string, blob or row above the operator's \
                 tenancy.quotas.sqlite_max_length_bytes"
            ),
        ),
        // The process-wide heap limit: other calls may free memory, so waiting can help.
        SQLITE_NOMEM => ProviderError::unavailable(format!(
            "{message}: SQLite's memory ceiling is reached, retry later"
        )),
        SQLITE_IOERR | SQLITE_CORRUPT | SQLITE_NOTADB | SQLITE_FULL | SQLITE_CANTOPEN
        | SQLITE_PROTOCOL | SQLITE_PERM => {
            ProviderError::unavailable(format!("database file unusable: {message}"))
                .with_retryable(false)
        }
        // A denied function call is reported as a plain SQLITE_ERROR; its message is the
        // only sign the authorizer refused it.
        SQLITE_ERROR if message.starts_with("not authorized") => {
            failed(&format!("{REFUSED} ({message})"))
        }
        _ => failed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libsqlite3_sys::{
        SQLITE_BUSY_SNAPSHOT, SQLITE_CONSTRAINT_CHECK, SQLITE_CONSTRAINT_FOREIGNKEY,
        SQLITE_CONSTRAINT_NOTNULL, SQLITE_CONSTRAINT_UNIQUE, SQLITE_MISMATCH,
    };

    #[test]
    fn result_codes_map_to_what_the_caller_can_do() {
        for code in [
            SQLITE_CONSTRAINT_UNIQUE,
            SQLITE_CONSTRAINT_FOREIGNKEY,
            SQLITE_CONSTRAINT_CHECK,
            SQLITE_CONSTRAINT_NOTNULL,
        ] {
            assert_eq!(from_sqlite(code, "x").code, ErrorCode::Conflict);
        }
        let busy = from_sqlite(SQLITE_BUSY_SNAPSHOT, "database is locked");
        assert_eq!(busy.code, ErrorCode::ProviderUnavailable);
        assert!(busy.retryable);
        let full = from_sqlite(SQLITE_FULL, "database or disk is full");
        assert_eq!(full.code, ErrorCode::ProviderUnavailable);
        assert!(!full.retryable);
        assert_eq!(
            from_sqlite(SQLITE_MISMATCH, "datatype mismatch").code,
            ErrorCode::StatementFailed
        );
        let interrupted = from_sqlite(SQLITE_INTERRUPT, "interrupted");
        assert_eq!(interrupted.code, ErrorCode::Timeout);
        assert_eq!(
            from_sqlite(SQLITE_TOOBIG, "string or blob too big").code,
            ErrorCode::PayloadTooLarge
        );
        let nomem = from_sqlite(SQLITE_NOMEM, "out of memory");
        assert_eq!(nomem.code, ErrorCode::ProviderUnavailable);
        assert!(nomem.retryable);
        assert!(
            from_sqlite(SQLITE_AUTH, "not authorized")
                .detail
                .contains("ATTACH")
        );
        let function = from_sqlite(
            SQLITE_ERROR,
            "not authorized to use function: load_extension",
        );
        assert!(function.detail.contains("refused"));
    }
}
