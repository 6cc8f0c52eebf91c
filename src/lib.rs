//! The `switchyard` binary's wiring: which engines the process hosts and where their data lives.
//! Kept as a library so the end-to-end and contract tests build the very same registry.

use std::path::Path;
use std::sync::Arc;

use switchyard_client::Service;
use switchyard_contracts::SchemaError;
use switchyard_inventory::{InventoryService, InventorySettings};
use switchyard_ledger::{LedgerService, LedgerSettings};
use switchyard_orders::{OrdersService, OrdersSettings};
use switchyard_outbox::OutboxService;
use switchyard_provider_ai::{LocalAiFactory, OpenAiFactory};
use switchyard_provider_auth::{JwtFactory, OpaFactory, PolicySource};
use switchyard_provider_bus::{EmbeddedBusFactory, KafkaFactory, KafkaSettings};
use switchyard_provider_cache::{MemoryCacheFactory, RedisCacheFactory};
use switchyard_provider_db::{
    MssqlFactory, MysqlFactory, PostgresFactory, PostgresSettings, ServiceBooks, SqliteFactory,
};
use switchyard_provider_integration::WebhookFactory;
use switchyard_provider_storage::{FsFactory, S3Factory, S3Settings};
use switchyard_runtime::Registry;
use switchyard_spi::tenancy::Tenancy;

pub mod external;

/// The embedded defaults — nothing to install, everything under the data directory — plus each
/// production engine whose server is configured by its `SWITCHYARD_*` variables (the README's
/// "Production engines" table lists them). A production engine half configured is a startup
/// error naming the missing variable, never an engine silently left out.
/// `policy` gives `auth/opa` the bundle the gateway is running (none in a runtime-only process);
/// `tenancy` holds the operator's ceilings every tenant's instance is held to.
pub fn builtin_registry(
    data_dir: &Path,
    policy: PolicySource,
    tenancy: &Tenancy,
) -> Result<Registry, SchemaError> {
    let providers = data_dir.join("providers");
    let mut registry = Registry::default();
    switchyard_provider_db::hold_to(&tenancy.quotas);
    // The service books (see `ServiceBooks`) live beside, not under, the tenants' own data.
    let books = data_dir.join("books");
    registry.register(Arc::new(ServiceBooks::new(
        Arc::new(SqliteFactory::new(providers.join("db/sqlite"))),
        Arc::new(SqliteFactory::new(books.join("db/sqlite"))),
    )))?;
    if let Ok(admin_url) = std::env::var("SWITCHYARD_POSTGRES_URL") {
        let password =
            std::env::var("SWITCHYARD_POSTGRES_APP_PASSWORD").map_err(|_| SchemaError {
                location: "db/postgres".into(),
                message:
                    "SWITCHYARD_POSTGRES_URL is set but SWITCHYARD_POSTGRES_APP_PASSWORD is not"
                        .into(),
            })?;
        let postgres = PostgresFactory::new(PostgresSettings::new(admin_url, password))
            .with_egress(&tenancy.egress);
        let books = postgres.books();
        registry.register(Arc::new(ServiceBooks::new(
            Arc::new(postgres),
            Arc::new(books),
        )))?;
    }
    if let Ok(admin_url) = std::env::var("SWITCHYARD_MYSQL_URL") {
        let mut mysql = MysqlFactory::new(admin_url);
        if let Ok(secret) = std::env::var("SWITCHYARD_MYSQL_TENANT_SECRET") {
            mysql = mysql.with_secret(secret);
        }
        if let Ok(prefix) = std::env::var("SWITCHYARD_MYSQL_DATABASE_PREFIX") {
            mysql = mysql.with_database_prefix(&prefix);
        }
        registry.register(Arc::new(mysql))?;
    }
    if let Ok(connection) = std::env::var("SWITCHYARD_MSSQL_URL") {
        let mut mssql = MssqlFactory::new(connection);
        if let Ok(secret) = std::env::var("SWITCHYARD_MSSQL_TENANT_SECRET") {
            mssql = mssql.with_secret(secret);
        }
        if let Ok(prefix) = std::env::var("SWITCHYARD_MSSQL_DATABASE_PREFIX") {
            mssql = mssql.with_database_prefix(&prefix);
        }
        registry.register(Arc::new(mssql))?;
    }
    registry.register(Arc::new(
        MemoryCacheFactory::new().with_quotas(&tenancy.quotas),
    ))?;
    if let Ok(url) = std::env::var("SWITCHYARD_REDIS_URL") {
        registry.register(Arc::new(RedisCacheFactory::new(url)))?;
    }
    registry.register(Arc::new(FsFactory::new(providers.join("storage/fs"))))?;
    if let Ok(endpoint) = std::env::var("SWITCHYARD_S3_URL") {
        registry.register(Arc::new(s3_factory(endpoint)?))?;
    }
    registry.register(Arc::new(EmbeddedBusFactory::new(
        providers.join("bus/embedded"),
    )))?;
    if let Ok(brokers) = std::env::var("SWITCHYARD_KAFKA_BROKERS") {
        registry.register(Arc::new(kafka_factory(brokers)?))?;
    }
    registry.register(Arc::new(JwtFactory::new().with_egress(&tenancy.egress)))?;
    registry.register(Arc::new(OpaFactory::new(policy)))?;
    registry.register(Arc::new(
        WebhookFactory::new(providers.join("integration/webhook")).with_egress(&tenancy.egress),
    ))?;
    registry.register(Arc::new(LocalAiFactory::new()))?;
    // Always registered: each tenant configures its own server; unconfigured, it says so.
    registry.register(Arc::new(OpenAiFactory::new().with_egress(&tenancy.egress)))?;
    Ok(registry)
}

/// storage/s3 from the `SWITCHYARD_S3_*` variables; a missing one is a startup error naming it.
fn s3_factory(endpoint: String) -> Result<S3Factory, SchemaError> {
    let problem = |message: String| SchemaError {
        location: "storage/s3".into(),
        message,
    };
    let required = |name: &str| {
        std::env::var(name)
            .map_err(|_| problem(format!("SWITCHYARD_S3_URL is set but {name} is not")))
    };
    let mut settings = S3Settings::new(
        endpoint,
        required("SWITCHYARD_S3_BUCKET")?,
        required("SWITCHYARD_S3_ACCESS_KEY_ID")?,
        required("SWITCHYARD_S3_SECRET_ACCESS_KEY")?,
    );
    if let Ok(region) = std::env::var("SWITCHYARD_S3_REGION") {
        settings = settings.with_region(region);
    }
    if let Ok(prefix) = std::env::var("SWITCHYARD_S3_PREFIX") {
        settings = settings.with_prefix(&prefix);
    }
    S3Factory::new(settings).map_err(|e| problem(e.detail))
}

/// bus/kafka on `brokers`, with the optional settings from the environment. Settings that can
/// never work stop the process at startup rather than failing every call.
fn kafka_factory(brokers: String) -> Result<KafkaFactory, SchemaError> {
    let invalid = |message: String| SchemaError {
        location: "bus/kafka".into(),
        message,
    };
    let mut settings = KafkaSettings::new(brokers);
    if let Ok(namespace) = std::env::var("SWITCHYARD_KAFKA_NAMESPACE") {
        settings = settings.with_namespace(namespace);
    }
    if let Ok(factor) = std::env::var("SWITCHYARD_KAFKA_REPLICATION_FACTOR") {
        let factor = factor.parse().map_err(|e| {
            invalid(format!(
                "SWITCHYARD_KAFKA_REPLICATION_FACTOR {factor:?} is not a number: {e}"
            ))
        })?;
        settings = settings.with_replication_factor(factor);
    }
    KafkaFactory::new(settings).map_err(|e| invalid(e.detail))
}

/// The business services `serve` and `runtime` host under `/services/{name}/{action}`.
/// `SWITCHYARD_LEDGER_DB` picks the db provider the ledger keeps its books in (default
/// `db/sqlite`; the tenant's service books there, which the tenant's own db calls cannot
/// reach); `SWITCHYARD_LEDGER_BUS` a bus for its `ledger.journal.posted` events, written to
/// the outbox in the books and carried by `switchyard relay` through the `outbox` service.
pub fn builtin_services() -> Result<Vec<Arc<dyn Service>>, SchemaError> {
    let setting = |name: &str, location: &str| SchemaError {
        location: location.into(),
        message: name.into(),
    };
    let ledger = LedgerService::new(LedgerSettings {
        db: std::env::var("SWITCHYARD_LEDGER_DB").unwrap_or_else(|_| "db/sqlite".into()),
        bus: std::env::var("SWITCHYARD_LEDGER_BUS").ok(),
    })
    .map_err(|p| setting(&p.detail, "SWITCHYARD_LEDGER_DB / SWITCHYARD_LEDGER_BUS"))?;
    let inventory = InventoryService::new(InventorySettings {
        db: std::env::var("SWITCHYARD_INVENTORY_DB").unwrap_or_else(|_| "db/sqlite".into()),
        bus: std::env::var("SWITCHYARD_INVENTORY_BUS").ok(),
    })
    .map_err(|p| {
        setting(
            &p.detail,
            "SWITCHYARD_INVENTORY_DB / SWITCHYARD_INVENTORY_BUS",
        )
    })?;
    let orders = OrdersService::new(OrdersSettings {
        db: std::env::var("SWITCHYARD_ORDERS_DB").unwrap_or_else(|_| "db/sqlite".into()),
        bus: std::env::var("SWITCHYARD_ORDERS_BUS").ok(),
        webhook: std::env::var("SWITCHYARD_ORDERS_WEBHOOK").ok(),
        ai: Some(std::env::var("SWITCHYARD_ORDERS_AI").unwrap_or_else(|_| "ai/local".into())),
    })
    .map_err(|p| setting(&p.detail, "SWITCHYARD_ORDERS_*"))?;
    Ok(vec![
        Arc::new(ledger),
        Arc::new(inventory),
        Arc::new(orders),
        Arc::new(OutboxService::default()),
    ])
}

/// For processes that run no policy: `auth/opa` answers provider_not_configured.
pub fn no_policy() -> PolicySource {
    Arc::new(|| None)
}
