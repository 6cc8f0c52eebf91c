//! `db/mssql`: Microsoft SQL Server through tiberius (pooled by bb8), siloed: every tenant has
//! a database and a login of its own (see `tenancy`).
//!
//! See `docs.md` next to this file for what a user configures and can expect — and for the
//! fact that this engine has not yet run against a real server.

mod config;
mod errors;
mod session;
mod tenancy;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bb8_tiberius::ConnectionManager;
use serde_json::Value;
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
    to_result,
};
use tiberius::numeric::Numeric;
use tokio::sync::{Mutex, OnceCell};

pub use config::{ConnectionString, MssqlConfig};
pub use tenancy::{quote_literal, quote_name, tenant_database, tenant_login};

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TableInfo, TransactionParams, TransactionResult,
};
use values::Param;

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
    pools: Arc<Mutex<HashMap<TenantId, Arc<TenantPool>>>>,
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
            descriptor: ProviderDescriptor {
                domain: "db".into(),
                name: "mssql".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "Microsoft SQL Server: a database and a login of its own per tenant."
                    .into(),
                capabilities: vec!["transactions".into(), "metadata".into()],
                config_schema: config::schema(),
                actions: domains::actions("db"),
            },
            secret: connection_string.clone(),
            connection_string,
            prefix: "t_".into(),
            admin: OnceCell::new(),
            pools: Arc::new(Mutex::new(HashMap::new())),
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
        self.prefix = tenancy::clean_prefix(prefix);
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

/// One tenant's pool, shared by its instances while their `max_connections` agree.
struct TenantPool {
    pool: Pool,
    max_connections: u32,
    /// Instances using this pool; only changed under the registry lock.
    users: AtomicUsize,
}

#[async_trait]
impl ProviderFactory for MssqlFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = MssqlConfig::parse(ctx.config)?;
        let (target, admin) = self.admin().await?;
        let (database, login) = tenancy::names(&self.prefix, &ctx.tenant);
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
        let access = {
            let mut pools = self.pools.lock().await;
            match pools.get(&ctx.tenant) {
                Some(access) if access.max_connections == config.max_connections => {
                    access.users.fetch_add(1, Ordering::SeqCst);
                    access.clone()
                }
                _ => {
                    let access = Arc::new(TenantPool {
                        pool: pool(
                            target.tenant(&database, &login, &password),
                            config.max_connections,
                        ),
                        max_connections: config.max_connections,
                        users: AtomicUsize::new(1),
                    });
                    pools.insert(ctx.tenant.clone(), access.clone());
                    access
                }
            }
        };
        Ok(Arc::new(MssqlProvider {
            tenant: ctx.tenant,
            config,
            access,
            pools: self.pools.clone(),
            stopped: AtomicBool::new(false),
        }))
    }
}

/// One tenant's instance.
struct MssqlProvider {
    tenant: TenantId,
    config: MssqlConfig,
    access: Arc<TenantPool>,
    pools: Arc<Mutex<HashMap<TenantId, Arc<TenantPool>>>>,
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

#[async_trait]
impl Provider for MssqlProvider {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "query" => to_result(self.query(parse_params(call.params)?).await?),
            "execute" => to_result(self.execute(parse_params(call.params)?).await?),
            "transaction" => to_result(self.transaction(parse_params(call.params)?).await?),
            "metadata" => to_result(self.metadata(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("db/mssql has no action {other:?}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        let probe = match self.connection().await {
            Ok(mut conn) => run(&mut conn, "SELECT 1").await,
            Err(e) => Err(e),
        };
        let (status, detail) = match probe {
            Ok(()) => (HealthStatus::Up, None),
            Err(e) => (HealthStatus::Down, Some(e.detail)),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: "mssql".into(),
            status,
            detail,
        }])
    }

    /// Gives up this instance's share of the tenant's pool; the last instance to stop takes
    /// it out of the registry, and its connections close when that instance is dropped.
    async fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut pools = self.pools.lock().await;
        let last = self.access.users.fetch_sub(1, Ordering::SeqCst) == 1;
        if last
            && pools
                .get(&self.tenant)
                .is_some_and(|c| Arc::ptr_eq(c, &self.access))
        {
            pools.remove(&self.tenant);
        }
    }
}

fn stopped() -> ProviderError {
    ProviderError::unavailable("this instance was stopped; send the call again")
}

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

impl MssqlProvider {
    async fn connection(
        &self,
    ) -> Result<bb8::PooledConnection<'_, ConnectionManager>, ProviderError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        self.access.pool.get().await.map_err(errors::from_pool)
    }

    /// Reads the first result set, stopping at `max_rows + 1` rows, in a transaction that is
    /// rolled back whatever happens (see `session`).
    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        session::refuse_transaction_control(&p.sql, "/sql")?;
        session::require_read(&p.sql, "/sql")?;
        let cap =
            p.max_rows
                .map_or(self.config.max_rows, |m| m.min(self.config.max_rows)) as usize;
        let params = values::params(&p.params, "/params")?;
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        match read(&mut conn, &p.sql, &params, cap).await {
            Ok(result) => {
                run(&mut conn, session::ROLLBACK).await?;
                Ok(result)
            }
            Err(error) => {
                rollback(&mut conn).await;
                Err(error)
            }
        }
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        match run_statement(&mut conn, &p, "").await {
            Ok(result) => {
                run(&mut conn, session::COMMIT).await?;
                Ok(result)
            }
            Err(error) => {
                rollback(&mut conn).await;
                Err(error)
            }
        }
    }

    /// Runs the batch in the call's transaction; any failure rolls the whole batch back and
    /// names the failing statement.
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        let mut results = Vec::with_capacity(p.statements.len());
        for (index, statement) in p.statements.iter().enumerate() {
            match run_statement(&mut conn, statement, &format!("/statements/{index}")).await {
                Ok(result) => results.push(result),
                Err(mut error) => {
                    rollback(&mut conn).await;
                    error.detail = format!(
                        "statement {index} failed, nothing was committed: {}",
                        error.detail
                    );
                    return Err(error);
                }
            }
        }
        run(&mut conn, session::COMMIT).await?;
        Ok(TransactionResult { results })
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let table = p.table.clone().map_or(Param::Null, Param::Text);
        let mut conn = self.connection().await?;
        run(&mut conn, session::BEGIN).await?;
        let rows = match conn.query(METADATA, &values::as_sql(&[table])).await {
            Ok(stream) => stream.into_first_result().await,
            Err(e) => Err(e),
        };
        let rows = match rows {
            Ok(rows) => {
                run(&mut conn, session::ROLLBACK).await?;
                rows
            }
            Err(e) => {
                rollback(&mut conn).await;
                return Err(errors::from_tiberius(e));
            }
        };
        let mut tables: BTreeMap<String, Vec<TableColumn>> = BTreeMap::new();
        for row in &rows {
            let column = metadata_column(row).map_err(errors::from_tiberius)?;
            // The database's collation may match names case-insensitively; the contract's
            // `table` is an exact name.
            if p.table.as_ref().is_none_or(|t| *t == column.0) {
                tables.entry(column.0).or_default().push(column.1);
            }
        }
        if let Some(table) = &p.table
            && tables.is_empty()
        {
            return Err(ProviderError::not_found(format!(
                "no table named {table:?}"
            )));
        }
        Ok(MetadataResult {
            tables: tables
                .into_iter()
                .map(|(name, columns)| TableInfo { name, columns })
                .collect(),
        })
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

/// Runs one statement of the call. `at` is its JSON pointer prefix (`""` for execute,
/// `/statements/<i>` in a batch).
async fn run_statement(
    conn: &mut Client,
    statement: &StatementParams,
    at: &str,
) -> Result<ExecResult, ProviderError> {
    let sql_at = format!("{at}/sql");
    session::refuse_transaction_control(&statement.sql, &sql_at)?;
    let params = values::params(&statement.params, &format!("{at}/params"))?;
    let done = conn
        .execute(statement.sql.as_str(), &values::as_sql(&params))
        .await
        .map_err(|e| errors::statement(e, &sql_at))?;
    let last_insert_id = if session::inserts(&statement.sql) {
        last_identity(conn).await?
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
    Ok(QueryResult {
        columns,
        row_count: rows.len(),
        rows,
        truncated,
    })
}
