//! The SQL dialects of the db engines the outbox, the inbox and the business services keep
//! their tables in, as each db provider declares its own, and the one translator of their
//! SQL into it.
//!
//! All of that SQL is written once, with SQLite's numbered placeholders (`?1`, `?2`), and
//! translated when it is sent ([`Dialect::bind`]): PostgreSQL numbers them `$1`, MySQL takes
//! bare `?` in order. Which dialect a provider speaks is what its descriptor declares (ADR 24):
//! a db plugin or remote engine named anything declares `dialect:postgres` and is written
//! PostgreSQL; a provider id alone says nothing.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde_json::{Value, json};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// Every dialect this SQL is written for.
const DIALECTS: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql];

impl Dialect {
    /// What a db provider declares (`dialect:<name>`) to be written in this dialect.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    /// The dialect db provider `db` declares, asked of the provider itself. A provider that
    /// declares none this SQL is written for is `params_unprocessable`: the id is well formed
    /// and names a provider, but nothing here can talk to it.
    pub async fn of(client: &dyn ProviderClient, db: &str) -> Result<Self, Problem> {
        let description = client.describe(db).await?;
        Dialect::declared_by(&description)
            .map_err(|why| Problem::new(ErrorCode::ParamsUnprocessable, format!("{db} {why}")))
    }

    /// The dialect a provider's description (`GET /providers/{domain}/{name}`) declares with
    /// its `dialect:<name>` capability, as the db conformance suite reads it (ADR 24); the
    /// built-in engines declare theirs like any other. The name is never looked at: a provider
    /// called `db/postgres` that declares nothing is not taken for PostgreSQL. Err says why
    /// none applies.
    pub fn declared_by(description: &Value) -> Result<Self, String> {
        let capabilities = description["capabilities"].as_array();
        let declared = capabilities
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|c| c.strip_prefix("dialect:"));
        let name = declared.unwrap_or("");
        let known = || {
            DIALECTS
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match DIALECTS.into_iter().find(|d| d.name() == name) {
            Some(dialect) => Ok(dialect),
            None if declared.is_some() => Err(format!(
                "declares dialect:{name}, which this SQL is not written for (it is for {})",
                known()
            )),
            None => Err(format!(
                "declares no SQL dialect; a db provider names the one it speaks with the \
                 capability dialect:<name> (one of {})",
                known()
            )),
        }
    }

    /// `text`, written with SQLite's numbered placeholders (`?1`), and its `params`, as this
    /// dialect takes them: `$1` for PostgreSQL; for MySQL bare `?` with the params in the
    /// order the placeholders appear (one param per appearance). The text is tokenized, so a
    /// `?` in a string literal, a quoted identifier or a comment stays as written. A text the
    /// tokenizer cannot read, or (for MySQL) one with a placeholder that is not `?N` of a
    /// given param, is sent as written for the database to refuse.
    pub fn bind(self, text: &str, params: Vec<Value>) -> (String, Vec<Value>) {
        // Without a `?` there is nothing to rewrite (the ledger's PostgreSQL posting is
        // written with `$N` already).
        if self == Dialect::Sqlite || !text.contains('?') {
            return (text.to_owned(), params);
        }
        let Some(binding) = BOUND.binding(self, text) else {
            return (text.to_owned(), params);
        };
        match &binding.order {
            None => (binding.text.to_string(), params),
            Some(order) => {
                let ordered: Option<Vec<Value>> = order
                    .iter()
                    .map(|n| n.checked_sub(1).and_then(|i| params.get(i)).cloned())
                    .collect();
                match ordered {
                    Some(ordered) => (binding.text.to_string(), ordered),
                    None => (text.to_owned(), params),
                }
            }
        }
    }

    /// A `{"sql", "params"}` statement (a `transaction` batch entry, or a `query`'s or an
    /// `execute`'s params) with its SQL and params [bound](Dialect::bind) for this dialect;
    /// its other fields stay.
    pub fn bind_statement(self, mut statement: Value) -> Value {
        if self == Dialect::Sqlite {
            return statement;
        }
        let Some(text) = statement["sql"].as_str().map(str::to_owned) else {
            return statement;
        };
        let params = match statement["params"].take() {
            Value::Array(params) => params,
            _ => Vec::new(),
        };
        let (text, params) = self.bind(&text, params);
        statement["sql"] = json!(text);
        statement["params"] = json!(params);
        statement
    }

    /// An integer primary key the database numbers in insertion order.
    pub fn auto_key(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER PRIMARY KEY",
            Dialect::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            Dialect::Mysql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        }
    }

    /// A column type for long text (payloads, header maps).
    pub fn long_text(self) -> &'static str {
        match self {
            Dialect::Mysql => "LONGTEXT",
            Dialect::Sqlite | Dialect::Postgres => "TEXT",
        }
    }
}

/// A text rewritten for a dialect: the rewritten text and, for MySQL, which param each `?`
/// takes (1-based), in order.
struct Binding {
    text: Arc<str>,
    order: Option<Arc<[usize]>>,
}

/// How `text` is rewritten for `dialect`; `None` when it is sent as written (the tokenizer
/// cannot read it, or for MySQL a placeholder is not `?N`).
fn binding(dialect: Dialect, text: &str) -> Option<Binding> {
    match dialect {
        Dialect::Sqlite => None,
        Dialect::Postgres => {
            let text = rewrite_placeholders(text, |p| number(p).map(|n| format!("${n}")))?;
            Some(Binding {
                text: text.into(),
                order: None,
            })
        }
        Dialect::Mysql => {
            let mut order = Vec::new();
            let text = rewrite_placeholders(text, |p| {
                order.push(number(p));
                Some("?".to_owned())
            })?;
            let order: Option<Vec<usize>> = order.into_iter().collect();
            Some(Binding {
                text: text.into(),
                order: Some(order?.into()),
            })
        }
    }
}

/// The texts already bound, by dialect. The services send the same few texts over and over,
/// and tokenizing one costs more than a round trip to the database (216 µs for the ledger's
/// 2.4 KB posting statement in a release build; a hit here is a hash of the text).
struct Bound(Mutex<HashMap<Dialect, Texts>>);

/// Each text's binding, `None` for a text sent as written.
type Texts = HashMap<String, Option<Arc<Binding>>>;

/// Texts kept at most: emptied when full, so texts built from data (an `IN` list per batch
/// size) cannot grow it without bound.
const BOUND_TEXTS: usize = 512;

static BOUND: LazyLock<Bound> = LazyLock::new(|| Bound(Mutex::default()));

impl Bound {
    fn binding(&self, dialect: Dialect, text: &str) -> Option<Arc<Binding>> {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = lock().get(&dialect).and_then(|texts| texts.get(text)) {
            return known.clone();
        }
        // Computed outside the lock: two callers may both compute a new text, which is
        // harmless, rather than every caller waiting on one tokenization.
        let computed = binding(dialect, text).map(Arc::new);
        let mut bound = lock();
        let texts = bound.entry(dialect).or_default();
        if texts.len() >= BOUND_TEXTS {
            texts.clear();
        }
        texts.insert(text.to_owned(), computed.clone());
        computed
    }
}

/// `text` with each bare `?` written `?first`, `?first+1`, … in order, so SQL written with
/// bare placeholders can join a statement whose own params come first.
pub(crate) fn number_bare_placeholders(text: &str, first: usize) -> String {
    let mut next = first;
    rewrite_placeholders(text, |p| {
        (p == "?").then(|| {
            next += 1;
            format!("?{}", next - 1)
        })
    })
    .unwrap_or_else(|| text.to_owned())
}

/// The `N` of a numbered placeholder `?N`.
fn number(placeholder: &str) -> Option<usize> {
    placeholder.strip_prefix('?')?.parse().ok()
}

/// `text` with each placeholder token `f` answers for replaced by that answer, the others and
/// everything else as written; `None` when the tokenizer cannot read the text.
fn rewrite_placeholders(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let tokens = Tokenizer::new(&SQLiteDialect {}, text)
        .tokenize_with_location()
        .ok()?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut copied = 0;
    for token in tokens {
        let Token::Placeholder(placeholder) = &token.token else {
            continue;
        };
        let Some(replacement) = f(placeholder) else {
            continue;
        };
        // Locations count lines and characters from 1.
        let start = token.span.start;
        let line = *line_starts.get(usize::try_from(start.line).ok()?.checked_sub(1)?)?;
        let (column, _) = text[line..]
            .char_indices()
            .nth(usize::try_from(start.column).ok()?.checked_sub(1)?)?;
        let at = line + column;
        out.push_str(&text[copied..at]);
        out.push_str(&replacement);
        copied = at + placeholder.len();
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres(sql: &str) -> String {
        Dialect::Postgres.bind(sql, vec![]).0
    }

    #[test]
    fn postgres_placeholders_become_dollars_and_nothing_quoted_or_commented_changes() {
        let sql =
            "SELECT ?1, '?2', 'it''s ?3' FROM t WHERE a = ?2 -- ?4\n  AND \"b?\" = ?10 /* ?5 */";
        assert_eq!(
            postgres(sql),
            "SELECT $1, '?2', 'it''s ?3' FROM t WHERE a = $2 -- ?4\n  AND \"b?\" = $10 /* ?5 */"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let sql = "SELECT 'é€', ?1\nWHERE 'ü' = ?2 AND x = ?3";
        assert_eq!(postgres(sql), "SELECT 'é€', $1\nWHERE 'ü' = $2 AND x = $3");
    }

    #[test]
    fn a_text_the_tokenizer_cannot_read_is_left_for_the_database_to_refuse() {
        let sql = "SELECT 'unterminated ?1";
        assert_eq!(postgres(sql), sql);
        assert_eq!(Dialect::Mysql.bind(sql, vec![json!(1)]).0, sql);
    }

    #[test]
    fn mysql_takes_one_param_per_placeholder_in_the_order_they_appear() {
        let (sql, params) = Dialect::Mysql.bind(
            "UPDATE t SET a = ?2, b = '?1' WHERE c = ?1 OR d = ?2",
            vec![json!("one"), json!("two")],
        );
        assert_eq!(sql, "UPDATE t SET a = ?, b = '?1' WHERE c = ? OR d = ?");
        assert_eq!(params, vec![json!("two"), json!("one"), json!("two")]);
        // A placeholder without its param is the database's to refuse, not a silent NULL.
        let (sql, params) = Dialect::Mysql.bind("SELECT ?2", vec![json!(1)]);
        assert_eq!((sql.as_str(), params), ("SELECT ?2", vec![json!(1)]));
    }

    #[test]
    fn a_text_bound_before_is_bound_the_same_with_each_calls_params_and_the_cache_stays_bounded() {
        let sql = "SELECT ?2 AS b, ?1 AS a, '?3' AS c -- bound twice";
        for (a, b) in [("x", "y"), ("p", "q")] {
            let (text, params) = Dialect::Mysql.bind(sql, vec![json!(a), json!(b)]);
            assert_eq!(text, "SELECT ? AS b, ? AS a, '?3' AS c -- bound twice");
            assert_eq!(params, vec![json!(b), json!(a)]);
            let (text, _) = Dialect::Postgres.bind(sql, vec![]);
            assert_eq!(text, "SELECT $2 AS b, $1 AS a, '?3' AS c -- bound twice");
        }
        for n in 0..BOUND_TEXTS + 10 {
            Dialect::Postgres.bind(&format!("SELECT ?1 AS n{n}"), vec![]);
        }
        let texts = BOUND.0.lock().unwrap()[&Dialect::Postgres].len();
        assert!(texts <= BOUND_TEXTS, "{texts} texts kept");
    }

    #[test]
    fn sqlite_is_sent_as_written_and_statements_keep_their_other_fields() {
        let sql = "SELECT ?2, ?1";
        assert_eq!(Dialect::Sqlite.bind(sql, vec![json!(1)]).0, sql);
        let statement = json!({"sql": "SELECT ?1", "params": [5], "max_rows": 3});
        assert_eq!(
            Dialect::Postgres.bind_statement(statement),
            json!({"sql": "SELECT $1", "params": [5], "max_rows": 3})
        );
        assert_eq!(
            Dialect::Mysql.bind_statement(json!({"sql": "CREATE TABLE t (a INT)"})),
            json!({"sql": "CREATE TABLE t (a INT)", "params": []})
        );
    }

    #[test]
    fn bare_placeholders_are_numbered_after_the_statements_own() {
        assert_eq!(
            number_bare_placeholders("SELECT 1 FROM t WHERE a = ? AND b = '?' AND c = ?", 7),
            "SELECT 1 FROM t WHERE a = ?7 AND b = '?' AND c = ?8"
        );
    }

    #[test]
    fn the_dialect_is_the_declared_one_and_never_guessed_from_the_name() {
        let described = |name: &str, capabilities: &[&str]| {
            Dialect::declared_by(
                &json!({"domain": "db", "name": name, "capabilities": capabilities}),
            )
        };
        assert_eq!(
            described("wire", &["transactions", "dialect:postgres"]),
            Ok(Dialect::Postgres)
        );
        assert_eq!(described("sqlite", &["dialect:mysql"]), Ok(Dialect::Mysql));
        assert_eq!(
            described("postgres", &["rls", "dialect:postgres"]),
            Ok(Dialect::Postgres)
        );
        let unnamed = described("postgres", &["rls"]).unwrap_err();
        assert!(unnamed.contains("declares no SQL dialect"), "{unnamed}");
        let none = described("wire", &["transactions"]).unwrap_err();
        assert!(none.contains("declares no SQL dialect"), "{none}");
        assert!(none.contains("dialect:<name>"), "{none}");
        let other = described("postgres", &["dialect:mssql"]).unwrap_err();
        assert!(other.contains("dialect:mssql"), "{other}");
    }
}
