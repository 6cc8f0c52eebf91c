//! What every call's transaction starts with, and what keeps one call's session state from
//! reaching the next call on the same pooled connection (possibly another tenant's).
//!
//! - Each call is one transaction opened with `BEGIN READ ONLY` (query, metadata) or
//!   `BEGIN READ WRITE` (execute, transaction) — explicit, so a tenant's session-level
//!   `default_transaction_read_only` cannot flip it — followed by `RESET ALL`, which drops any
//!   session-level `SET` an earlier call left behind (search_path, time zone, timeouts, …).
//! - The tenant's identity, search_path, statement timeout and (pooled) role are then set with
//!   `set_config(…, true)`: transaction-local, gone at commit, never visible to another call.
//! - All three go to the server as one simple query ([`Opening`]), one round trip instead of
//!   three. The settings are then literals in its text, quoted by [`literal`]; none of them is
//!   tenant-written (a checked tenant id, and the key, schema and role the admin connection
//!   returned at enrolment), and the text is rendered once per instance, not per call.
//! - Transaction control inside tenant SQL is refused before it reaches the server: a
//!   `COMMIT` would commit half a batch and leave the rest to autocommit. Only the statement's
//!   first keyword is looked at; PostgreSQL runs a single statement per extended-protocol
//!   call (which sqlx always uses), and no other statement can contain transaction control.
//! - So is every way tenant SQL could change what the call set: `SET`/`RESET` statements
//!   (`SET ROLE` to another tenant's role, `SET LOCAL statement_timeout = 0`), `DO` blocks and
//!   any mention of `set_config`, in any spelling PostgreSQL reads as that name (quoted,
//!   schema-qualified, any case; `U&"…"` identifiers, whose escapes could spell it, are
//!   refused outright). What runs SQL given as a string is revoked on the server (`rls`).

use switchyard_spi::ProviderError;

use crate::sql::{refused, skip_block_comment, transaction_control};

/// The simple query that opens each call's transaction and enters the tenant, rendered once
/// per instance (see the module docs).
pub(crate) struct Opening {
    read_only: String,
    read_write: String,
    /// `read_write` for calls none of whose statements wants its inserted id: pooled tables'
    /// last-insert-id triggers do not fire (see `rls`).
    read_write_without_ids: String,
}

/// What a call's transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    Read,
    /// Writes; `insert_ids`: whether any statement wants the id it inserts.
    Write {
        insert_ids: bool,
    },
}

impl Opening {
    /// Pooled mode: who the tenant is (`app.tenant_id`, checked against `app.tenant_key` by the
    /// row policies, see `rls`), where its tables are, how long a statement may run, and the
    /// namespace's role.
    pub(crate) fn pooled(
        tenant_id: &str,
        key: &str,
        schema: &str,
        role: &str,
        timeout_ms: u64,
    ) -> Self {
        Opening::with(
            &[
                ("app.tenant_id", tenant_id),
                ("app.tenant_key", key),
                ("search_path", &format!("\"{schema}\"")),
                ("statement_timeout", &timeout_ms.to_string()),
                ("role", role),
            ],
            true,
        )
    }

    /// Siloed mode: the database is the tenant's own; only the tenant id (for the tenant's own
    /// triggers or policies, if it wants them) and the timeout are set.
    pub(crate) fn siloed(tenant_id: &str, timeout_ms: u64) -> Self {
        Opening::with(
            &[
                ("app.tenant_id", tenant_id),
                ("statement_timeout", &timeout_ms.to_string()),
            ],
            false,
        )
    }

    /// `id_triggers`: whether the database has the last-insert-id triggers to switch off.
    fn with(settings: &[(&str, &str)], id_triggers: bool) -> Self {
        let set = settings
            .iter()
            .map(|(name, value)| format!("set_config('{name}', {}, true)", literal(value)))
            .collect::<Vec<_>>()
            .join(", ");
        let read_write = format!("BEGIN READ WRITE; RESET ALL; SELECT {set}");
        let read_write_without_ids = if id_triggers {
            format!("{read_write}, set_config('switchyard.insert_ids', 'off', true)")
        } else {
            read_write.clone()
        };
        Opening {
            read_only: format!("BEGIN READ ONLY; RESET ALL; SELECT {set}"),
            read_write,
            read_write_without_ids,
        }
    }

    pub(crate) fn sql(&self, intent: Intent) -> String {
        match intent {
            Intent::Read => &self.read_only,
            Intent::Write { insert_ids: true } => &self.read_write,
            Intent::Write { insert_ids: false } => &self.read_write_without_ids,
        }
        .clone()
    }
}

/// `value` as a PostgreSQL string literal: an `E''` string, whose escapes mean the same
/// whatever `standard_conforming_strings` says, with `\` and `'` doubled. (A NUL would cut
/// the query text short inside the literal: the server refuses the unterminated string.)
fn literal(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 3);
    quoted.push_str("E'");
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("''"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Reads the id the statement just inserted (see `switchyard.remember_insert_id`) and clears
/// it for the next statement.
pub(crate) const TAKE_LAST_INSERT_ID: &str = "SELECT nullif(current_setting('switchyard.last_insert_id', true), ''), \
     set_config('switchyard.last_insert_id', '', true)";

/// Clears an id no statement read (one whose caller did not want it), so that a later
/// statement inserting into a table without the trigger does not report it as its own.
pub(crate) const CLEAR_LAST_INSERT_ID: &str =
    "SELECT set_config('switchyard.last_insert_id', '', true)";

/// First keywords of the statements that can insert a row, and so fire the trigger that keeps
/// the inserted id (see `rls`): a data-modifying `WITH`, `MERGE`, `EXPLAIN ANALYZE` of either.
/// A pooled tenant can create no function, rule or trigger that would insert on its behalf.
const INSERTING: [&str; 4] = ["explain", "insert", "merge", "with"];

/// Whether `sql` may have inserted a row whose id `TAKE_LAST_INSERT_ID` would read; every
/// other statement leaves the last insert id unset, and reading it would be a wasted round trip.
pub(crate) fn may_insert(sql: &str) -> bool {
    let word = first_keyword(sql);
    INSERTING.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// First keywords of statements that end, open or split the call's transaction. `PREPARE`
/// (including `PREPARE TRANSACTION`) is refused too: a named prepared statement outlives the
/// call on the pooled connection.
const CONTROL: [&str; 9] = [
    "abort",
    "begin",
    "commit",
    "end",
    "prepare",
    "release",
    "rollback",
    "savepoint",
    "start",
];

/// First keywords of statements that change the session the call set up.
const SESSION: [&str; 3] = ["do", "reset", "set"];

/// Refuses transaction control and what would change the call's session (see the module
/// docs); `pointer` is the statement's `/sql` pointer.
pub(crate) fn guard_statement(sql: &str, pointer: &str) -> Result<(), ProviderError> {
    let word = first_keyword(sql);
    if CONTROL.iter().any(|c| word.eq_ignore_ascii_case(c)) {
        return Err(transaction_control("postgres", word, pointer));
    }
    let lower = sql.to_ascii_lowercase();
    if SESSION.iter().any(|c| word.eq_ignore_ascii_case(c))
        || mentions(&lower, "set_config")
        || lower.contains("u&\"")
    {
        return Err(refused(
            pointer,
            format!(
                "statement refused by db/postgres: {} cannot change the call's settings (role, \
                 statement timeout, search path); the platform sets them for every call",
                if word.is_empty() { "a statement" } else { word }
            ),
        ));
    }
    Ok(())
}

/// Whether `word` occurs in `sql` as a whole identifier (in SQL, a string or a comment alike:
/// refusing a harmless mention is cheaper than reading every spelling right).
fn mentions(sql: &str, word: &str) -> bool {
    let ident =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    sql.match_indices(word).any(|(at, _)| {
        !ident(sql[..at].chars().next_back()) && !ident(sql[at + word.len()..].chars().next())
    })
}

/// The first word of `sql`, after whitespace, `--` / (nested) `/* */` comments and empty
/// statements (`;`, which PostgreSQL skips: `;COMMIT` is a lone `COMMIT`).
fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else if rest.starts_with("/*") {
            rest = skip_block_comment(rest);
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            return &rest[..len];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::assert_refuses_control;

    #[test]
    fn settings_are_quoted_as_literals_nothing_can_end() {
        assert_eq!(literal("t_acme"), "E't_acme'");
        assert_eq!(literal(r"a'b\c"), r"E'a''b\\c'");
        assert_eq!(
            literal("x\\'; DROP TABLE t; --"),
            r"E'x\\''; DROP TABLE t; --'"
        );
        let opening = Opening::pooled("acme", "k3y", "t_acme", "app_t_acme", 30_000);
        assert_eq!(
            opening.sql(Intent::Write { insert_ids: true }),
            "BEGIN READ WRITE; RESET ALL; SELECT set_config('app.tenant_id', E'acme', true), \
             set_config('app.tenant_key', E'k3y', true), \
             set_config('search_path', E'\"t_acme\"', true), \
             set_config('statement_timeout', E'30000', true), \
             set_config('role', E'app_t_acme', true)"
        );
        assert!(
            opening
                .sql(Intent::Write { insert_ids: false })
                .ends_with(", set_config('switchyard.insert_ids', 'off', true)")
        );
        let siloed = Opening::siloed("acme", 5);
        assert!(
            siloed
                .sql(Intent::Read)
                .starts_with("BEGIN READ ONLY; RESET ALL; ")
        );
        assert_eq!(
            siloed.sql(Intent::Write { insert_ids: false }),
            siloed.sql(Intent::Write { insert_ids: true })
        );
    }

    #[test]
    fn only_statements_that_can_insert_read_the_inserted_id() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            " /* c */ insert into t default values",
            "WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM x",
            "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
            "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
        ] {
            assert!(may_insert(sql), "{sql}");
        }
        for sql in [
            "UPDATE t SET v = 1",
            "DELETE FROM t",
            "CREATE TABLE t (id int)",
            "SELECT 1",
        ] {
            assert!(!may_insert(sql), "{sql}");
        }
    }

    #[test]
    fn transaction_control_is_found_behind_comments_and_case() {
        let refused = [
            "/* a /* nested */ comment */ commit",
            "savepoint x",
            "PREPARE TRANSACTION 'x'",
            "abort",
            "; /* x */ ;\n commit",
        ];
        let allowed = ["WITH begin_at AS (SELECT 1) SELECT * FROM begin_at"];
        assert_refuses_control(guard_statement, &refused, &allowed);
    }

    #[test]
    fn what_would_change_the_calls_settings_is_refused() {
        for sql in [
            "SET LOCAL statement_timeout = 0",
            "/* x */ set role other_tenant",
            "RESET ROLE",
            "Reset all",
            "SELECT set_config('statement_timeout', '0', true)",
            "SELECT \"pg_catalog\".\"SET_CONFIG\"('role', 'x', true)",
            "SELECT U&\"set\\005fconfig\"('role', 'x', true)",
            "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$",
        ] {
            let err = guard_statement(sql, "/sql").expect_err(sql);
            assert_eq!(err.errors[0].pointer, "/sql", "{sql}");
        }
        for sql in [
            "UPDATE settings SET v = 1",
            "SELECT offset_config FROM t",
            "SELECT 'u&' || x FROM t",
        ] {
            assert!(guard_statement(sql, "/sql").is_ok(), "{sql}");
        }
    }
}
