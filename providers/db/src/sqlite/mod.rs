//! `db/sqlite`: one SQLite database file per tenant under the engine's data directory.
//!
//! See `docs.md` next to this file for what a user configures and can expect.

mod config;
mod errors;
mod guard;
mod pools;
mod values;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Executor, Sqlite, Statement};
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
    to_result,
};

pub use config::SqliteConfig;

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TableInfo, TransactionParams, TransactionResult,
};
use pools::{Registry, TenantPools};

/// The `db/sqlite` engine. Owns the per-tenant pools so that restarting a tenant's instance
/// (a reconfigure) reuses them or coexists with them instead of racing them.
pub struct SqliteFactory {
    descriptor: ProviderDescriptor,
    registry: Arc<Registry>,
}

impl SqliteFactory {
    /// `root` is the engine's data directory; it is created on the first start if missing and
    /// holds one `<tenant>.db` (plus its WAL files) per tenant.
    pub fn new(root: PathBuf) -> Self {
        SqliteFactory {
            descriptor: ProviderDescriptor {
                domain: "db".into(),
                name: "sqlite".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "Embedded SQLite, one database file per tenant.".into(),
                capabilities: vec!["transactions".into(), "metadata".into()],
                config_schema: config::schema(),
                actions: domains::actions("db"),
            },
            registry: Arc::new(Registry::new(root)),
        }
    }
}

#[async_trait]
impl ProviderFactory for SqliteFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = SqliteConfig::parse(ctx.config)?;
        let pools = self.registry.acquire(&ctx.tenant, &config).await?;
        Ok(Arc::new(SqliteProvider {
            tenant: ctx.tenant,
            max_rows: config.max_rows,
            pools,
            registry: self.registry.clone(),
            stopped: AtomicBool::new(false),
        }))
    }
}

/// One tenant's instance: its row cap and a share of the tenant's pools.
struct SqliteProvider {
    tenant: TenantId,
    max_rows: u32,
    pools: Arc<TenantPools>,
    registry: Arc<Registry>,
    /// Makes `stop` idempotent, so the pools' user count stays right.
    stopped: AtomicBool,
}

#[async_trait]
impl Provider for SqliteProvider {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "query" => to_result(self.query(parse_params(call.params)?).await?),
            "execute" => to_result(self.execute(parse_params(call.params)?).await?),
            "transaction" => to_result(self.transaction(parse_params(call.params)?).await?),
            "metadata" => to_result(self.metadata(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("db/sqlite has no action {other:?}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        let probe = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sqlite_schema")
            .fetch_one(&self.pools.reader)
            .await;
        let (status, detail) = match probe {
            Ok(_) => (HealthStatus::Up, None),
            Err(e) => (HealthStatus::Down, Some(errors::from_sqlx(e).detail)),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: "sqlite".into(),
            status,
            detail,
        }])
    }

    /// Gives up this instance's share of the tenant's pools; they close when no instance
    /// uses them any more (the current one after a reconfigure keeps them open).
    async fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            self.registry.release(&self.tenant, &self.pools).await;
        }
    }
}

impl SqliteProvider {
    /// Streams rows and stops reading at `max_rows + 1`, so a huge result costs no more
    /// memory than the cap.
    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        let cap = p.max_rows.map_or(self.max_rows, |m| m.min(self.max_rows)) as usize;
        let mut conn = self
            .pools
            .reader
            .acquire()
            .await
            .map_err(errors::from_sqlx)?;
        let query = values::bind(sqlx::query(&p.sql), &p.params, "/params")?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut truncated = false;
        {
            let mut stream = query.fetch(&mut *conn);
            while let Some(row) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                let row = row.map_err(|e| errors::statement(e, "/sql"))?;
                if rows.len() == cap {
                    truncated = true;
                    break;
                }
                if columns.is_none() {
                    columns = Some(values::columns_of_row(&row));
                }
                rows.push(values::row_object(&row).map_err(|e| {
                    ProviderError::internal(format!("cannot read a result cell: {e}"))
                })?);
            }
        }
        let columns = match columns {
            Some(columns) => columns,
            // No row to look at: the prepared statement still knows its columns.
            None => (&mut *conn)
                .prepare(p.sql.as_str())
                .await
                .map_err(|e| errors::statement(e, "/sql"))?
                .columns()
                .iter()
                .map(values::column_info)
                .collect(),
        };
        Ok(QueryResult {
            columns,
            row_count: rows.len(),
            rows,
            truncated,
        })
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut conn = self
            .pools
            .writer
            .acquire()
            .await
            .map_err(errors::from_sqlx)?;
        run_statement(&mut conn, &p, "").await
    }

    /// Runs the batch inside the engine's savepoint (see `guard`); any failure rolls the
    /// whole batch back and names the failing statement.
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let savepoint = guard::savepoint_name();
        let mut conn = self
            .pools
            .writer
            .acquire()
            .await
            .map_err(errors::from_sqlx)?;
        sqlx::query(&format!("SAVEPOINT {savepoint}"))
            .execute(&mut *conn)
            .await
            .map_err(errors::from_sqlx)?;
        let mut results = Vec::with_capacity(p.statements.len());
        for (index, statement) in p.statements.iter().enumerate() {
            match run_statement(&mut conn, statement, &format!("/statements/{index}")).await {
                Ok(result) => results.push(result),
                Err(mut error) => {
                    roll_back(&mut conn, savepoint).await;
                    error.detail = format!(
                        "statement {index} failed, nothing was committed: {}",
                        error.detail
                    );
                    return Err(error);
                }
            }
        }
        if let Err(e) = sqlx::query(&format!("RELEASE {savepoint}"))
            .execute(&mut *conn)
            .await
        {
            roll_back(&mut conn, savepoint).await;
            return Err(errors::from_sqlx(e));
        }
        Ok(TransactionResult { results })
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let mut conn = self
            .pools
            .reader
            .acquire()
            .await
            .map_err(errors::from_sqlx)?;
        // Views and virtual tables' shadow tables are left out; SQLite's own sqlite_* tables too.
        let tables: Vec<(String, bool)> = sqlx::query_as(
            "SELECT name, wr FROM pragma_table_list \
             WHERE schema = 'main' AND type IN ('table', 'virtual') \
               AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
               AND (?1 IS NULL OR name = ?1 COLLATE NOCASE) \
             ORDER BY name",
        )
        .bind(p.table.as_deref())
        .fetch_all(&mut *conn)
        .await
        .map_err(errors::from_sqlx)?;
        if let Some(table) = &p.table
            && tables.is_empty()
        {
            return Err(ProviderError::not_found(format!(
                "no table named {table:?}"
            )));
        }
        let mut result = Vec::with_capacity(tables.len());
        for (name, without_rowid) in tables {
            let columns: Vec<(String, String, bool, i64)> = sqlx::query_as(
                "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1, 'main') ORDER BY cid",
            )
            .bind(&name)
            .fetch_all(&mut *conn)
            .await
            .map_err(errors::from_sqlx)?;
            result.push(TableInfo {
                columns: describe_columns(columns, without_rowid),
                name,
            });
        }
        Ok(MetadataResult { tables: result })
    }
}

/// Runs one statement on the writer connection. `at` is the statement's JSON pointer prefix
/// (`""` for execute, `/statements/<i>` in a batch) for error reporting.
async fn run_statement(
    conn: &mut PoolConnection<Sqlite>,
    statement: &StatementParams,
    at: &str,
) -> Result<ExecResult, ProviderError> {
    let query = values::bind(
        sqlx::query(&statement.sql),
        &statement.params,
        &format!("{at}/params"),
    )?;
    guard::forget_last_insert_rowid(conn)
        .await
        .map_err(errors::from_sqlx)?;
    let done = query
        .execute(&mut **conn)
        .await
        .map_err(|e| errors::statement(e, &format!("{at}/sql")))?;
    Ok(ExecResult {
        rows_affected: done.rows_affected(),
        last_insert_id: Some(done.last_insert_rowid()).filter(|id| *id != 0),
    })
}

/// Undoes a batch. If even this fails the connection stays inside the transaction, and the
/// writer pool's `after_release` check closes it, which rolls back.
async fn roll_back(conn: &mut PoolConnection<Sqlite>, savepoint: &str) {
    for sql in [
        format!("ROLLBACK TO {savepoint}"),
        format!("RELEASE {savepoint}"),
    ] {
        if let Err(e) = sqlx::query(&sql).execute(&mut **conn).await {
            tracing::warn!(error = %e, "db/sqlite: rollback failed; discarding the connection");
            return;
        }
    }
}

/// Turns `pragma_table_info` rows into contract columns. SQLite lets NULL into a primary key
/// unless the key is a rowid alias (a lone `INTEGER PRIMARY KEY`) or the table is
/// `WITHOUT ROWID`, so only those keys count as not nullable besides `NOT NULL` columns.
fn describe_columns(
    columns: Vec<(String, String, bool, i64)>,
    without_rowid: bool,
) -> Vec<TableColumn> {
    let key_columns = columns.iter().filter(|c| c.3 > 0).count();
    columns
        .into_iter()
        .map(|(name, declared_type, not_null, pk)| {
            let primary_key = pk > 0;
            let rowid_alias =
                primary_key && key_columns == 1 && declared_type.eq_ignore_ascii_case("INTEGER");
            TableColumn {
                nullable: !(not_null || (primary_key && (without_rowid || rowid_alias))),
                name,
                declared_type,
                primary_key,
            }
        })
        .collect()
}
