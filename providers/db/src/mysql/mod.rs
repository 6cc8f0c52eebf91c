//! `db/mysql`: MySQL / MariaDB through sqlx, siloed: every tenant has a database and a user of
//! its own (see `tenancy`).
//!
//! See `docs.md` next to this file for what a user configures and can expect.

mod env;
mod errors;
mod session;
mod tenancy;
mod values;

pub(crate) use env::builtin;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Executor, MySql, MySqlPool, Statement, Transaction};
use switchyard_spi::{
    Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};
use tokio::sync::OnceCell;

pub use tenancy::{tenant_database, tenant_user};

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TransactionParams, TransactionResult,
};
use crate::engine::{self, Engine, Instance, Session};
use crate::errors::stopped;
use crate::registry::{Lease, Registry};
use crate::rows::{self, Reader, Rows};
use crate::siloed::{self, SiloedConfig};

/// One tenant's settings (see `docs.md`).
pub type MysqlConfig = SiloedConfig;

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
    /// Each tenant's pool, keyed by its `max_connections`.
    pools: Arc<Registry<MySqlPool, u32>>,
}

impl MysqlFactory {
    /// An engine that provisions tenants through `admin_url` (`mysql://user:pass@host:port/db`
    /// of an account allowed to create databases and users and to grant privileges). Tenant
    /// databases are named `t_<tenant>`; tenant passwords are derived from the admin URL
    /// unless [`with_secret`](Self::with_secret) gives another secret.
    pub fn new(admin_url: impl Into<String>) -> Self {
        let admin_url = admin_url.into();
        MysqlFactory {
            descriptor: engine::descriptor(
                MysqlProvider::NAME,
                "MySQL / MariaDB: a database and a user of its own per tenant.",
                &["transactions", "metadata", "dialect:mysql"],
                siloed::schema(),
            ),
            secret: admin_url.clone(),
            admin_url,
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

#[async_trait]
impl ProviderFactory for MysqlFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = MysqlConfig::parse(ctx.config)?;
        let (admin, admin_options) = self.admin().await?;
        let database = tenant_database(&self.prefix, ctx.tenant.as_str());
        let user = tenant_user(&database);
        let password = siloed::derived_password(&self.secret, &user);
        tenancy::provision(admin, &database, &user, &password).await?;
        let options = admin_options
            .clone()
            .username(&user)
            .password(&password)
            .database(&database)
            .statement_cache_capacity(32);
        let pool = async { Ok(pool_options(config.max_connections).connect_lazy_with(options)) };
        let access = self
            .pools
            .acquire(&ctx.tenant, config.max_connections, pool)
            .await?;
        Ok(Arc::new(Instance(MysqlProvider {
            tenant: ctx.tenant,
            config,
            access,
            pools: self.pools.clone(),
            stopped: AtomicBool::new(false),
        })))
    }
}

/// One tenant's instance.
struct MysqlProvider {
    tenant: TenantId,
    config: MysqlConfig,
    access: Arc<Lease<MySqlPool, u32>>,
    pools: Arc<Registry<MySqlPool, u32>>,
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
impl Engine for MysqlProvider {
    const NAME: &'static str = "mysql";

    /// Streams rows and stops reading at `max_rows + 1`.
    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        session::refuse_transaction_control(&p.sql, "/sql")?;
        session::require_read(&p.sql, "/sql")?;
        let cap = engine::row_cap(p.max_rows, self.config.max_rows);
        let query = values::bind(sqlx::query(&p.sql), &p.params, "/params")?;
        let mut tx = self.begin(true).await?;
        let result = read(&mut tx, query, &p.sql, cap).await;
        settle(tx, result).await
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut tx = self.begin(false).await?;
        let result = tx.run_statement(&p, "").await;
        settle(tx, result).await
    }

    /// Runs the batch in the call's transaction (DDL commits implicitly, see `session`).
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let mut tx = self.begin(false).await?;
        let result = engine::run_batch(&mut tx, &p.statements).await;
        settle(tx, result).await
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
        let columns = columns
            .into_iter()
            .map(|(table, name, column_type, nullable, key)| {
                let column = TableColumn {
                    name,
                    declared_type: values::declared_type_name(&column_type),
                    nullable: nullable == "YES",
                    primary_key: key == "PRI",
                };
                (table, column)
            });
        engine::tables(columns, p.table.as_deref())
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&**self.access)
            .await
            .map(drop)
            .map_err(errors::from_sqlx)
    }

    /// Gives up this instance's share of the tenant's pool; the pool closes when no instance
    /// uses it any more.
    async fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst)
            && self.pools.release(&self.tenant, &self.access).await
        {
            self.access.close().await;
        }
    }
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
            .begin_with(begin)
            .await
            .map_err(errors::from_sqlx)
    }
}

/// Ends the call's transaction: commits it after a success, rolls it back at once after a
/// failure.
async fn settle<T>(
    tx: Transaction<'static, MySql>,
    result: Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    match result {
        Ok(value) => {
            tx.commit().await.map_err(errors::from_sqlx)?;
            Ok(value)
        }
        Err(error) => {
            engine::rollback(tx, "mysql").await;
            Err(error)
        }
    }
}

impl Session for Transaction<'_, MySql> {
    async fn run_statement(
        &mut self,
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
            .execute(&mut **self)
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
}

/// Runs `query`'s statement in `tx`, keeping at most `cap` rows.
async fn read(
    tx: &mut Transaction<'static, MySql>,
    query: sqlx::query::Query<'_, MySql, sqlx::mysql::MySqlArguments>,
    sql: &str,
    cap: usize,
) -> Result<QueryResult, ProviderError> {
    let reader = Reader {
        columns: values::columns_of_row,
        object: |row| values::row_object(row).map_err(|e| errors::at(e, "/sql")),
        error: |e| errors::statement(e, "/sql"),
    };
    let Rows {
        columns,
        rows,
        truncated,
    } = rows::read(&mut **tx, query, cap, reader).await?;
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
    Ok(QueryResult::new(columns, rows, truncated))
}
