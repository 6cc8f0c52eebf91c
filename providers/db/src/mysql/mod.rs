//! `db/mysql`: MySQL / MariaDB through sqlx, siloed: every tenant has a database and a user of
//! its own (see `tenancy`).
//!
//! See `docs.md` next to this file for what a user configures and can expect.

mod config;
mod errors;
mod session;
mod tenancy;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Executor, MySql, MySqlPool, Row, Statement, Transaction};
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
    to_result,
};
use tokio::sync::{Mutex, OnceCell};

pub use config::MysqlConfig;
pub use tenancy::{tenant_database, tenant_user};

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TableInfo, TransactionParams, TransactionResult,
};

/// How long a call waits for a connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `db/mysql` engine. Owns the tenants' pools so that restarting a tenant's instance (a
/// reconfigure) reuses them instead of racing them.
pub struct MysqlFactory {
    descriptor: ProviderDescriptor,
    admin_url: String,
    secret: String,
    prefix: String,
    /// Connected lazily by the first start, so building the factory needs no server.
    admin: OnceCell<(MySqlPool, MySqlConnectOptions)>,
    pools: Arc<Mutex<HashMap<TenantId, Arc<TenantPool>>>>,
}

impl MysqlFactory {
    /// An engine that provisions tenants through `admin_url` (`mysql://user:pass@host:port/db`
    /// of an account allowed to create databases and users and to grant privileges). Tenant
    /// databases are named `t_<tenant>`; tenant passwords are derived from the admin URL
    /// unless [`with_secret`](Self::with_secret) gives another secret.
    pub fn new(admin_url: impl Into<String>) -> Self {
        let admin_url = admin_url.into();
        MysqlFactory {
            descriptor: ProviderDescriptor {
                domain: "db".into(),
                name: "mysql".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "MySQL / MariaDB: a database and a user of its own per tenant.".into(),
                capabilities: vec!["transactions".into(), "metadata".into()],
                config_schema: config::schema(),
                actions: domains::actions("db"),
            },
            secret: admin_url.clone(),
            admin_url,
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

    async fn admin(&self) -> Result<&(MySqlPool, MySqlConnectOptions), ProviderError> {
        self.admin
            .get_or_try_init(|| async {
                // sqlx's message may quote the URL, password included: only its kind is told.
                let options = MySqlConnectOptions::from_str(&self.admin_url).map_err(|_| {
                    ProviderError::unavailable(
                        "db/mysql: the admin URL is not a valid mysql:// URL",
                    )
                    .with_retryable(false)
                })?;
                let pool = pool_options(2).connect_lazy_with(options.clone());
                Ok((pool, options))
            })
            .await
    }
}

fn pool_options(max_connections: u32) -> MySqlPoolOptions {
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Duration::from_secs(300))
}

/// One tenant's pool, shared by its instances while their `max_connections` agree.
struct TenantPool {
    pool: MySqlPool,
    max_connections: u32,
    /// Instances using this pool; only changed under the registry lock.
    users: AtomicUsize,
}

#[async_trait]
impl ProviderFactory for MysqlFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = MysqlConfig::parse(ctx.config)?;
        let (admin, admin_options) = self.admin().await?;
        let (database, user) = tenancy::names(&self.prefix, &ctx.tenant);
        let password = tenancy::tenant_password(&self.secret, &user);
        tenancy::provision(admin, &database, &user, &password).await?;
        let access = {
            let mut pools = self.pools.lock().await;
            match pools.get(&ctx.tenant) {
                Some(access) if access.max_connections == config.max_connections => {
                    access.users.fetch_add(1, Ordering::SeqCst);
                    access.clone()
                }
                _ => {
                    let options = admin_options
                        .clone()
                        .username(&user)
                        .password(&password)
                        .database(&database)
                        .statement_cache_capacity(32);
                    let access = Arc::new(TenantPool {
                        pool: pool_options(config.max_connections).connect_lazy_with(options),
                        max_connections: config.max_connections,
                        users: AtomicUsize::new(1),
                    });
                    pools.insert(ctx.tenant.clone(), access.clone());
                    access
                }
            }
        };
        Ok(Arc::new(MysqlProvider {
            tenant: ctx.tenant,
            config,
            access,
            pools: self.pools.clone(),
            stopped: AtomicBool::new(false),
        }))
    }
}

/// One tenant's instance.
struct MysqlProvider {
    tenant: TenantId,
    config: MysqlConfig,
    access: Arc<TenantPool>,
    pools: Arc<Mutex<HashMap<TenantId, Arc<TenantPool>>>>,
    /// Makes `stop` idempotent and refuses calls after it.
    stopped: AtomicBool,
}

/// Tables and columns of the tenant's database (views excluded).
const METADATA: &str = "SELECT CAST(c.TABLE_NAME AS CHAR), CAST(c.COLUMN_NAME AS CHAR), \
       CAST(c.COLUMN_TYPE AS CHAR), CAST(c.IS_NULLABLE AS CHAR), CAST(c.COLUMN_KEY AS CHAR) \
     FROM information_schema.COLUMNS c \
     JOIN information_schema.TABLES t \
       ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
     WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' \
       AND (? IS NULL OR c.TABLE_NAME = ?) \
     ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION";

#[async_trait]
impl Provider for MysqlProvider {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "query" => to_result(self.query(parse_params(call.params)?).await?),
            "execute" => to_result(self.execute(parse_params(call.params)?).await?),
            "transaction" => to_result(self.transaction(parse_params(call.params)?).await?),
            "metadata" => to_result(self.metadata(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("db/mysql has no action {other:?}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        let probe = if self.stopped.load(Ordering::SeqCst) {
            Err(stopped())
        } else {
            sqlx::query_scalar::<_, i64>("SELECT 1")
                .fetch_one(&self.access.pool)
                .await
                .map_err(errors::from_sqlx)
        };
        let (status, detail) = match probe {
            Ok(_) => (HealthStatus::Up, None),
            Err(e) => (HealthStatus::Down, Some(e.detail)),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: "mysql".into(),
            status,
            detail,
        }])
    }

    /// Gives up this instance's share of the tenant's pool; the pool closes when no instance
    /// uses it any more.
    async fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let last = {
            let mut pools = self.pools.lock().await;
            let last = self.access.users.fetch_sub(1, Ordering::SeqCst) == 1;
            if last
                && pools
                    .get(&self.tenant)
                    .is_some_and(|c| Arc::ptr_eq(c, &self.access))
            {
                pools.remove(&self.tenant);
            }
            last
        };
        if last {
            self.access.pool.close().await;
        }
    }
}

fn stopped() -> ProviderError {
    ProviderError::unavailable("this instance was stopped; send the call again")
}

impl MysqlProvider {
    /// Opens the call's transaction (see `session`).
    async fn begin(&self, read_only: bool) -> Result<Transaction<'static, MySql>, ProviderError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        let begin = if read_only {
            session::BEGIN_READ_ONLY
        } else {
            session::BEGIN_READ_WRITE
        };
        self.access
            .pool
            .begin_with(begin)
            .await
            .map_err(errors::from_sqlx)
    }

    /// Streams rows and stops reading at `max_rows + 1`.
    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        session::refuse_transaction_control(&p.sql, "/sql")?;
        session::require_read(&p.sql, "/sql")?;
        let cap =
            p.max_rows
                .map_or(self.config.max_rows, |m| m.min(self.config.max_rows)) as usize;
        let query = values::bind(sqlx::query(&p.sql), &p.params, "/params")?;
        let mut tx = self.begin(true).await?;
        match read(&mut tx, query, &p.sql, cap).await {
            Ok(result) => {
                tx.commit().await.map_err(errors::from_sqlx)?;
                Ok(result)
            }
            Err(error) => {
                rollback(tx).await;
                Err(error)
            }
        }
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut tx = self.begin(false).await?;
        match run_statement(&mut tx, &p, "").await {
            Ok(result) => {
                tx.commit().await.map_err(errors::from_sqlx)?;
                Ok(result)
            }
            Err(error) => {
                rollback(tx).await;
                Err(error)
            }
        }
    }

    /// Runs the batch in the call's transaction; any failure rolls the batch back and names
    /// the failing statement (DDL commits implicitly, see `session`).
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let mut tx = self.begin(false).await?;
        let mut results = Vec::with_capacity(p.statements.len());
        for (index, statement) in p.statements.iter().enumerate() {
            match run_statement(&mut tx, statement, &format!("/statements/{index}")).await {
                Ok(result) => results.push(result),
                Err(mut error) => {
                    rollback(tx).await;
                    error.detail = format!(
                        "statement {index} failed, nothing was committed: {}",
                        error.detail
                    );
                    return Err(error);
                }
            }
        }
        tx.commit().await.map_err(errors::from_sqlx)?;
        Ok(TransactionResult { results })
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let mut tx = self.begin(true).await?;
        let columns: Vec<(String, String, String, String, String)> = sqlx::query_as(METADATA)
            .bind(p.table.as_deref())
            .bind(p.table.as_deref())
            .fetch_all(&mut *tx)
            .await
            .map_err(errors::from_sqlx)?;
        tx.commit().await.map_err(errors::from_sqlx)?;
        let mut tables: BTreeMap<String, Vec<TableColumn>> = BTreeMap::new();
        for (table, name, column_type, nullable, key) in columns {
            tables.entry(table).or_default().push(TableColumn {
                name,
                declared_type: values::declared_type_name(&column_type),
                nullable: nullable == "YES",
                primary_key: key == "PRI",
            });
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

/// Runs one statement of the call. `at` is its JSON pointer prefix (`""` for execute,
/// `/statements/<i>` in a batch).
async fn run_statement(
    tx: &mut Transaction<'static, MySql>,
    statement: &StatementParams,
    at: &str,
) -> Result<ExecResult, ProviderError> {
    let sql_at = format!("{at}/sql");
    session::refuse_transaction_control(&statement.sql, &sql_at)?;
    let query = values::bind(
        sqlx::query(&statement.sql),
        &statement.params,
        &format!("{at}/params"),
    )?;
    let done = query
        .execute(&mut **tx)
        .await
        .map_err(|e| errors::statement(e, &sql_at))?;
    // MySQL reports the first AUTO_INCREMENT value the statement generated, 0 when none.
    let last_insert_id = match done.last_insert_id() {
        0 => None,
        id => i64::try_from(id).ok(),
    };
    Ok(ExecResult {
        rows_affected: done.rows_affected(),
        last_insert_id,
    })
}

/// Ends a failed call's transaction at once: a dropped transaction is rolled back only when
/// its connection is next used, and its row locks would block the tenant's next call meanwhile.
async fn rollback(tx: Transaction<'static, MySql>) {
    if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "db/mysql: rollback failed");
    }
}

/// Runs `query`'s statement in `tx`, keeping at most `cap` rows.
async fn read(
    tx: &mut Transaction<'static, MySql>,
    query: sqlx::query::Query<'_, MySql, sqlx::mysql::MySqlArguments>,
    sql: &str,
    cap: usize,
) -> Result<QueryResult, ProviderError> {
    let mut rows = Vec::new();
    let mut columns = None;
    let mut truncated = false;
    {
        let mut stream = query.fetch(&mut **tx);
        while let Some(row) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            let row = row.map_err(|e| errors::statement(e, "/sql"))?;
            if rows.len() == cap {
                truncated = true;
                break;
            }
            if columns.is_none() {
                columns = Some(row.columns().iter().map(values::column_info).collect());
            }
            rows.push(values::row_object(&row).map_err(|e| errors::at(e, "/sql"))?);
        }
    }
    let columns = match columns {
        Some(columns) => columns,
        // No row to look at: preparing the statement describes its columns.
        None => (&mut **tx)
            .prepare(sql)
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
