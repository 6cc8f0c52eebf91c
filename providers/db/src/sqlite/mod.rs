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
use sqlx::pool::PoolConnection;
use sqlx::{Executor, Sqlite, SqlitePool, Statement};
use switchyard_spi::{
    Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};

pub use config::SqliteConfig;

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TableInfo, TransactionParams, TransactionResult,
};
use crate::engine::{self, Engine, Instance, Session};
use crate::rows::{self, Reader, Rows};
use pools::{Pools, Registry};

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
            descriptor: engine::descriptor(
                SqliteProvider::NAME,
                "Embedded SQLite, one database file per tenant.",
                &["transactions", "metadata"],
                config::schema(),
            ),
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
        Ok(Arc::new(Instance(SqliteProvider {
            tenant: ctx.tenant,
            max_rows: config.max_rows,
            pools,
            registry: self.registry.clone(),
            stopped: AtomicBool::new(false),
        })))
    }
}

/// One tenant's instance: its row cap and a share of the tenant's pools.
struct SqliteProvider {
    tenant: TenantId,
    max_rows: u32,
    pools: Pools,
    registry: Arc<Registry>,
    /// Makes `stop` idempotent, so the pools' user count stays right.
    stopped: AtomicBool,
}

#[async_trait]
impl Engine for SqliteProvider {
    const NAME: &'static str = "sqlite";

    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        let cap = engine::row_cap(p.max_rows, self.max_rows);
        let mut conn = connection(&self.pools.reader).await?;
        let query = values::bind(sqlx::query(&p.sql), &p.params, "/params")?;
        let reader = Reader {
            columns: values::columns_of_row,
            object: |row| {
                values::row_object(row)
                    .map_err(|e| ProviderError::internal(format!("cannot read a result cell: {e}")))
            },
            error: |e| errors::statement(e, "/sql"),
        };
        let Rows {
            columns,
            rows,
            truncated,
        } = rows::read(&mut *conn, query, cap, reader).await?;
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
        Ok(QueryResult::new(columns, rows, truncated))
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut conn = connection(&self.pools.writer).await?;
        conn.run_statement(&p, "").await
    }

    /// Runs the batch inside the engine's savepoint (see `guard`); any failure rolls the
    /// whole batch back and names the failing statement.
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let savepoint = guard::savepoint_name();
        let mut conn = connection(&self.pools.writer).await?;
        sqlx::query(&format!("SAVEPOINT {savepoint}"))
            .execute(&mut *conn)
            .await
            .map_err(errors::from_sqlx)?;
        let result = match engine::run_batch(&mut conn, &p.statements).await {
            Ok(result) => result,
            Err(error) => {
                roll_back(&mut conn, savepoint).await;
                return Err(error);
            }
        };
        if let Err(e) = sqlx::query(&format!("RELEASE {savepoint}"))
            .execute(&mut *conn)
            .await
        {
            roll_back(&mut conn, savepoint).await;
            return Err(errors::from_sqlx(e));
        }
        Ok(result)
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let mut conn = connection(&self.pools.reader).await?;
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
            return Err(engine::no_table(table));
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

    async fn probe(&self) -> Result<(), ProviderError> {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sqlite_schema")
            .fetch_one(&self.pools.reader)
            .await
            .map(drop)
            .map_err(errors::from_sqlx)
    }

    /// Gives up this instance's share of the tenant's pools; they close when no instance
    /// uses them any more (the current one after a reconfigure keeps them open).
    async fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            self.registry.release(&self.tenant, &self.pools).await;
        }
    }
}

/// The writer connection, in autocommit for `execute` or inside the batch's savepoint.
impl Session for PoolConnection<Sqlite> {
    async fn run_statement(
        &mut self,
        statement: &StatementParams,
        at: &str,
    ) -> Result<ExecResult, ProviderError> {
        let query = values::bind(
            sqlx::query(&statement.sql),
            &statement.params,
            &format!("{at}/params"),
        )?;
        guard::forget_last_insert_rowid(self)
            .await
            .map_err(errors::from_sqlx)?;
        let done = query
            .execute(&mut **self)
            .await
            .map_err(|e| errors::statement(e, &format!("{at}/sql")))?;
        Ok(ExecResult {
            rows_affected: done.rows_affected(),
            last_insert_id: Some(done.last_insert_rowid()).filter(|id| *id != 0),
        })
    }
}

/// A connection of `pool`, waited for no longer than the tenant's busy timeout.
async fn connection(pool: &SqlitePool) -> Result<PoolConnection<Sqlite>, ProviderError> {
    pool.acquire().await.map_err(errors::from_sqlx)
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
