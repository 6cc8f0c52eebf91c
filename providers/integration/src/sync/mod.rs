//! Syncs, upserts, inbound webhooks and re-maps for every connector alike: cursors, raw
//! records, the mapping, destinations written through the tenant's own providers, deletes,
//! events. A connector (`crate::connector`) only speaks its system's API; [`Factory`] makes
//! an engine of it, and [`builtin`] lists that engine in a few lines:
//!
//! ```ignore
//! pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
//!     sync::builtin::<Shopify>(host, sync::About {
//!         summary: "Shopify orders, products, customers and inventory levels …",
//!         capabilities: &["incremental", "webhooks"],
//!         actions: sync::ALL_ACTIONS,
//!     })
//! }
//! ```
//!
//! Where the state lives and why: docs/adr (the sync design).

mod destination;
mod events;
mod instance;
mod runner;
mod settings;
mod store;
mod tokens;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use switchyard_contracts::SchemaError;
use switchyard_egress::Egress;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    CallContext, ErrorCode, Health, Host, Invocation, Provider, ProviderDescriptor, ProviderError,
    ProviderFactory, StartContext, TenantId, parse_config,
};
use tokio::sync::OnceCell;

use crate::connector::{Connect, Link};
use crate::engine::{Instance, describe};
use events::Publisher;
use instance::{Sync, Tenant};
use runner::rfc3339;
use settings::Plan;
pub(crate) use settings::Settings;
use store::Store;

/// How long a store statement waits for the database lock before failing as retryable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every action a connector engine can serve.
pub(crate) const ALL_ACTIONS: &[&str] = &[
    "discover", "check", "sync", "remap", "upsert", "receive", "state", "reset",
];
/// The actions of a connector that reads only (no upsert, no inbound webhooks).
pub(crate) const READ_ACTIONS: &[&str] = &["discover", "check", "sync", "remap", "state", "reset"];

/// What a connector engine says of itself in its descriptor.
pub(crate) struct About {
    pub(crate) summary: &'static str,
    pub(crate) capabilities: &'static [&'static str],
    /// The actions it serves: [`ALL_ACTIONS`], [`READ_ACTIONS`], or another subset.
    pub(crate) actions: &'static [&'static str],
}

/// The engine `integration/<C::NAME>`: one store per tenant (opened on the tenant's first
/// start and shared by its later instances, so a reconfigure keeps cursors, raw records and
/// runs), the runs under way per tenant, and the operator's egress ceiling.
pub(crate) struct Factory<C> {
    root: PathBuf,
    descriptor: ProviderDescriptor,
    egress: Egress,
    /// A cell per tenant, so opening one tenant's store does not hold up the others, and a
    /// failed open leaves the cell empty for the next start to retry.
    tenants: Mutex<HashMap<TenantId, Arc<OnceCell<Arc<Tenant>>>>>,
    connector: PhantomData<fn() -> C>,
}

impl<C: Connect> Factory<C> {
    /// An engine keeping its tenants' stores under `root`, created if missing (a failure is
    /// logged here and surfaces as a failed start).
    pub(crate) fn new(root: PathBuf, about: About) -> Self {
        if let Err(e) = std::fs::create_dir_all(&root) {
            tracing::error!(root = %root.display(), error = %e, "cannot create the sync root");
        }
        Factory {
            root,
            descriptor: describe(C::NAME, about.actions)
                .summary(about.summary)
                .capabilities(about.capabilities)
                .config::<C::Config>()
                .build(),
            egress: Egress::default(),
            tenants: Mutex::new(HashMap::new()),
            connector: PhantomData,
        }
    }

    /// Holds every tenant's connection to the operator's egress ceiling.
    pub(crate) fn with_egress(mut self, ceiling: &EgressCeiling) -> Self {
        self.egress = Egress::new(ceiling);
        self
    }

    async fn tenant(&self, tenant: &TenantId) -> Result<Arc<Tenant>, ProviderError> {
        let cell = {
            let mut tenants = self
                .tenants
                .lock()
                .map_err(|_| ProviderError::internal("the sync store registry is poisoned"))?;
            tenants.entry(tenant.clone()).or_default().clone()
        };
        let path = self.root.join(format!("{}.db", tenant.as_str()));
        cell.get_or_try_init(|| async {
            tracing::info!(tenant = %tenant, path = %path.display(), "opening sync store");
            let store = Store::open(&path, BUSY_TIMEOUT).await?;
            Ok(Arc::new(Tenant::new(store, C::NAME)))
        })
        .await
        .cloned()
    }
}

#[async_trait]
impl<C: Connect> ProviderFactory for Factory<C> {
    fn node_local(&self) -> Option<&'static str> {
        Some("sync checkpoints and state in files under this node's data dir")
    }

    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        if ctx.config.as_object().is_some_and(Map::is_empty) {
            return Ok(Arc::new(Unconfigured(C::NAME)));
        }
        let config: C::Config = parse_config(ctx.config)?;
        let plan = Plan::of(C::settings(&config))?;
        let egress = match &plan.allowed_networks {
            Some(networks) => self.egress.narrowed(networks, "/allowed_networks")?,
            None => self.egress.clone(),
        };
        let tenant = self.tenant(&ctx.tenant).await?;
        let connector = C::connect(
            config,
            Link {
                egress,
                tokens: tenant.tokens.clone(),
            },
        )?;
        let events = Publisher::new(ctx.client.clone(), plan.events.clone(), ctx.tenant, C::NAME);
        let engine = Sync::new(connector, tenant, plan, ctx.client, events);
        // Runs a crash (or a dropped task) interrupted go on from their last checkpoint.
        engine.resume().await;
        Ok(Arc::new(Instance(engine)))
    }
}

/// A tenant's instance of a connector it has not configured (its config is `{}`, as every
/// tenant's is until it configures one): it runs, and every call answers
/// provider_not_configured (409), which the caller can act on, rather than a retryable outage.
/// The tenant's store is not opened.
struct Unconfigured(&'static str);

#[async_trait]
impl Provider for Unconfigured {
    async fn invoke(&self, _: &CallContext, _: Invocation) -> Result<Value, ProviderError> {
        Err(ProviderError::new(
            ErrorCode::ProviderNotConfigured,
            format!(
                "integration/{} is not configured for this tenant: configure its connection first",
                self.0
            ),
        ))
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(Vec::new())
    }
}

/// The factory of connector `C`, keeping its stores under the data directory, held to the
/// operator's egress ceiling: a connector folder's `builtin` is this one call.
pub(crate) fn builtin<C: Connect>(
    host: &Host,
    about: About,
) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(
        Factory::<C>::new(host.data.join(format!("integration/{}", C::NAME)), about)
            .with_egress(&host.tenancy.egress),
    )))
}

#[cfg(test)]
mod tests;
