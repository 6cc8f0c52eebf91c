//! The `switchyard` binary's wiring: which engines the process hosts and where their data lives.
//! Kept as a library so the end-to-end and contract tests build the very same registry.

use std::path::Path;
use std::sync::Arc;

use switchyard_client::Service;
use switchyard_contracts::SchemaError;
use switchyard_inventory::InventoryService;
use switchyard_ledger::LedgerService;
use switchyard_orders::OrdersService;
use switchyard_outbox::OutboxService;
use switchyard_provider_auth::PolicySource;
use switchyard_runtime::Registry;
use switchyard_runtime::store::PlatformStore;
use switchyard_spi::Host;
use switchyard_spi::tenancy::Tenancy;
use switchyard_tasks::TasksService;

pub use settings::ServiceSettings;

pub mod audit_events;
pub mod cluster;
pub mod durable;
pub mod external;
pub mod settings;
pub mod workers;

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
        switchyard_provider_workflow::builtins(&host)?,
    ];
    // Their schemas compile on first use (ADR 39); `every_builtin_schema_compiles` below
    // compiles them all.
    for factory in domains.into_iter().flatten() {
        registry.register_builtin(factory)?;
    }
    // Composes the tenant's other ai engines, and keeps its counters in the platform store.
    registry.register_builtin(Arc::new(switchyard_ai_gateway::AiGatewayFactory::new(
        store.cloned(),
        &tenancy.quotas,
    )))?;
    Ok(registry)
}

/// The business services `serve` and `runtime` host under `/services/{name}/{action}`, with
/// their settings from the environment ([`ServiceSettings::from_env`]).
pub fn builtin_services() -> Result<Vec<Arc<dyn Service>>, SchemaError> {
    services(OutboxService::default())
}

/// [`builtin_services`] whose outbox relay records every business event it publishes in the
/// tenant's audit log in `store` ([`audit_events`]).
pub fn builtin_services_audited(
    store: &PlatformStore,
) -> Result<Vec<Arc<dyn Service>>, SchemaError> {
    let audited = Arc::new(audit_events::AuditedEvents::new(store.clone()));
    services(OutboxService::default().with_published(audited))
}

fn services(outbox: OutboxService) -> Result<Vec<Arc<dyn Service>>, SchemaError> {
    let settings = ServiceSettings::from_env();
    let setting = |name: &str, location: &str| SchemaError {
        location: location.into(),
        message: name.into(),
    };
    let ledger = LedgerService::new(settings.ledger)
        .map_err(|p| setting(&p.detail, "SWITCHYARD_LEDGER_DB / SWITCHYARD_LEDGER_BUS"))?;
    let inventory = InventoryService::new(settings.inventory).map_err(|p| {
        setting(
            &p.detail,
            "SWITCHYARD_INVENTORY_DB / SWITCHYARD_INVENTORY_BUS",
        )
    })?;
    let orders = OrdersService::new(settings.orders)
        .map_err(|p| setting(&p.detail, "SWITCHYARD_ORDERS_*"))?;
    let tasks = TasksService::new(settings.tasks)
        .map_err(|p| setting(&p.detail, "SWITCHYARD_TASKS_DB / SWITCHYARD_TASKS_WORKFLOW"))?;
    Ok(vec![
        Arc::new(ledger),
        Arc::new(inventory),
        Arc::new(orders),
        Arc::new(tasks),
        Arc::new(outbox),
    ])
}

/// For processes that run no policy: `auth/opa` answers provider_not_configured.
pub fn no_policy() -> PolicySource {
    Arc::new(|| None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::ActionValidators;

    /// The built-in engines and services compile their schemas on first use (ADR 39), so a
    /// schema that does not compile would fail its first request instead of start-up: this
    /// compiles every one of them.
    #[test]
    fn every_builtin_schema_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let registry = builtin_registry(dir.path(), no_policy(), &Tenancy::default(), None)
            .expect("the built-in engines register");
        let mut compiled = 0;
        for (_, engine) in registry.iter() {
            for action in &engine.descriptor().actions {
                let validators = &engine.actions[&action.name];
                validators.params.compile().unwrap();
                validators.result.compile().unwrap();
                compiled += 2;
            }
            engine.config.compile().unwrap();
            compiled += 1;
        }
        for service in builtin_services().unwrap() {
            let d = service.descriptor();
            for action in &d.actions {
                ActionValidators::compile(&format!("services/{}", d.name), action).unwrap();
                compiled += 2;
            }
        }
        assert!(compiled > 200, "only {compiled} schemas");
    }
}
