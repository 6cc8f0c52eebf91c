//! What every call's transaction starts with, and what keeps one call's session state from
//! reaching the next call on the same pooled connection (possibly another tenant's).
//!
//! - Each call is one transaction opened with `BEGIN READ ONLY` (query, metadata) or
//!   `BEGIN READ WRITE` (execute, transaction) — explicit, so a tenant's session-level
//!   `default_transaction_read_only` cannot flip it — followed by `RESET ALL`, which drops any
//!   session-level `SET` an earlier call left behind (search_path, time zone, timeouts, …).
//! - The tenant's identity, search_path, statement timeout and (pooled) role are then set with
//!   `set_config(…, true)`: transaction-local, gone at commit, never visible to another call.
//! - That is two round trips: `BEGIN …; RESET ALL` as one simple query ([`opening`]), then
//!   [`ENTER_POOLED`] or [`ENTER_SILOED`] with the values bound, a statement each connection
//!   prepares once and keeps (see `pools`). Not one simple query with the values as literals:
//!   the tenant key would then be in statement texts that `pg_stat_statements` keeps and shows
//!   to the role the statement ended as — the tenant's own role, which anyone who got past the
//!   guard below could switch to, defeating the key (see `rls`).
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

/// What a call's transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    Read,
    /// Writes; `insert_ids`: whether any statement wants the id it inserts.
    Write {
        insert_ids: bool,
    },
}

/// The simple query that opens a call's transaction. A pooled call none of whose statements
/// wants its inserted id also switches the tables' last-insert-id triggers off (see `rls`).
pub(crate) fn opening(intent: Intent, pooled: bool) -> &'static str {
    match intent {
        Intent::Read => "BEGIN READ ONLY; RESET ALL",
        Intent::Write { insert_ids: false } if pooled => {
            "BEGIN READ WRITE; RESET ALL; SELECT set_config('switchyard.insert_ids', 'off', true)"
        }
        Intent::Write { .. } => "BEGIN READ WRITE; RESET ALL",
    }
}

/// Pooled mode: who the tenant is (`app.tenant_id`, proven by `app.tenant_key`, see `rls`),
/// where its tables are, how long a statement may run, and the namespace's role.
pub(crate) const ENTER_POOLED: &str = "SELECT set_config('app.tenant_id', $1, true), \
     set_config('app.tenant_key', $2, true), set_config('search_path', $3, true), \
     set_config('statement_timeout', $4, true), set_config('role', $5, true)";

/// Siloed mode: the database is the tenant's own; only the tenant id (for the tenant's own
/// triggers or policies, if it wants them) and the timeout are set.
pub(crate) const ENTER_SILOED: &str =
    "SELECT set_config('app.tenant_id', $1, true), set_config('statement_timeout', $2, true)";

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

/// First keywords of statements that change the session the call set up. `EXECUTE` runs a
/// statement prepared on the connection: the engine's own opening is one (readable in
/// `pg_prepared_statements`), and run with a tenant's own arguments it would set another
/// tenant's role, search path or a zero timeout past the `set_config` guard. `DEALLOCATE`
/// would make the next call on the connection fail to open.
const SESSION: [&str; 5] = ["deallocate", "do", "execute", "reset", "set"];

/// Refuses transaction control and what would change the call's session (see the module
/// docs); `pointer` is the statement's `/sql` pointer.
pub(crate) fn guard_statement(sql: &str, pointer: &str) -> Result<(), ProviderError> {
    let word = first_keyword(sql);
    if CONTROL.iter().any(|c| word.eq_ignore_ascii_case(c)) {
        return Err(transaction_control("postgres", word, pointer));
    }
    let lower = sql.to_ascii_lowercase();
    if SESSION.iter().any(|c| word.eq_ignore_ascii_case(c))
        || (word.eq_ignore_ascii_case("explain") && mentions(&lower, "execute"))
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
    fn only_pooled_writes_wanting_no_id_switch_the_id_triggers_off() {
        let off = "set_config('switchyard.insert_ids', 'off', true)";
        let unwanted = Intent::Write { insert_ids: false };
        assert!(opening(unwanted, true).ends_with(off));
        assert!(!opening(unwanted, false).contains(off));
        assert!(!opening(Intent::Write { insert_ids: true }, true).contains(off));
        assert_eq!(opening(Intent::Read, true), "BEGIN READ ONLY; RESET ALL");
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
