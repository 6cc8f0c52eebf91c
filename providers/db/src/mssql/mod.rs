//! `db/mssql`: Microsoft SQL Server through tiberius (pooled by bb8), siloed: every tenant has
//! a database and a login of its own (see `tenancy`).
//!
//! See `docs.md` next to this file for what a user configures and can expect — and for the
//! fact that this engine has not yet run against a real server.

mod config;
mod env;
mod errors;
mod session;
mod tenancy;
mod values;

pub(crate) use env::builtin;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bb8_tiberius::ConnectionManager;
use switchyard_spi::{
    Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};
use tiberius::numeric::Numeric;
use tokio::sync::OnceCell;

pub use config::ConnectionString;
pub use tenancy::{quote_literal, quote_name, tenant_database, tenant_login};

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, Param, QueryParams, QueryResult, StatementParams,
    TableColumn, TransactionParams, TransactionResult,
};
use crate::engine::{self, Engine, Instance, Session};
use crate::errors::stopped;
use crate::registry::{Lease, Registry};
use crate::siloed::{self, SiloedConfig};

/// One tenant's settings (see `docs.md`).
pub type MssqlConfig = SiloedConfig;

/// How long a call waits for a connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

type Pool = bb8::Pool<ConnectionManager>;
type Client = bb8_tiberius::rt::Client;

/// The `db/mssql` engine. Owns the tenants' pools so that restarting a tenant's instance (a
/// reconfigure) reuses them instead of racing them.
pub struct MssqlFactory {
    descriptor: ProviderDescriptor,
    connection_string: String,
    secret: String,
    prefix: String,
    /// Parsed and pooled lazily by the first start, so building the factory needs no server.
    admin: OnceCell<(ConnectionString, Pool)>,
    /// Each tenant's pool, keyed by its `max_connections`.
    pools: Arc<Registry<Pool, u32>>,
}

impl MssqlFactory {
    /// An engine that provisions tenants through `connection_string` (ADO.NET, JDBC or
    /// `sqlserver://` URL form, see [`ConnectionString`]) of a login allowed to create
    /// databases and logins. Tenant databases are named `t_<tenant>`; tenant passwords are
    /// derived from the connection string unless [`with_secret`](Self::with_secret) gives
    /// another secret.
    pub fn new(connection_string: impl Into<String>) -> Self {
        let connection_string = connection_string.into();
        MssqlFactory {
            descriptor: engine::descriptor(
                MssqlProvider::NAME,
                "Microsoft SQL Server: a database and a login of its own per tenant.",
                &["transactions", "metadata", "dialect:mssql"],
                siloed::schema(),
            ),
            secret: connection_string.clone(),
            connection_string,
            prefix: "t_".into(),
            admin: OnceCell::new(),
            pools: Arc::new(Registry::new()),
        }
    }

    /// The secret tenant passwords are derived from (sha256, see `tenancy`). It must be the
    /// same for every process serving the same server.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = secret.into();
        self
    }

    /// The prefix of tenant database names (default `t_`); characters other than `a-z`,
    /// `0-9` and `_` become `_`.
    pub fn with_database_prefix(mut self, prefix: &str) -> Self {
        self.prefix = siloed::clean_prefix(prefix);
        self
    }

    async fn admin(&self) -> Result<&(ConnectionString, Pool), ProviderError> {
        self.admin
            .get_or_try_init(|| async {
                let target = ConnectionString::parse(&self.connection_string)?;
                let pool = pool(target.admin(), 2);
                Ok((target, pool))
            })
            .await
    }
}

/// A pool that connects on demand (none at build time) and reports a failed connect at once
/// instead of retrying until the timeout, so a wrong password is told as such.
fn pool(config: tiberius::Config, max_connections: u32) -> Pool {
    bb8::Pool::builder()
        .max_size(max_connections)
        .min_idle(None)
        .connection_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Some(Duration::from_secs(300)))
        .retry_connection(false)
        .build_unchecked(ConnectionManager::new(config))
}

#[async_trait]
impl ProviderFactory for MssqlFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = MssqlConfig::parse(ctx.config)?;
        let (target, admin) = self.admin().await?;
        let database = tenant_database(&self.prefix, ctx.tenant.as_str());
        let login = tenant_login(&database);
        let password = tenancy::tenant_password(&self.secret, &login);
        tenancy::provision(admin, &database, &login, &password)
            .await
            .inspect_err(|e| {
                tracing::warn!(
                    server = %target.server(),
                    database = %database,
                    error = %e,
                    "db/mssql: provisioning a tenant failed"
                );
            })?;
        let tenant = target.tenant(&database, &login, &password);
        let pool = async { Ok(pool(tenant, config.max_connections)) };
        let access = self
            .pools
            .acquire(&ctx.tenant, config.max_connections, pool)
            .await?;
        Ok(Arc::new(Instance(MssqlProvider {
            tenant: ctx.tenant,
            config,
            access,
            pools: self.pools.clone(),
            stopped: AtomicBool::new(false),
        })))
    }
}

/// One tenant's instance.
struct MssqlProvider {
    tenant: TenantId,
    config: MssqlConfig,
    access: Arc<Lease<Pool, u32>>,
    pools: Arc<Registry<Pool, u32>>,
    /// Makes `stop` idempotent and refuses calls after it.
    stopped: AtomicBool,
}

/// Tables and columns of the tenant's default schema (views excluded), with the parts of each
/// declared type and whether the column is in the primary key.
const METADATA: &str = "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, \
       CAST(c.CHARACTER_MAXIMUM_LENGTH AS INT), CAST(c.NUMERIC_PRECISION AS INT), \
       CAST(c.NUMERIC_SCALE AS INT), CAST(c.DATETIME_PRECISION AS INT), \
       CAST(CASE WHEN c.IS_NULLABLE = 'YES' THEN 1 ELSE 0 END AS BIT), \
       CAST(CASE WHEN EXISTS ( \
         SELECT 1 FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS tc \
         JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE k \
           ON k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME \
         WHERE tc.CONSTRAINT_TYPE = 'PRIMARY KEY' AND tc.TABLE_SCHEMA = c.TABLE_SCHEMA \
           AND tc.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME \
       ) THEN 1 ELSE 0 END AS BIT) \
     FROM INFORMATION_SCHEMA.COLUMNS c \
     JOIN INFORMATION_SCHEMA.TABLES t \
       ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
     WHERE c.TABLE_SCHEMA = SCHEMA_NAME() AND t.TABLE_TYPE = 'BASE TABLE' \
       AND (@P1 IS NULL OR c.TABLE_NAME = @P1) \
     ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION";

/// Runs a batch of the engine's own SQL and reads its whole answer.
async fn run(conn: &mut Client, batch: &str) -> Result<(), ProviderError> {
    conn.simple_query(batch)
        .await
        .map_err(errors::from_tiberius)?
        .into_results()
        .await
        .map_err(errors::from_tiberius)?;
    Ok(())
}

/// Ends a failed call's transaction at once, so its locks do not wait for the connection's
/// next use. If it fails, the connection is broken and the server rolls back when it closes.
async fn rollback(conn: &mut Client) {
    if let Err(e) = run(conn, session::ROLLBACK).await {
        tracing::warn!(error = %e, "db/mssql: rollback failed");
    }
}

#[async_trait]
impl Engine for MssqlProvider {
    const NAME: &'static str = "mssql";

    /// Reads the first result set, stopping at `max_rows + 1` rows, in a transaction that is
    /// rolled back whatever happens (see `session`).
    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        session::refuse_transaction_control(&p.sql, "/sql")?;
        session::require_read(&p.sql, "/sql")?;
        let cap = engine::row_cap(p.max_rows, self.config.max_rows);
        let params = values::params(&p.params, "/params")?;
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        let result = read(&mut conn, &p.sql, &params, cap).await;
        settle(&mut conn, session::ROLLBACK, result).await
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        let result = conn.run_statement(&p, "").await;
        settle(&mut conn, session::COMMIT, result).await
    }

    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        let result = engine::run_batch(&mut *conn, &p.statements).await;
        settle(&mut conn, session::COMMIT, result).await
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let table = p.table.clone().map_or(Param::Null, Param::Text);
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        let rows = match conn.query(METADATA, &values::as_sql(&[table])).await {
            Ok(stream) => stream.into_first_result().await,
            Err(e) => Err(e),
        };
        let rows = settle(
            &mut conn,
            session::ROLLBACK,
            rows.map_err(errors::from_tiberius),
        )
        .await?;
        let columns = rows
            .iter()
            .map(metadata_column)
            .collect::<Result<Vec<_>, _>>()
            .map_err(errors::from_tiberius)?;
        // The database's collation may match names case-insensitively; the contract's `table`
        // is an exact name.
        let columns = columns
            .into_iter()
            .filter(|(table, _)| p.table.as_ref().is_none_or(|t| t == table));
        engine::tables(columns, p.table.as_deref())
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        run(&mut *self.connection().await?, "SELECT 1").await
    }

    /// Gives up this instance's share of the tenant's pool; the last instance to stop takes
    /// it out of the registry, and its connections close when that instance is dropped.
    async fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            self.pools.release(&self.tenant, &self.access).await;
        }
    }
}

impl MssqlProvider {
    async fn connection(
        &self,
    ) -> Result<bb8::PooledConnection<'_, ConnectionManager>, ProviderError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        self.access.get().await.map_err(errors::from_pool)
    }
}

/// Ends the call's transaction with `end` (`COMMIT`, or `ROLLBACK` for a read) after a
/// success, with a rollback at once after a failure.
async fn settle<T>(
    conn: &mut Client,
    end: &str,
    result: Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    match result {
        Ok(value) => {
            run(conn, end).await?;
            Ok(value)
        }
        Err(error) => {
            rollback(conn).await;
            Err(error)
        }
    }
}

/// One row of [`METADATA`]: the table's name and one of its columns.
fn metadata_column(row: &tiberius::Row) -> tiberius::Result<(String, TableColumn)> {
    let text = |i: usize| -> tiberius::Result<String> {
        Ok(row.try_get::<&str, _>(i)?.unwrap_or_default().to_owned())
    };
    let number = |i: usize| row.try_get::<i32, _>(i);
    let flag =
        |i: usize| -> tiberius::Result<bool> { Ok(row.try_get::<bool, _>(i)? == Some(true)) };
    Ok((
        text(0)?,
        TableColumn {
            name: text(1)?,
            declared_type: values::declared_type_name(
                &text(2)?,
                number(3)?,
                number(4)?,
                number(5)?,
                number(6)?,
            ),
            nullable: flag(7)?,
            primary_key: flag(8)?,
        },
    ))
}

impl Session for Client {
    async fn run_statement(
        &mut self,
        statement: &StatementParams,
        at: &str,
    ) -> Result<ExecResult, ProviderError> {
        let sql_at = format!("{at}/sql");
        session::refuse_transaction_control(&statement.sql, &sql_at)?;
        let params = values::params(&statement.params, &format!("{at}/params"))?;
        let done = self
            .execute(statement.sql.as_str(), &values::as_sql(&params))
            .await
            .map_err(|e| errors::statement(e, &sql_at))?;
        let last_insert_id = if statement.last_insert_id && session::inserts(&statement.sql) {
            last_identity(self).await?
        } else {
            None
        };
        Ok(ExecResult {
            // The row counts the server reported for the statement (several for a batch of
            // statements, including those of triggers that do not SET NOCOUNT ON).
            rows_affected: done.total(),
            last_insert_id,
        })
    }
}

/// The IDENTITY value the session's last insert generated (`numeric(38,0)`, `NULL` when the
/// table has no IDENTITY column); `None` too when it does not fit 64 bits.
async fn last_identity(conn: &mut Client) -> Result<Option<i64>, ProviderError> {
    let row = conn
        .simple_query(session::LAST_IDENTITY)
        .await
        .map_err(errors::from_tiberius)?
        .into_row()
        .await
        .map_err(errors::from_tiberius)?;
    let identity = match row {
        Some(row) => row
            .try_get::<Numeric, _>(0)
            .map_err(errors::from_tiberius)?,
        None => None,
    };
    Ok(identity.and_then(|n| i64::try_from(n.int_part()).ok()))
}

/// Runs `sql` and keeps at most `cap` rows of its first result set.
async fn read(
    conn: &mut Client,
    sql: &str,
    params: &[Param],
    cap: usize,
) -> Result<QueryResult, ProviderError> {
    let params = values::as_sql(params);
    let mut stream = conn
        .query(sql, &params)
        .await
        .map_err(|e| errors::statement(e, "/sql"))?;
    // Known before the first row, even when there is none.
    let columns = stream
        .columns()
        .await
        .map_err(|e| errors::statement(e, "/sql"))?
        .map(|columns| columns.iter().map(values::column_info).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut stream = stream.into_row_stream();
    while let Some(row) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let row = row.map_err(|e| errors::statement(e, "/sql"))?;
        if row.result_index() > 0 {
            break;
        }
        if rows.len() == cap {
            truncated = true;
            break;
        }
        rows.push(values::row_object(&row).map_err(|e| errors::at(e, "/sql"))?);
    }
    Ok(QueryResult::new(columns, rows, truncated))
}
