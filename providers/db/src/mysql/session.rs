//! What tenant SQL may do inside a call's transaction.
//!
//! Each call is one transaction: `START TRANSACTION READ ONLY` (query, metadata) or `START
//! TRANSACTION READ WRITE` (execute, transaction). MySQL ends a transaction implicitly before
//! any DDL or account statement, so the server alone cannot keep `query` read-only or a batch
//! atomic:
//!
//! - `query` accepts only statements whose first keyword reads (`SELECT`, `WITH`, `VALUES`,
//!   `TABLE`, `SHOW`, `DESCRIBE`/`DESC`, `EXPLAIN`, or a parenthesised `SELECT`); none of them
//!   commits implicitly, and the READ ONLY transaction refuses any write they attempt (a
//!   stored function, `SELECT … FOR UPDATE` is harmless).
//! - Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `START`, `SAVEPOINT`, `RELEASE`,
//!   `XA`, `LOCK`, `UNLOCK`, `SET TRANSACTION`/`SET autocommit`, and `PREPARE`/`EXECUTE`/
//!   `DEALLOCATE`) is refused everywhere before it reaches the server.
//! - DDL (`CREATE`, `ALTER`, `DROP`, …) is allowed in `execute` and `transaction` but, as
//!   everywhere in MySQL, commits the statements before it: a batch is atomic only for
//!   DML. See docs.md.
//!
//! sqlx runs every statement as a server-side prepared statement, which holds exactly one
//! statement, so `SELECT 1; DROP TABLE t` is a syntax error, not two statements. Comments
//! are skipped when finding the first keyword, except MySQL's executable comments
//! (`/*! … */`, `/*M! … */`), whose content counts as SQL.

use switchyard_spi::ProviderError;

use crate::sql::{refused, transaction_control};

pub(crate) const BEGIN_READ_ONLY: &str = "START TRANSACTION READ ONLY";
pub(crate) const BEGIN_READ_WRITE: &str = "START TRANSACTION READ WRITE";

const CONTROL: [&str; 14] = [
    "begin",
    "commit",
    "end",
    "rollback",
    "start",
    "savepoint",
    "release",
    "xa",
    "lock",
    "unlock",
    "prepare",
    "execute",
    "deallocate",
    "handler",
];

const READS: [&str; 8] = [
    "select", "with", "values", "table", "show", "describe", "desc", "explain",
];

/// Refuses transaction control; `pointer` is the statement's `/sql` pointer.
pub(crate) fn refuse_transaction_control(sql: &str, pointer: &str) -> Result<(), ProviderError> {
    let (word, rest) = first_keyword(sql);
    let word = word.to_ascii_lowercase();
    // `SET [SESSION] TRANSACTION …`, `SET autocommit`, `SET @@session.tx_read_only`, …:
    // any SET that names a transaction setting.
    let set_transaction = word == "set" && {
        let rest = rest.to_ascii_lowercase();
        ["transaction", "autocommit", "tx_", "completion_type"]
            .iter()
            .any(|w| rest.contains(w))
    };
    if CONTROL.contains(&word.as_str()) || set_transaction {
        return Err(transaction_control("mysql", &word, pointer));
    }
    Ok(())
}

/// Refuses anything but a reading statement in `query` (see the module docs).
pub(crate) fn require_read(sql: &str, pointer: &str) -> Result<(), ProviderError> {
    let trimmed = skip_comments(sql);
    if trimmed.starts_with('(') {
        return Ok(());
    }
    let (word, _) = first_keyword(sql);
    if READS.iter().any(|r| word.eq_ignore_ascii_case(r)) {
        return Ok(());
    }
    Err(refused(
        pointer,
        format!(
            "query is read-only and runs only SELECT, WITH, VALUES, TABLE, SHOW, DESCRIBE or \
             EXPLAIN (got {:?}): change data with execute or transaction",
            word
        ),
    ))
}

/// `sql` after whitespace, empty statements and comments (`-- `, `#`, `/* */`; the content of
/// an executable comment `/*!` / `/*M!`, with its optional version number, is kept).
fn skip_comments(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(after) = rest
            .strip_prefix("/*!")
            .or_else(|| rest.strip_prefix("/*M!"))
        {
            rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
        } else if rest.starts_with("--") || rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |end| &rest[end..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
        } else if let Some(after) = rest.strip_prefix("*/") {
            // The end of an executable comment whose content was empty so far.
            rest = after;
        } else {
            return rest;
        }
    }
}

/// The first word of `sql` (after comments) and what follows it.
fn first_keyword(sql: &str) -> (&str, &str) {
    let rest = skip_comments(sql);
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@'))
        .unwrap_or(rest.len());
    (&rest[..len], &rest[len..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::assert_refuses_control;

    #[test]
    fn transaction_control_is_found_behind_comments_and_case() {
        let refused = [
            "# note\nrollback",
            "/*!COMMIT*/",
            "/*!50000 commit */",
            "/*M!100100 commit */",
            "savepoint x",
            "XA START 'x'",
            "LOCK TABLES t WRITE",
            "set autocommit = 1",
            "SET SESSION TRANSACTION READ WRITE",
            "set @@autocommit = 1",
        ];
        assert_refuses_control(refuse_transaction_control, &refused, &["SET @x = 1"]);
    }

    #[test]
    fn query_takes_only_reading_statements() {
        for sql in [
            "SELECT 1",
            "  with x AS (SELECT 1) SELECT * FROM x",
            "(SELECT 1) UNION (SELECT 2)",
            "/* c */ SHOW TABLES",
            "/*!SELECT 1*/",
        ] {
            assert!(require_read(sql, "/sql").is_ok(), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "CREATE TABLE t (x INT)",
            "DROP TABLE t",
            "/*!DROP TABLE t*/",
            "-- SELECT\nDELETE FROM t",
            "SELEC 1",
        ] {
            assert!(require_read(sql, "/sql").is_err(), "{sql}");
        }
    }
}
