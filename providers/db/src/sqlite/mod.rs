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
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Executor, SqlitePool, Statement};
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
use guard::Call;
pub(crate) use guard::limit_heap;
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
                &["transactions", "metadata", "dialect:sqlite"],
                config::schema(),
            ),
            registry: Arc::new(Registry::new(root)),
        }
    }
}

#[async_trait]
impl ProviderFactory for SqliteFactory {
    fn node_local(&self) -> Option<&'static str> {
        Some("a SQLite file per tenant under this node's data dir")
    }

    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = SqliteConfig::parse(ctx.config)?;
        let pools = self.registry.acquire(&ctx.tenant, &config).await?;
        Ok(Arc::new(Instance(SqliteProvider {
            tenant: ctx.tenant,
            max_rows: config.max_rows,
            statement_timeout: config.statement_timeout(),
            pools,
            registry: self.registry.clone(),
            stopped: AtomicBool::new(false),
        })))
    }
}

/// One tenant's instance: its row cap, its calls' deadline and a share of the tenant's pools.
struct SqliteProvider {
    tenant: TenantId,
    max_rows: u32,
    statement_timeout: Duration,
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
        let mut conn = self.call(&self.pools.reader).await?;
        let result = async {
            let query = values::bind(sqlx::query(&p.sql), &p.params, "/params")?;
            let reader = Reader {
                columns: values::columns_of_row,
                object: |row| {
                    values::row_object(row).map_err(|e| {
                        ProviderError::internal(format!("cannot read a result cell: {e}"))
                    })
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
        .await;
        conn.finish();
        result
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut conn = self.call(&self.pools.writer).await?;
        let result = conn.run_statement(&p, "").await;
        conn.finish();
        result
    }

    /// Runs the batch inside the engine's savepoint (see `guard`); any failure rolls the
    /// whole batch back and names the failing statement.
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let savepoint = guard::savepoint_name();
        let mut conn = self.call(&self.pools.writer).await?;
        let result = async {
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
        .await;
        conn.finish();
        result
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let mut conn = self.call(&self.pools.reader).await?;
        let result = async {
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
        .await;
        conn.finish();
        result
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        let mut conn = self.call(&self.pools.reader).await?;
        let result = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sqlite_schema")
            .fetch_one(&mut *conn)
            .await
            .map(drop)
            .map_err(errors::from_sqlx);
        conn.finish();
        result
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
    /// A connection of `pool` (waited for no longer than the tenant's busy timeout), its
    /// statements held to the tenant's statement timeout from now on.
    async fn call(&self, pool: &SqlitePool) -> Result<Call, ProviderError> {
        let conn = pool.acquire().await.map_err(errors::from_sqlx)?;
        Call::begin(conn, self.statement_timeout)
            .await
            .map_err(errors::from_sqlx)
    }
}

/// The writer connection, in autocommit for `execute` or inside the batch's savepoint.
impl Session for Call {
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

/// Undoes a batch. If even this fails the connection stays inside the transaction, and the
/// writer pool's `after_release` check closes it, which rolls back. SQLite has already rolled
/// the whole transaction back when it interrupted a write, and then says so here.
async fn roll_back(conn: &mut Call, savepoint: &str) {
    if let Err(e) = conn.lift_deadline().await {
        tracing::warn!(error = %e, "db/sqlite: cannot lift the deadline before a rollback");
    }
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

/// Always hosted: the embedded default, the tenants' files under the data directory and the
/// services' books beside them.
pub(crate) fn builtin(
    host: &switchyard_spi::Host,
) -> Result<Option<Arc<dyn switchyard_spi::ProviderFactory>>, switchyard_contracts::SchemaError> {
    Ok(Some(Arc::new(crate::ServiceBooks::new(
        Arc::new(SqliteFactory::new(host.data.join("db/sqlite"))),
        Arc::new(SqliteFactory::new(host.books.join("db/sqlite"))),
    ))))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;
    use switchyard_spi::ErrorCode;
    use switchyard_spi::testkit::Harness;

    use super::*;

    /// Counts for ever without returning a row, so only a deadline or an interrupt ends it.
    const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c";

    fn harness() -> (tempfile::TempDir, Harness) {
        let root = tempfile::tempdir().unwrap();
        let factory = SqliteFactory::new(root.path().to_path_buf());
        (root, Harness::new(Arc::new(factory)))
    }

    #[tokio::test]
    async fn a_runaway_statement_is_interrupted_at_the_statement_timeout() {
        let (_root, h) = harness();
        let t = h
            .tenant_with_config("acme", json!({"statement_timeout_ms": 200}))
            .await;
        let started = Instant::now();
        let err = t.err("query", json!({"sql": ENDLESS})).await;
        assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let err = t
            .err(
                "transaction",
                json!({"statements": [{"sql": "CREATE TABLE t (x)"}, {"sql": format!("INSERT INTO t {ENDLESS}")}]}),
            )
            .await;
        assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
        // Nothing of the batch stayed, and the connections serve the next calls.
        let tables = t.ok("metadata", json!({})).await;
        assert_eq!(tables["tables"], json!([]));
        t.ok("execute", json!({"sql": "CREATE TABLE u (x)"})).await;
    }

    #[tokio::test]
    async fn an_abandoned_call_interrupts_its_statement() {
        let (_root, h) = harness();
        // One reader, a long statement timeout: only the interrupt can free the connection.
        let t = h
            .tenant_with_config(
                "acme",
                json!({"max_connections": 1, "busy_timeout_ms": 2000, "statement_timeout_ms": 600000}),
            )
            .await;
        let abandoned = tokio::time::timeout(
            Duration::from_millis(300),
            t.call("query", json!({"sql": ENDLESS})),
        )
        .await;
        assert!(
            abandoned.is_err(),
            "the endless query answered: {abandoned:?}"
        );
        let rows = t.ok("query", json!({"sql": "SELECT 1 AS one"})).await;
        assert_eq!(rows["rows"][0]["one"], 1);
    }

    #[tokio::test]
    async fn a_gigabyte_value_is_refused_before_it_is_allocated() {
        let (_root, h) = harness();
        let t = h.tenant("acme").await;
        for sql in [
            "SELECT length(randomblob(999999999)) AS n",
            "SELECT length(zeroblob(999999999)) AS n",
        ] {
            let err = t.err("query", json!({"sql": sql})).await;
            assert_eq!(err.code, ErrorCode::PayloadTooLarge, "{sql}: {err:?}");
        }
        let rows = t
            .ok(
                "query",
                json!({"sql": "SELECT length(randomblob(1000000)) AS n"}),
            )
            .await;
        assert_eq!(rows["rows"][0]["n"], 1_000_000);
    }

    #[tokio::test]
    async fn a_result_past_the_result_bytes_is_refused() {
        let (_root, h) = harness();
        let t = h.tenant("acme").await;
        // 24 rows of 2 MB of hex: past the default 16 MiB.
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 24) \
                   SELECT hex(randomblob(1000000)) AS chunk FROM c";
        let err = t.err("query", json!({"sql": sql})).await;
        assert_eq!(err.code, ErrorCode::PayloadTooLarge, "{err:?}");
    }
}
