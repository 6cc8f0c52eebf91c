//! A service's only door to its database: the db provider's `query`, `execute` and
//! `transaction` actions through the tenant's client.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::Dialect;
use tokio::sync::OnceCell;

use crate::expect_domain;

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
///
/// The services write their SQL once, with SQLite's numbered placeholders (`?1`), and every
/// statement is bound for the dialect the provider declares ([`Dialect::bind`], the one
/// translator) when it is sent.
#[derive(Debug, Clone)]
pub struct Db {
    provider: String,
    /// Learned from the provider's descriptor on the first call, once per process: the
    /// provider may be registered (a plugin, a remote engine) after the service was built.
    dialect: Arc<OnceCell<Dialect>>,
    /// Who owns the SQL, for errors: `the ledger`, `inventory`, ….
    service: &'static str,
}

impl Db {
    /// The tables of `service` (named in errors) in db provider `provider`. Which SQL it
    /// speaks is asked of the provider on the first call ([`Db::dialect`]).
    pub fn new(provider: &str, service: &'static str) -> Result<Self, Problem> {
        expect_domain(provider, "db")?;
        Ok(Db {
            provider: provider.into(),
            dialect: Arc::default(),
            service,
        })
    }

    /// The dialect the provider declares (`dialect:<name>`, ADR 24), asked once. The
    /// services' SQL is written for SQLite and PostgreSQL; MySQL lacks `INSERT … ON
    /// CONFLICT`, which every service writes with. A provider speaking neither is a setup
    /// the service cannot run on: `internal`, with what to declare.
    pub async fn dialect(&self, client: &dyn ProviderClient) -> Result<Dialect, Problem> {
        let dialect = self
            .dialect
            .get_or_try_init(|| Dialect::of(client, &self.provider))
            .await
            .map_err(|problem| match problem.code {
                ErrorCode::ParamsUnprocessable => self.unusable(&problem.detail),
                _ => problem,
            })?;
        match dialect {
            Dialect::Sqlite | Dialect::Postgres => Ok(*dialect),
            Dialect::Mysql => {
                Err(self.unusable(&format!("{} declares dialect:mysql", self.provider)))
            }
        }
    }

    fn unusable(&self, why: &str) -> Problem {
        Problem::new(
            ErrorCode::Internal,
            format!(
                "{} cannot keep its tables in {}: {why}; its SQL is written for the dialects \
                 sqlite and postgres",
                self.service, self.provider
            ),
        )
    }

    /// `{"sql", "params", …}` bound for the provider's dialect.
    async fn bound(&self, client: &dyn ProviderClient, statement: Value) -> Result<Value, Problem> {
        Ok(self.dialect(client).await?.bind_statement(statement))
    }

    /// One statement for a `transaction` batch, as written (it is bound when sent).
    pub fn statement(&self, text: &str, params: Vec<Value>) -> Value {
        json!({"sql": text, "params": params})
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
        let query = json!({"sql": text, "params": params, "max_rows": MAX_ROWS});
        let query = self.bound(client, query).await?;
        let mut answer = client.invoke(&self.provider, "query", query).await?;
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
        let statement = self.bound(client, self.statement(text, params)).await?;
        let answer = client.invoke(&self.provider, "execute", statement).await?;
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
        let answer = self.send_transaction(client, statements).await?;
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
        self.send_transaction(client, statements).await.map(drop)
    }

    async fn send_transaction(
        &self,
        client: &dyn ProviderClient,
        statements: Vec<Value>,
    ) -> Result<Value, Problem> {
        let dialect = self.dialect(client).await?;
        let statements: Vec<Value> = statements
            .into_iter()
            .map(|statement| dialect.bind_statement(statement))
            .collect();
        client
            .invoke(
                &self.provider,
                "transaction",
                json!({"statements": statements}),
            )
            .await
    }
}

fn broken(what: &str) -> Problem {
    Problem::new(
        ErrorCode::Internal,
        format!("the db provider answered {what}"),
    )
}
