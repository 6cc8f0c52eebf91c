//! What the statement guards of the server engines (`session.rs` of db/postgres, db/mysql and
//! db/mssql) share when they read tenant SQL before it reaches the server: how they refuse it,
//! and the nested block comments PostgreSQL and SQL Server both allow.

use switchyard_spi::{ErrorCode, ProviderError};

use crate::errors;

/// A statement refused before it reached the server; `pointer` is its `/sql` pointer.
pub(crate) fn refused(pointer: &str, detail: String) -> ProviderError {
    errors::at(
        ProviderError::new(ErrorCode::StatementFailed, detail),
        pointer,
    )
}

/// Refuses transaction control (`word`) in tenant SQL of `db/<engine>`: every call is one
/// transaction already, and a `COMMIT` inside it would commit half a batch.
pub(crate) fn transaction_control(engine: &str, word: &str, pointer: &str) -> ProviderError {
    refused(
        pointer,
        format!(
            "statement refused by db/{engine}: transaction control ({}) is not allowed; every \
             call is already one transaction, use the transaction action for several statements",
            word.to_uppercase()
        ),
    )
}

/// `rest` after the block comment it starts with, counting nested `/* */` pairs; empty when
/// the comment is not closed.
pub(crate) fn skip_block_comment(rest: &str) -> &str {
    let mut depth = 0usize;
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match &bytes[i..i + 2] {
            b"/*" => {
                depth += 1;
                i += 2;
            }
            b"*/" => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return &rest[i..];
                }
            }
            _ => i += 1,
        }
    }
    ""
}

/// Asserts that an engine's `refuse_transaction_control` refuses each of `refused` (and what
/// every dialect writes as transaction control), pointing at the statement, and lets each of
/// `allowed` (and what only looks like transaction control) through.
#[cfg(test)]
pub(crate) fn assert_refuses_control(
    refuse: fn(&str, &str) -> Result<(), ProviderError>,
    refused: &[&str],
    allowed: &[&str],
) {
    let everywhere = [
        "COMMIT",
        "  end;",
        "-- note\nRollback",
        "/* comment */ commit",
        "START TRANSACTION",
        ";COMMIT",
    ];
    for sql in everywhere.iter().chain(refused) {
        let err = refuse(sql, "/statements/1/sql").expect_err(sql);
        assert_eq!(err.code, ErrorCode::StatementFailed, "{sql}");
        assert_eq!(err.errors[0].pointer, "/statements/1/sql", "{sql}");
    }
    let lookalikes = [
        "SELECT 'commit'",
        "INSERT INTO ending VALUES (1)",
        "/* unterminated",
        "",
    ];
    for sql in lookalikes.iter().chain(allowed) {
        assert!(refuse(sql, "/sql").is_ok(), "{sql}");
    }
}
