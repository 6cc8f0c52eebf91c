//! What every call's transaction starts and ends with, and what tenant SQL may do inside it.
//!
//! Each call is one transaction on one of the tenant's connections: [`BEGIN`] rolls back
//! anything a cancelled earlier call left open, sets `XACT_ABORT ON` (a runtime error rolls
//! the whole transaction back instead of only its statement) and opens the transaction;
//! `execute` and `transaction` end with [`COMMIT`], `query` and `metadata` always with
//! [`ROLLBACK`].
//!
//! SQL Server has no read-only transaction, and T-SQL runs every statement of a batch
//! (`SELECT 1 DELETE FROM t` is two statements, no `;` needed), so `query` is kept read-only
//! twice over:
//!
//! 1. [`require_read`] refuses, before anything reaches the server, text whose first word is
//!    not `SELECT` or `WITH` (or that does not open with a parenthesis), and text with a word
//!    that writes or runs code anywhere in it (`INSERT`, `UPDATE`, `DELETE`, `MERGE`, `INTO`,
//!    `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `GRANT`, `REVOKE`, `DENY`, `EXEC`, `EXECUTE`).
//!    All of them are reserved words, so outside literals, comments and quoted names they can
//!    only be keywords.
//! 2. Whatever gets past that runs in a transaction that is always rolled back, and the
//!    transaction cannot be ended early from inside: see the next paragraph.
//!
//! Transaction control (`COMMIT`, `ROLLBACK`, `SAVE TRAN`, `BEGIN TRAN`, `SET TRANSACTION`,
//! any word `TRAN` or `TRANSACTION`, and `END` as a first word, as the other engines refuse
//! it) is refused in every action, anywhere in the text, by [`refuse_transaction_control`].
//! Dynamic SQL and procedures are the way around that scan; `query` refuses `EXEC`, and in
//! `execute` / `transaction` a procedure that commits or rolls back breaks only its own
//! call's atomicity (SQL Server also reports error 266 for it).
//!
//! tiberius sends every statement through `sp_executesql`: `SET` options, `USE` and `#temp`
//! tables inside it end with it, so no session state survives from one call to the next.

use switchyard_spi::ProviderError;

use crate::sql::{refused, skip_block_comment, transaction_control};

/// Opens a call's transaction (see the module docs).
pub(crate) const BEGIN: &str =
    "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION; SET XACT_ABORT ON; BEGIN TRANSACTION";
pub(crate) const COMMIT: &str = "COMMIT TRANSACTION";
/// A no-op when the server already rolled back (`XACT_ABORT`, a deadlock).
pub(crate) const ROLLBACK: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION";
/// The last IDENTITY value the session generated, in any scope (the statement ran inside
/// `sp_executesql`, a scope of its own, so `SCOPE_IDENTITY()` would not see it).
pub(crate) const LAST_IDENTITY: &str = "SELECT @@IDENTITY";

/// Words that end, open or split a transaction anywhere in a statement.
const CONTROL: [&str; 5] = ["commit", "rollback", "save", "tran", "transaction"];

/// Words a `query` may not contain (see the module docs). `MERGE` is allowed as the join or
/// union hint (`MERGE JOIN`, `OPTION (MERGE UNION)`).
const WRITES: [&str; 14] = [
    "insert", "update", "delete", "merge", "into", "create", "alter", "drop", "truncate", "grant",
    "revoke", "deny", "exec", "execute",
];

/// Refuses transaction control; `pointer` is the statement's `/sql` pointer.
pub(crate) fn refuse_transaction_control(sql: &str, pointer: &str) -> Result<(), ProviderError> {
    let tokens = tokens(sql);
    let first = first_word(&tokens);
    let found = tokens
        .iter()
        .filter_map(Token::word)
        .find(|w| CONTROL.iter().any(|c| w.eq_ignore_ascii_case(c)))
        .or(first.filter(|w| w.eq_ignore_ascii_case("end")));
    match found {
        Some(word) => Err(transaction_control("mssql", word, pointer)),
        None => Ok(()),
    }
}

/// Refuses anything but reading in `query` (see the module docs).
pub(crate) fn require_read(sql: &str, pointer: &str) -> Result<(), ProviderError> {
    let tokens = tokens(sql);
    let starts_reading = match tokens.iter().find(|t| **t != Token::Symbol(';')) {
        Some(Token::Symbol('(')) => true,
        Some(Token::Word(w)) => w.eq_ignore_ascii_case("select") || w.eq_ignore_ascii_case("with"),
        _ => false,
    };
    if !starts_reading {
        return Err(refused(
            pointer,
            format!(
                "query is read-only and runs only SELECT or WITH … SELECT (got {:?}): change \
                 data with execute or transaction",
                first_word(&tokens).unwrap_or_default()
            ),
        ));
    }
    let words: Vec<&str> = tokens.iter().filter_map(Token::word).collect();
    for (index, word) in words.iter().enumerate() {
        let hint = word.eq_ignore_ascii_case("merge")
            && words.get(index + 1).is_some_and(|next| {
                next.eq_ignore_ascii_case("join") || next.eq_ignore_ascii_case("union")
            });
        if !hint && WRITES.iter().any(|w| word.eq_ignore_ascii_case(w)) {
            return Err(refused(
                pointer,
                format!(
                    "query is read-only and may not contain {}: change data with execute or \
                     transaction",
                    word.to_uppercase()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `sql` is an `INSERT`, the statements whose `last_insert_id` is reported.
pub(crate) fn inserts(sql: &str) -> bool {
    first_word(&tokens(sql)).is_some_and(|w| w.eq_ignore_ascii_case("insert"))
}

/// A piece of T-SQL that matters to the checks above; literals, comments, quoted names,
/// variables (`@x`), temporary tables (`#t`) and numbers are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Symbol(char),
}

impl<'a> Token<'a> {
    fn word(&self) -> Option<&'a str> {
        match *self {
            Token::Word(w) => Some(w),
            Token::Symbol(_) => None,
        }
    }
}

fn first_word<'a>(tokens: &[Token<'a>]) -> Option<&'a str> {
    tokens.iter().find_map(Token::word)
}

/// Splits `sql` the way SQL Server reads it: `--` line comments, nested `/* */` comments,
/// `'…'` strings (`N'…'` is the word `N` and a string), `"…"` and `[…]` quoted names, each
/// with its closing character doubled as the escape. An unterminated one runs to the end.
fn tokens(sql: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        rest = if c.is_whitespace() {
            after
        } else if rest.starts_with("--") {
            rest.find('\n').map_or("", |end| &rest[end..])
        } else if rest.starts_with("/*") {
            skip_block_comment(rest)
        } else if let Some(close) = match c {
            '\'' => Some('\''),
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        } {
            skip_quoted(after, close)
        } else if c.is_alphanumeric() || matches!(c, '_' | '@' | '#') {
            // A name, a variable, a temporary table or a number (`1.5`, `1e5`, `0x0F`).
            let number = c.is_numeric();
            let len = rest
                .find(|c: char| {
                    !(c.is_alphanumeric()
                        || matches!(c, '_' | '@' | '#' | '$')
                        || number && c == '.')
                })
                .unwrap_or(rest.len());
            if c.is_alphabetic() || c == '_' {
                tokens.push(Token::Word(&rest[..len]));
            }
            &rest[len..]
        } else {
            tokens.push(Token::Symbol(c));
            after
        };
    }
    tokens
}

/// `rest` (just past an opening quote) after the literal or name it closes with `close`; a
/// doubled `close` is an escaped one.
fn skip_quoted(rest: &str, close: char) -> &str {
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == close {
            if rest[i + 1..].starts_with(close) {
                chars.next();
            } else {
                return &rest[i + 1..];
            }
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::assert_refuses_control;

    #[test]
    fn the_lexer_skips_literals_comments_and_quoted_names() {
        let words = |sql| -> Vec<&str> { tokens(sql).iter().filter_map(Token::word).collect() };
        assert_eq!(
            words("SELECT 'it''s COMMIT' AS [com]]mit], \"x\"\"y\" FROM t -- COMMIT\n"),
            ["SELECT", "AS", "FROM", "t"]
        );
        assert_eq!(
            words("/* a /* nested COMMIT */ still comment */ SELECT @commit, #tran, 1e5, 0x0F"),
            ["SELECT"]
        );
        assert_eq!(
            words("SELECT N'ü', 1.5 FROM dbo.t"),
            ["SELECT", "N", "FROM", "dbo", "t"]
        );
        assert_eq!(words("SELECT 'unterminated COMMIT"), ["SELECT"]);
        assert_eq!(
            words("SELECT größe FROM t"),
            ["SELECT", "größe", "FROM", "t"]
        );
        assert_eq!(
            tokens("(SELECT 1);"),
            [
                Token::Symbol('('),
                Token::Word("SELECT"),
                Token::Symbol(')'),
                Token::Symbol(';')
            ]
        );
    }

    #[test]
    fn transaction_control_is_found_anywhere_outside_literals() {
        let refused = [
            "commit tran",
            "  end",
            "/* comment */ ROLLBACK WORK",
            "BEGIN TRAN",
            "begin distributed transaction",
            "SAVE TRANSACTION s1",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "INSERT INTO t VALUES (1) COMMIT",
            "INSERT INTO t VALUES (1); ROLLBACK",
        ];
        let allowed = [
            "SELECT [commit] FROM t",
            "SELECT CASE WHEN x = 1 THEN 2 END FROM t",
            "IF 1 = 1 BEGIN INSERT INTO t VALUES (1) END",
            "SELECT @tran",
            "/* unterminated COMMIT",
        ];
        assert_refuses_control(refuse_transaction_control, &refused, &allowed);
    }

    #[test]
    fn query_takes_only_reading_statements() {
        for sql in [
            "SELECT 1",
            "  with x AS (SELECT 1 AS n) SELECT * FROM x",
            ";WITH x AS (SELECT 1 AS n) SELECT * FROM x",
            "(SELECT 1) UNION (SELECT 2)",
            "/* c */ SELECT 'DELETE FROM t' AS [insert]",
            "SELECT a.x FROM a INNER MERGE JOIN b ON a.x = b.x",
            "SELECT x FROM a UNION SELECT x FROM b OPTION (MERGE UNION)",
            "SELECT @update",
        ] {
            assert!(require_read(sql, "/sql").is_ok(), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "DELETE FROM t",
            "CREATE TABLE t (x INT)",
            "DROP TABLE t",
            "UPDATE t SET x = 1",
            "SELEC 1",
            "EXEC sp_who",
            "sp_who",
            "-- SELECT\nDELETE FROM t",
            "SELECT 1; DELETE FROM t",
            "SELECT 1 UPDATE t SET x = 1",
            "SELECT * INTO copy FROM t",
            "WITH x AS (SELECT 1 AS n) DELETE FROM x",
            "WITH s AS (SELECT 1 AS n) MERGE t USING s ON 1 = 0 WHEN NOT MATCHED THEN INSERT (n) VALUES (s.n);",
            "SELECT 1; EXECUTE ('DELETE FROM t')",
            "SELECT 1; TRUNCATE TABLE t",
            "",
        ] {
            let err = require_read(sql, "/sql").expect_err(sql);
            assert_eq!(err.errors[0].pointer, "/sql", "{sql}");
        }
    }

    #[test]
    fn only_inserts_report_an_identity() {
        assert!(inserts("INSERT INTO t (x) VALUES (1)"));
        assert!(inserts("/* x */ insert t DEFAULT VALUES"));
        assert!(!inserts("UPDATE t SET x = 1"));
        assert!(!inserts(
            "CREATE TABLE t (id INT IDENTITY(1,1) PRIMARY KEY)"
        ));
        assert!(!inserts("'INSERT'"));
    }
}
