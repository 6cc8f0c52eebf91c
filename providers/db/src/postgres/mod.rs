//! `db/postgres`: PostgreSQL through sqlx, in two tenancy modes — pooled (one shared
//! database, schema per tenant plus forced row-level security, see `rls`) and siloed (the
//! tenant's own database).
//!
//! See `docs.md` next to this file for what a user configures and can expect.

mod config;
mod env;
mod errors;
mod pools;
mod rls;
mod session;
mod values;

pub(crate) use env::builtin;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use sqlx::{Connection, Executor, PgPool, Postgres, Row, Statement, Transaction};
use switchyard_egress::Egress;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};
use tokio::sync::{OnceCell, OwnedSemaphorePermit};

pub use config::{Mode, PostgresConfig};
pub use rls::{books_schema, member_role, provision, tenant_schema};

use crate::contract::{
    ExecResult, MetadataParams, MetadataResult, QueryParams, QueryResult, StatementParams,
    TableColumn, TransactionParams, TransactionResult,
};
use crate::engine::{self, Engine, Instance, Session};
use crate::errors::stopped;
use crate::rows::{self, Reader, Rows};
use crate::siloed;
use pools::{Access, Registry, Target};
use rls::{Enrollment, Namespace};
use session::Intent;

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
    /// Provisioned lazily by the first pooled start, so building the factory needs no server;
    /// shared with the [`PostgresFactory::books`] factory.
    shared: Arc<OnceCell<Shared>>,
    registry: Arc<Registry>,
    namespace: Namespace,
    /// The operator's egress ceiling a siloed tenant's `dsn` host is held to.
    egress: Egress,
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
            descriptor: engine::descriptor(
                PostgresProvider::NAME,
                "PostgreSQL: a shared database isolated by row-level security, or a \
                          tenant's own database.",
                &["transactions", "metadata", "rls", "dialect:postgres"],
                config::schema(),
            ),
            settings,
            shared: Arc::new(OnceCell::new()),
            registry: Arc::new(Registry::new()),
            namespace: Namespace::Tenant,
            egress: Egress::default(),
        }
    }

    /// Holds siloed tenants' own servers (`dsn`) to the operator's egress ceiling (by
    /// default: no loopback, private or link-local host); see `crate::siloed::vet_postgres`.
    pub fn with_egress(mut self, ceiling: &EgressCeiling) -> Self {
        self.egress = Egress::new(ceiling);
        self
    }

    /// The factory of the tenants' service books (see `crate::books`): on the same database
    /// and pools, but each tenant's books are a namespace of their own (schema `s_<id>`, its
    /// own role and row identity) that the tenant's instances have no privilege on. Always
    /// pooled, with the engine's defaults: the tenant's config does not shape them.
    pub fn books(&self) -> PostgresFactory {
        PostgresFactory {
            descriptor: self.descriptor.clone(),
            settings: self.settings.clone(),
            shared: self.shared.clone(),
            registry: Arc::new(Registry::new()),
            namespace: Namespace::Books,
            egress: self.egress.clone(),
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
        let config = match self.namespace {
            Namespace::Tenant => PostgresConfig::parse(ctx.config)?,
            Namespace::Books => PostgresConfig::default(),
        };
        let (scope, access) = match config.connect_options()? {
            Some(options) => {
                let options = siloed::vet_postgres(options, &self.egress).await?;
                let target = Target::Own(Box::new(options));
                let access = pools::acquire(&self.registry, &ctx.tenant, &config, target).await?;
                (Scope::Siloed, access)
            }
            None => {
                let shared = self.shared().await?;
                let enrollment = rls::enroll(
                    &shared.admin,
                    &self.settings.app_role,
                    &ctx.tenant,
                    self.namespace,
                )
                .await?;
                let target = Target::Shared(&shared.app);
                let access = pools::acquire(&self.registry, &ctx.tenant, &config, target).await?;
                (Scope::Pooled(enrollment), access)
            }
        };
        Ok(Arc::new(Instance(PostgresProvider {
            tenant: ctx.tenant,
            config,
            scope,
            access,
            registry: self.registry.clone(),
            stopped: AtomicBool::new(false),
            keeps_plans: self.namespace == Namespace::Books,
        })))
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
    access: Access,
    registry: Arc<Registry>,
    /// Makes `stop` idempotent and refuses calls after it.
    stopped: AtomicBool,
    /// The service books' SQL is the platform's own, a few fixed texts sent on every call:
    /// prepared once per connection, it is planned once instead of on every posting (about
    /// half of a ledger posting's server time). No tenant writes it; tenant SQL may not
    /// `EXECUTE` or `DEALLOCATE` what a connection keeps (`session`), and PostgreSQL replans
    /// a kept statement by itself when the role, search path or a table it reads changes.
    keeps_plans: bool,
}

/// One call's transaction and the tenant's connection slot it holds. Dropping it mid-way (a
/// cancelled call) makes sqlx roll the transaction back before the connection is reused.
struct Call {
    tx: Transaction<'static, Postgres>,
    _permit: OwnedSemaphorePermit,
    /// Pooled mode, whose tables keep the id each insert generated (see `rls`).
    pooled: bool,
    /// The instance's `keeps_plans`.
    keeps_plans: bool,
    /// An inserting statement whose caller did not want its id ran, and its id (if any) is
    /// still kept: cleared before a statement whose id is wanted.
    unread_id: bool,
}

/// Tables and columns of the connection's current schema, in siloed mode.
const METADATA: &str = "SELECT c.relname::text, a.attname::text, \
       pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
       coalesce(a.attnum = ANY (i.indkey), false) \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary \
     WHERE c.relkind IN ('r', 'p') \
       AND ($1::text IS NULL OR c.relname = $1) \
     ORDER BY c.relname, a.attnum";

/// The same in pooled mode, where the catalogs are not readable: the tenant's own schema,
/// hiding the row-security column (see `rls`).
const METADATA_POOLED: &str = "SELECT table_name, column_name, column_type, not_null, is_key \
     FROM switchyard.tenant_columns($1)";

#[async_trait]
impl Engine for PostgresProvider {
    const NAME: &'static str = "postgres";

    /// The server produces the whole result, bounded by the statement timeout; only `max_rows`
    /// + 1 rows of it are read (see `rows::read`).
    async fn query(&self, p: QueryParams) -> Result<QueryResult, ProviderError> {
        session::guard_statement(&p.sql, "/sql")?;
        let cap = engine::row_cap(p.max_rows, self.config.max_rows);
        let query = values::bind(caller_sql(&p.sql, self.keeps_plans), &p.params, "/params")?;
        let mut call = self.begin(Intent::Read).await?;
        let reader = Reader {
            columns: values::columns_of_row,
            object: |row| values::row_object(row).map_err(|e| errors::at(e, "/sql")),
            error: |e| errors::statement(e, "/sql"),
        };
        let Rows {
            columns,
            rows,
            truncated,
        } = rows::read(&mut *call.tx, query, cap, reader).await?;
        let columns = match columns {
            Some(columns) => columns,
            // No row to look at: describing the statement gives its columns. sqlx keeps what
            // it describes in the connection's statement cache, where the next call could list
            // it: a tenant's is closed at once. The books' statements are meant to stay, and
            // clearing the cache would also close the engine's own (`keeps_plans`).
            None => {
                let described = (&mut *call.tx)
                    .prepare_with(p.sql.as_str(), &values::param_types(&p.params))
                    .await
                    .map_err(|e| errors::statement(e, "/sql"))?
                    .columns()
                    .iter()
                    .map(values::column_info)
                    .collect();
                if !self.keeps_plans {
                    call.tx
                        .clear_cached_statements()
                        .await
                        .map_err(errors::from_sqlx)?;
                }
                described
            }
        };
        call.tx.commit().await.map_err(errors::from_sqlx)?;
        Ok(QueryResult::new(columns, rows, truncated))
    }

    async fn execute(&self, p: StatementParams) -> Result<ExecResult, ProviderError> {
        let insert_ids = p.last_insert_id;
        let mut call = self.begin(Intent::Write { insert_ids }).await?;
        let result = call.run_statement(&p, "").await?;
        call.tx.commit().await.map_err(errors::from_sqlx)?;
        Ok(result)
    }

    /// Runs the batch in the call's transaction; a failure rolls it back at once rather than
    /// when the transaction is dropped, to free the connection.
    async fn transaction(&self, p: TransactionParams) -> Result<TransactionResult, ProviderError> {
        let insert_ids = p.statements.iter().any(|s| s.last_insert_id);
        let mut call = self.begin(Intent::Write { insert_ids }).await?;
        match engine::run_batch(&mut call, &p.statements).await {
            Ok(result) => {
                call.tx.commit().await.map_err(errors::from_sqlx)?;
                Ok(result)
            }
            Err(error) => {
                engine::rollback(call.tx, "postgres").await;
                Err(error)
            }
        }
    }

    async fn metadata(&self, p: MetadataParams) -> Result<MetadataResult, ProviderError> {
        let mut call = self.begin(Intent::Read).await?;
        let sql = if call.pooled {
            METADATA_POOLED
        } else {
            METADATA
        };
        let columns: Vec<(String, String, String, bool, bool)> = sqlx::query_as(sql)
            .bind(p.table.as_deref())
            .fetch_all(&mut *call.tx)
            .await
            .map_err(errors::from_sqlx)?;
        call.tx.commit().await.map_err(errors::from_sqlx)?;
        let columns = columns
            .into_iter()
            .map(|(table, name, format_type, not_null, key)| {
                let column = TableColumn {
                    name,
                    declared_type: values::declared_type_name(&format_type),
                    nullable: !not_null,
                    primary_key: key,
                };
                (table, column)
            });
        engine::tables(columns, p.table.as_deref())
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&self.access.pool)
            .await
            .map(drop)
            .map_err(errors::from_sqlx)
    }

    /// Gives up this instance's share of the tenant's access; a siloed pool closes when no
    /// instance uses it any more.
    async fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            pools::release(&self.registry, &self.tenant, &self.access).await;
        }
    }
}

impl PostgresProvider {
    /// Opens the call's transaction on one of the tenant's connection slots and enters the
    /// tenant (see `session`).
    async fn begin(&self, intent: Intent) -> Result<Call, ProviderError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        let permit = self.access.permit().await?;
        let pooled = matches!(self.scope, Scope::Pooled(_));
        let mut tx = self
            .access
            .pool
            .begin_with(session::opening(intent, pooled))
            .await
            .map_err(errors::from_sqlx)?;
        let timeout = self.config.statement_timeout_ms.to_string();
        // A fixed text, prepared once per connection (see `pools`); the values stay bound.
        let enter = match &self.scope {
            Scope::Pooled(enrollment) => sqlx::query(session::ENTER_POOLED)
                .bind(enrollment.id.as_str())
                .bind(enrollment.key.as_str())
                .bind(format!("\"{}\"", enrollment.schema))
                .bind(timeout)
                .bind(enrollment.role.as_str()),
            Scope::Siloed => sqlx::query(session::ENTER_SILOED)
                .bind(self.tenant.as_str())
                .bind(timeout),
        };
        enter.execute(&mut *tx).await.map_err(errors::from_sqlx)?;
        Ok(Call {
            tx,
            _permit: permit,
            pooled,
            keeps_plans: self.keeps_plans,
            unread_id: false,
        })
    }
}

/// A statement of the instance's caller. Tenant SQL is an unnamed statement: parsed for this
/// call only, never in the connection's statement cache (which holds the engine's own fixed
/// statements, see `pools`), so no tenant's statement text or plan stays on a pooled
/// connection for the next call. The service books' SQL is kept (`keeps_plans`).
fn caller_sql(
    sql: &str,
    keeps_plans: bool,
) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql).persistent(keeps_plans)
}

impl Session for Call {
    async fn run_statement(
        &mut self,
        statement: &StatementParams,
        at: &str,
    ) -> Result<ExecResult, ProviderError> {
        let sql_at = format!("{at}/sql");
        session::guard_statement(&statement.sql, &sql_at)?;
        let query = values::bind(
            caller_sql(&statement.sql, self.keeps_plans),
            &statement.params,
            &format!("{at}/params"),
        )?;
        let inserting = self.pooled && session::may_insert(&statement.sql);
        if inserting && statement.last_insert_id && self.unread_id {
            (&mut *self.tx)
                .execute(session::CLEAR_LAST_INSERT_ID)
                .await
                .map_err(errors::from_sqlx)?;
            self.unread_id = false;
        }
        let done = query
            .execute(&mut *self.tx)
            .await
            .map_err(|e| errors::statement(e, &sql_at))?;
        let last_insert_id = if inserting && statement.last_insert_id {
            // Text without arguments is a simple query: one round trip, where an extended one
            // takes two.
            let row = (&mut *self.tx)
                .fetch_one(session::TAKE_LAST_INSERT_ID)
                .await
                .map_err(errors::from_sqlx)?;
            let id: Option<String> = row.try_get(0).map_err(errors::from_sqlx)?;
            id.and_then(|id| id.parse().ok())
        } else {
            self.unread_id |= inserting;
            None
        };
        Ok(ExecResult {
            rows_affected: done.rows_affected(),
            last_insert_id,
        })
    }
}
