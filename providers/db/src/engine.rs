//! What every engine's tenant instance shares: answering the domain's actions ([`Engine`],
//! served to the runtime by [`Instance`]), and the rules of the actions that the contract
//! fixes rather than the database — the row cap, how a failed batch is reported, the shape of
//! `metadata`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    CallContext, DependencyHealth, Describe, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, parse_params, to_result,
};

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TableInfo, TransactionParams, TransactionResult,
};

/// One tenant's instance of an engine: the four actions in the engine's dialect, a health
/// probe and stop. Reading params, writing results and naming the engine are [`Instance`]'s.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// The engine's name under `db/`, which errors and health name it by.
    const NAME: &'static str;

    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError>;
    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError>;
    /// Runs the batch in one transaction: all of it or, after any failure, none of it.
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError>;
    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError>;
    /// A round trip to the database; the error's detail is what health shows.
    async fn probe(&self) -> Result<(), ProviderError>;
    /// See [`Provider::stop`].
    async fn stop(&self);
}

/// The descriptor of engine `db/<name>`: every engine serves the db domain's actions at this
/// crate's version; they differ in what they say of themselves and in their config.
pub(crate) fn descriptor(
    name: &str,
    summary: &str,
    capabilities: &[&str],
    config_schema: Value,
) -> ProviderDescriptor {
    Describe::new("db", name, env!("CARGO_PKG_VERSION"))
        .summary(summary)
        .capabilities(capabilities)
        .config_schema(config_schema)
        .build()
}

/// An [`Engine`] as the runtime calls it (a wrapper, because `Provider` is another crate's
/// trait and cannot be implemented for every `Engine` directly).
pub(crate) struct Instance<E>(pub E);

#[async_trait]
impl<E: Engine> Provider for Instance<E> {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let engine = &self.0;
        match call.action.as_str() {
            "query" => to_result(engine.query(parse_params(call.params)?).await?),
            "execute" => {
                let statement: StatementParams = parse_params(call.params)?;
                let wanted = statement.last_insert_id;
                to_result(engine.execute(statement).await?.reported_as(wanted))
            }
            "transaction" => to_result(engine.transaction(parse_params(call.params)?).await?),
            "metadata" => to_result(engine.metadata(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("db/{} has no action {other:?}", E::NAME),
            )),
        }
    }

    async fn health(&self) -> Health {
        let (status, detail) = match self.0.probe().await {
            Ok(()) => (HealthStatus::Up, None),
            Err(e) => (HealthStatus::Down, Some(e.detail)),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: E::NAME.into(),
            status,
            detail,
        }])
    }

    async fn stop(&self) {
        self.0.stop().await;
    }
}

/// The most rows a `query` keeps: the caller's `max_rows`, never more than the tenant's.
pub(crate) fn row_cap(requested: Option<u32>, max_rows: u32) -> usize {
    requested.map_or(max_rows, |m| m.min(max_rows)) as usize
}

/// The connection a call's statements run on (inside the call's transaction, or db/sqlite's
/// savepoint), so `execute` and every engine's `transaction` batch run them alike. A trait
/// rather than a closure handed to [`run_batch`]: rustc cannot prove an async closure's
/// borrowing future `Send`, which the runtime's boxed futures need.
pub(crate) trait Session: Send {
    /// Runs one statement; `at` is its JSON pointer prefix (`""` for execute,
    /// `/statements/<i>` in a batch).
    async fn run_statement(
        &mut self,
        statement: &StatementParams,
        at: &str,
    ) -> Result<ExecResult, ProviderError>;
}

/// Runs a batch's statements in order. The first failure ends the batch, its detail naming
/// the statement; the caller then rolls the batch back.
pub(crate) async fn run_batch(
    session: &mut impl Session,
    statements: &[StatementParams],
) -> Result<TransactionResult, ProviderError> {
    let mut results = Vec::with_capacity(statements.len());
    for (index, statement) in statements.iter().enumerate() {
        match session
            .run_statement(statement, &format!("/statements/{index}"))
            .await
        {
            Ok(result) => results.push(result.reported_as(statement.last_insert_id)),
            Err(mut error) => {
                error.detail = format!(
                    "statement {index} failed, nothing was committed: {}",
                    error.detail
                );
                return Err(error);
            }
        }
    }
    Ok(TransactionResult { results })
}

/// `metadata`'s answer from an engine's catalog rows (a table's name and one of its columns,
/// in column order): the tables sorted by name. A `table` asked for and absent is not found.
pub(crate) fn tables(
    columns: impl IntoIterator<Item = (String, TableColumn)>,
    table: Option<&str>,
) -> Result<MetadataResult, ProviderError> {
    let mut tables: BTreeMap<String, Vec<TableColumn>> = BTreeMap::new();
    for (name, column) in columns {
        tables.entry(name).or_default().push(column);
    }
    if let Some(table) = table
        && tables.is_empty()
    {
        return Err(no_table(table));
    }
    Ok(MetadataResult {
        tables: tables
            .into_iter()
            .map(|(name, columns)| TableInfo { name, columns })
            .collect(),
    })
}

/// `metadata` of a table that does not exist.
pub(crate) fn no_table(table: &str) -> ProviderError {
    ProviderError::not_found(format!("no table named {table:?}"))
}

/// Ends a failed call's sqlx transaction at once: a dropped one is rolled back only when its
/// connection is next used, and its row locks would block the tenant's next call meanwhile.
/// If this fails the connection is broken, and it is dropped.
pub(crate) async fn rollback<DB: sqlx::Database>(tx: sqlx::Transaction<'_, DB>, engine: &str) {
    if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "db/{engine}: rollback failed");
    }
}
