//! A service's only door to its database: the db provider's `query`, `execute` and
//! `transaction` actions through the tenant's client.

use serde_json::{Map, Value, json};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::Dialect;

/// Most rows one `query` returns under the engines' default config. Reads that must be
/// complete page with `LIMIT` [`PAGE`] and a key.
const MAX_ROWS: usize = 10_000;

/// Rows per page of the services' paged reads.
pub const PAGE: usize = 5_000;

pub type Row = Map<String, Value>;

/// The rows of one query, and whether more matched than the engine returns at once.
pub struct Rows {
    pub rows: Vec<Row>,
    pub truncated: bool,
}

/// A db provider the service keeps its tables in.
#[derive(Debug, Clone)]
pub struct Db {
    provider: String,
    dialect: Dialect,
    /// Who owns the SQL, for errors: `the ledger`, `inventory`, ….
    service: &'static str,
}

impl Db {
    /// The services' SQL runs on SQLite and PostgreSQL; MySQL lacks `INSERT … ON CONFLICT`,
    /// which every service writes with. `service` names the caller in errors.
    pub fn new(provider: &str, service: &'static str) -> Result<Self, Problem> {
        match Dialect::of(provider)? {
            Dialect::Mysql => Err(Problem::new(
                ErrorCode::RequestInvalid,
                format!("{service} runs on db/sqlite and db/postgres, not {provider}"),
            )),
            dialect => Ok(Db {
                provider: provider.into(),
                dialect,
                service,
            }),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The services' SQL is written with SQLite's numbered placeholders (`?1`); PostgreSQL
    /// spells them `$1`.
    pub fn sql(&self, text: &str) -> String {
        match self.dialect {
            Dialect::Postgres => dollar_placeholders(text),
            Dialect::Sqlite | Dialect::Mysql => text.to_owned(),
        }
    }

    /// One statement for a `transaction` batch.
    pub fn statement(&self, text: &str, params: Vec<Value>) -> Value {
        json!({"sql": self.sql(text), "params": params})
    }

    /// Creates `tables` (`CREATE TABLE IF NOT EXISTS …` texts) in one transaction.
    pub async fn create(
        &self,
        client: &dyn ProviderClient,
        tables: &[impl AsRef<str>],
    ) -> Result<(), Problem> {
        let statements = tables
            .iter()
            .map(|sql| self.statement(sql.as_ref(), vec![]))
            .collect();
        self.transaction(client, statements).await
    }

    /// All rows of a read that must be complete: more than the engine returns at once is an
    /// internal error (such reads page).
    pub async fn query(
        &self,
        client: &dyn ProviderClient,
        text: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, Problem> {
        let rows = self.query_capped(client, text, params).await?;
        if rows.truncated {
            return Err(Problem::new(
                ErrorCode::Internal,
                format!(
                    "a read of {} matched more than {MAX_ROWS} rows; it must page",
                    self.service
                ),
            ));
        }
        Ok(rows.rows)
    }

    /// The rows of a read, at most what the engine returns at once.
    pub async fn query_capped(
        &self,
        client: &dyn ProviderClient,
        text: &str,
        params: Vec<Value>,
    ) -> Result<Rows, Problem> {
        let mut answer = client
            .invoke(
                &self.provider,
                "query",
                json!({"sql": self.sql(text), "params": params, "max_rows": MAX_ROWS}),
            )
            .await?;
        let truncated = answer["truncated"] == json!(true);
        let Value::Array(rows) = answer["rows"].take() else {
            return Err(broken("a query answer without rows"));
        };
        let rows = rows
            .into_iter()
            .map(|row| match row {
                Value::Object(row) => Ok(row),
                other => Err(broken(&format!("a row that is not an object: {other}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Rows { rows, truncated })
    }

    /// The number of rows the statement changed.
    pub async fn execute(
        &self,
        client: &dyn ProviderClient,
        text: &str,
        params: Vec<Value>,
    ) -> Result<u64, Problem> {
        let answer = client
            .invoke(
                &self.provider,
                "execute",
                json!({"sql": self.sql(text), "params": params}),
            )
            .await?;
        answer["rows_affected"]
            .as_u64()
            .ok_or_else(|| broken("an execute answer without rows_affected"))
    }

    /// Runs `statements` atomically and answers how many rows each changed, for a caller
    /// whose later statements only count if an earlier one changed something.
    pub async fn transaction_affected(
        &self,
        client: &dyn ProviderClient,
        statements: Vec<Value>,
    ) -> Result<Vec<u64>, Problem> {
        let answer = client
            .invoke(
                &self.provider,
                "transaction",
                json!({"statements": statements}),
            )
            .await?;
        answer["results"]
            .as_array()
            .ok_or_else(|| broken("a transaction answer without results"))?
            .iter()
            .map(|r| {
                r["rows_affected"]
                    .as_u64()
                    .ok_or_else(|| broken("a transaction result without rows_affected"))
            })
            .collect()
    }

    /// Runs `statements` (from [`Db::statement`] or the outbox) atomically.
    pub async fn transaction(
        &self,
        client: &dyn ProviderClient,
        statements: Vec<Value>,
    ) -> Result<(), Problem> {
        client
            .invoke(
                &self.provider,
                "transaction",
                json!({"statements": statements}),
            )
            .await
            .map(drop)
    }
}

/// `text` with each numbered placeholder `?N` written `$N`. The text is tokenized, so a `?`
/// inside a string literal, a quoted identifier or a comment stays as written. A text the
/// tokenizer cannot read is returned unchanged, and the database reports it.
fn dollar_placeholders(text: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&SQLiteDialect {}, text).tokenize_with_location() else {
        return text.to_owned();
    };
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .collect();
    // `?` and `$` are one byte each: rewriting in place keeps every other offset.
    let mut bytes = text.as_bytes().to_vec();
    for token in tokens {
        let Token::Placeholder(placeholder) = &token.token else {
            continue;
        };
        if !placeholder.starts_with('?') {
            continue;
        }
        // Locations count lines and characters from 1.
        let start = token.span.start;
        let line = line_starts[start.line as usize - 1];
        let column = text[line..]
            .char_indices()
            .nth(start.column as usize - 1)
            .map(|(at, _)| at);
        if let Some(at) = column {
            bytes[line + at] = b'$';
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
}

fn broken(what: &str) -> Problem {
    Problem::new(
        ErrorCode::Internal,
        format!("the db provider answered {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::dollar_placeholders;

    #[test]
    fn placeholders_become_dollars_and_nothing_quoted_or_commented_changes() {
        let sql =
            "SELECT ?1, '?2', 'it''s ?3' FROM t WHERE a = ?2 -- ?4\n  AND \"b?\" = ?10 /* ?5 */";
        assert_eq!(
            dollar_placeholders(sql),
            "SELECT $1, '?2', 'it''s ?3' FROM t WHERE a = $2 -- ?4\n  AND \"b?\" = $10 /* ?5 */"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let sql = "SELECT 'é€', ?1\nWHERE 'ü' = ?2 AND x = ?3";
        assert_eq!(
            dollar_placeholders(sql),
            "SELECT 'é€', $1\nWHERE 'ü' = $2 AND x = $3"
        );
    }

    #[test]
    fn a_text_the_tokenizer_cannot_read_is_left_for_the_database_to_refuse() {
        let sql = "SELECT 'unterminated ?1";
        assert_eq!(dollar_placeholders(sql), sql);
    }
}
