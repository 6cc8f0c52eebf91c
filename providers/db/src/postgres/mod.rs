//! `db/postgres`: PostgreSQL through sqlx, in two tenancy modes — pooled (one shared
//! database, schema per tenant plus forced row-level security, see `rls`) and siloed (the
//! tenant's own database).
//!
//! See `docs.md` next to this file for what a user configures and can expect.

mod config;
mod errors;
mod pools;
mod rls;
mod session;
mod values;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{Executor, PgPool, Postgres, Row, Statement, Transaction};
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
    to_result,
};
use tokio::sync::{OnceCell, OwnedSemaphorePermit};

pub use config::{Mode, PostgresConfig};
pub use rls::{provision, tenant_schema};

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TableInfo, TransactionParams, TransactionResult,
};
use pools::{Registry, Target, TenantPool};
use rls::Enrollment;

/// Platform settings of the engine (not per tenant): where the shared database is and which
/// role tenant calls run as.
#[derive(Clone)]
pub struct PostgresSettings {
    /// A superuser URL of the shared database, used to provision it and enroll tenants.
    pub admin_url: String,
    /// The runtime role pooled calls log in as (created by provisioning).
    pub app_role: String,
    /// The runtime role's password, set on it at every provisioning.
    pub app_password: String,
    /// Size of the shared pool all pooled tenants draw from.
    pub max_connections: u32,
}

impl PostgresSettings {
    /// Settings with the default runtime role `switchyard_app` and a shared pool of 16.
    pub fn new(admin_url: impl Into<String>, app_password: impl Into<String>) -> Self {
        PostgresSettings {
            admin_url: admin_url.into(),
            app_role: "switchyard_app".into(),
            app_password: app_password.into(),
            max_connections: 16,
        }
    }
}

/// The `db/postgres` engine. Owns the pools so that restarting a tenant's instance (a
/// reconfigure) reuses them instead of racing them.
pub struct PostgresFactory {
    descriptor: ProviderDescriptor,
    settings: PostgresSettings,
    /// Provisioned lazily by the first pooled start, so building the factory needs no server.
    shared: OnceCell<Shared>,
    registry: Arc<Registry>,
}

/// The shared database's pools.
struct Shared {
    /// Enrolls tenants (creates schemas, reads keys); never runs tenant SQL.
    admin: PgPool,
    /// Runtime-role connections every pooled tenant's calls run on.
    app: PgPool,
}

impl PostgresFactory {
    pub fn new(settings: PostgresSettings) -> Self {
        PostgresFactory {
            descriptor: ProviderDescriptor {
                domain: "db".into(),
                name: "postgres".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "PostgreSQL: a shared database isolated by row-level security, or a \
                          tenant's own database."
                    .into(),
                capabilities: vec!["transactions".into(), "metadata".into(), "rls".into()],
                config_schema: config::schema(),
                actions: domains::actions("db"),
            },
            settings,
            shared: OnceCell::new(),
            registry: Arc::new(Registry::new()),
        }
    }

    /// Provisions the shared database once (retried by a later start if it failed).
    async fn shared(&self) -> Result<&Shared, ProviderError> {
        self.shared
            .get_or_try_init(|| async {
                let s = &self.settings;
                provision(&s.admin_url, &s.app_role, &s.app_password).await?;
                let admin = rls::admin_options(&s.admin_url)?;
                let app = admin
                    .clone()
                    .username(&s.app_role)
                    .password(&s.app_password);
                Ok(Shared {
                    admin: pools::pool_options(2).connect_lazy_with(pools::connect_options(admin)),
                    app: pools::pool_options(s.max_connections)
                        .connect_lazy_with(pools::connect_options(app)),
                })
            })
            .await
    }
}

#[async_trait]
impl ProviderFactory for PostgresFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = PostgresConfig::parse(ctx.config)?;
        let (scope, access) = match config.connect_options()? {
            Some(options) => {
                let access = self
                    .registry
                    .acquire(&ctx.tenant, &config, Target::Own(Box::new(options)))
                    .await;
                (Scope::Siloed, access)
            }
            None => {
                let shared = self.shared().await?;
                let enrollment = rls::enroll(&shared.admin, &ctx.tenant).await?;
                let access = self
                    .registry
                    .acquire(&ctx.tenant, &config, Target::Shared(&shared.app))
                    .await;
                (Scope::Pooled(enrollment), access)
            }
        };
        Ok(Arc::new(PostgresProvider {
            tenant: ctx.tenant,
            config,
            scope,
            access,
            registry: self.registry.clone(),
            stopped: AtomicBool::new(false),
        }))
    }
}

enum Scope {
    Pooled(Enrollment),
    Siloed,
}

/// One tenant's instance.
struct PostgresProvider {
    tenant: TenantId,
    config: PostgresConfig,
    scope: Scope,
    access: Arc<TenantPool>,
    registry: Arc<Registry>,
    /// Makes `stop` idempotent and refuses calls after it.
    stopped: AtomicBool,
}

/// One call's transaction and the tenant's connection slot it holds. Dropping it mid-way (a
/// cancelled call) makes sqlx roll the transaction back before the connection is reused.
struct Call {
    tx: Transaction<'static, Postgres>,
    _permit: OwnedSemaphorePermit,
}

/// Tables and columns of the call's schema (the tenant's in pooled mode, hiding the
/// row-security column; the connection's current schema in siloed mode).
const METADATA: &str = "SELECT c.relname::text, a.attname::text, \
       pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
       coalesce(a.attnum = ANY (i.indkey), false) \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary \
     WHERE c.relkind IN ('r', 'p') \
       AND ($1::text IS NULL OR c.relname = $1) \
       AND NOT ($2 AND a.attname = $3) \
     ORDER BY c.relname, a.attnum";

#[async_trait]
impl Provider for PostgresProvider {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "query" => to_result(self.query(parse_params(call.params)?).await?),
            "execute" => to_result(self.execute(parse_params(call.params)?).await?),
            "transaction" => to_result(self.transaction(parse_params(call.params)?).await?),
            "metadata" => to_result(self.metadata(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("db/postgres has no action {other:?}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        let probe = if self.stopped.load(Ordering::SeqCst) {
            Err(stopped())
        } else {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&self.access.pool)
                .await
                .map_err(errors::from_sqlx)
        };
        let (status, detail) = match probe {
            Ok(_) => (HealthStatus::Up, None),
            Err(e) => (HealthStatus::Down, Some(e.detail)),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: "postgres".into(),
            status,
            detail,
        }])
    }

    /// Gives up this instance's share of the tenant's access; a siloed pool closes when no
    /// instance uses it any more.
    async fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            self.registry.release(&self.tenant, &self.access).await;
        }
    }
}

fn stopped() -> ProviderError {
    ProviderError::unavailable("this instance was stopped; send the call again")
}

impl PostgresProvider {
    /// Opens the call's transaction on one of the tenant's connection slots and enters the
    /// tenant (see `session`).
    async fn begin(&self, read_only: bool) -> Result<Call, ProviderError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        let permit = self.access.permit().await?;
        let begin = if read_only {
            session::BEGIN_READ_ONLY
        } else {
            session::BEGIN_READ_WRITE
        };
        let mut tx = self
            .access
            .pool
            .begin_with(begin)
            .await
            .map_err(errors::from_sqlx)?;
        let timeout = self.config.statement_timeout_ms.to_string();
        let enter = match &self.scope {
            Scope::Pooled(enrollment) => sqlx::query(session::ENTER_POOLED)
                .bind(self.tenant.as_str())
                .bind(enrollment.key.as_str())
                .bind(format!("\"{}\"", enrollment.schema))
                .bind(timeout),
            Scope::Siloed => sqlx::query(session::ENTER_SILOED)
                .bind(self.tenant.as_str())
                .bind(timeout),
        };
        enter.execute(&mut *tx).await.map_err(errors::from_sqlx)?;
        Ok(Call {
            tx,
            _permit: permit,
        })
    }

    /// Streams rows and stops reading at `max_rows + 1`, so a huge result costs no more
    /// memory than the cap (the server still produces it, bounded by the statement timeout).
    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        session::refuse_transaction_control(&p.sql, "/sql")?;
        let cap =
            p.max_rows
                .map_or(self.config.max_rows, |m| m.min(self.config.max_rows)) as usize;
        let query = values::bind(sqlx::query(&p.sql), &p.params, "/params")?;
        let mut call = self.begin(true).await?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut truncated = false;
        {
            let mut stream = query.fetch(&mut *call.tx);
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
            // No row to look at: describing the statement gives its columns.
            None => (&mut *call.tx)
                .prepare_with(p.sql.as_str(), &values::param_types(&p.params))
                .await
                .map_err(|e| errors::statement(e, "/sql"))?
                .columns()
                .iter()
                .map(values::column_info)
                .collect(),
        };
        call.tx.commit().await.map_err(errors::from_sqlx)?;
        Ok(QueryResult {
            columns,
            row_count: rows.len(),
            rows,
            truncated,
        })
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let mut call = self.begin(false).await?;
        let result = self.run_statement(&mut call, &p, "").await?;
        call.tx.commit().await.map_err(errors::from_sqlx)?;
        Ok(result)
    }

    /// Runs the batch in the call's transaction; any failure rolls the whole batch back and
    /// names the failing statement.
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let mut call = self.begin(false).await?;
        let mut results = Vec::with_capacity(p.statements.len());
        for (index, statement) in p.statements.iter().enumerate() {
            match self
                .run_statement(&mut call, statement, &format!("/statements/{index}"))
                .await
            {
                Ok(result) => results.push(result),
                Err(mut error) => {
                    // Dropping the transaction would roll back too; doing it here frees the
                    // connection at once. If it fails, the connection is broken and dropped.
                    if let Err(e) = call.tx.rollback().await {
                        tracing::warn!(error = %e, "db/postgres: rollback failed");
                    }
                    error.detail = format!(
                        "statement {index} failed, nothing was committed: {}",
                        error.detail
                    );
                    return Err(error);
                }
            }
        }
        call.tx.commit().await.map_err(errors::from_sqlx)?;
        Ok(TransactionResult { results })
    }

    /// Runs one statement of the call. `at` is its JSON pointer prefix (`""` for execute,
    /// `/statements/<i>` in a batch).
    async fn run_statement(
        &self,
        call: &mut Call,
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
            .execute(&mut *call.tx)
            .await
            .map_err(|e| errors::statement(e, &sql_at))?;
        let last_insert_id = match self.scope {
            Scope::Pooled(_) => {
                let (id, _): (Option<String>, Option<String>) =
                    sqlx::query_as(session::TAKE_LAST_INSERT_ID)
                        .fetch_one(&mut *call.tx)
                        .await
                        .map_err(errors::from_sqlx)?;
                id.and_then(|id| id.parse().ok())
            }
            Scope::Siloed => None,
        };
        Ok(ExecResult {
            rows_affected: done.rows_affected(),
            last_insert_id,
        })
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let mut call = self.begin(true).await?;
        let columns: Vec<(String, String, String, bool, bool)> = sqlx::query_as(METADATA)
            .bind(p.table.as_deref())
            .bind(matches!(self.scope, Scope::Pooled(_)))
            .bind(rls::TENANT_COLUMN)
            .fetch_all(&mut *call.tx)
            .await
            .map_err(errors::from_sqlx)?;
        call.tx.commit().await.map_err(errors::from_sqlx)?;
        let mut tables: BTreeMap<String, Vec<TableColumn>> = BTreeMap::new();
        for (table, name, format_type, not_null, primary_key) in columns {
            tables.entry(table).or_default().push(TableColumn {
                name,
                declared_type: values::declared_type_name(&format_type),
                nullable: !not_null,
                primary_key,
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
