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
use switchyard_provider_auth::PolicySource;
use switchyard_runtime::Registry;
use switchyard_runtime::store::PlatformStore;
use switchyard_spi::Host;
use switchyard_spi::tenancy::Tenancy;

pub mod external;

/// The embedded defaults — nothing to install, everything under the data directory — plus each
/// production engine whose server is configured by its `SWITCHYARD_*` variables (the README's
/// "Production engines" table lists them). A production engine half configured is a startup
/// error naming the missing variable, never an engine silently left out.
/// `policy` gives `auth/opa` the bundle the gateway is running (none in a runtime-only process);
/// `tenancy` holds the operator's ceilings every tenant's instance is held to. `store` is the
/// platform store `ai/gateway` keeps budgets and audit records in; a process that only
/// describes its providers (`switchyard openapi`, the contract tests) passes `None`.
pub fn builtin_registry(
    data_dir: &Path,
    policy: PolicySource,
    tenancy: &Tenancy,
    store: Option<&PlatformStore>,
) -> Result<Registry, SchemaError> {
    let providers = data_dir.join("providers");
    // The service books (see `ServiceBooks`) live beside, not under, the tenants' own data.
    let books = data_dir.join("books");
    let mut registry = Registry::default();
    // Every domain lists its own engines (`builtins` in each crate): a new engine is its
    // folder and one line there, nothing here.
    let host = Host {
        data: &providers,
        books: &books,
        tenancy,
    };
    let domains = [
        switchyard_provider_db::builtins(&host)?,
        switchyard_provider_cache::builtins(&host)?,
        switchyard_provider_storage::builtins(&host)?,
        switchyard_provider_bus::builtins(&host)?,
        switchyard_provider_auth::builtins(&host, policy)?,
        switchyard_provider_integration::builtins(&host)?,
        switchyard_provider_ai::builtins(&host)?,
    ];
    for factory in domains.into_iter().flatten() {
        registry.register(factory)?;
    }
    // Composes the tenant's other ai engines, and keeps its counters in the platform store.
    registry.register(Arc::new(switchyard_ai_gateway::AiGatewayFactory::new(
        store.cloned(),
        &tenancy.quotas,
    )))?;
    Ok(registry)
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
