//! Replicas sharing one PostgreSQL store: a tenant's provider config saved through any of them
//! is swapped in on every other one that runs the provider for that tenant, within a moment.
//!
//! The store's feed ([`switchyard_platform_store::Feed`]) names the tenant, provider and
//! version of each save; the replica catches its instance up ([`crate::lifecycle::Slot::catch_up`])
//! and never back: an instance only ever gives way to a newer version. A gap in the feed (its
//! connection dropped) is closed by comparing every running instance with the store.

use std::sync::Arc;
use std::time::Duration;

use switchyard_contracts::TenantId;
use switchyard_platform_store::{Change, ConfigChange, FeedKind, PlatformStore, SecretChange};

use crate::Runtime;

impl Runtime {
    /// Swaps in `version` (or newer) of `tenant`'s config of `domain/name` if an older one runs
    /// here. A provider this replica has not started for the tenant is left alone: its first
    /// call reads the newest config.
    pub async fn catch_up_config(
        self: &Arc<Self>,
        tenant: &TenantId,
        domain: &str,
        name: &str,
        version: i64,
    ) {
        let Some(index) = self.registry.load().index_of(domain, name) else {
            return;
        };
        let slot = self
            .slots
            .read()
            .ok()
            .and_then(|slots| slots.get(&(tenant.clone(), index)).cloned());
        let Some(slot) = slot else {
            return;
        };
        match slot
            .catch_up(version, || self.start_instance(tenant, index))
            .await
        {
            Ok(Some(running)) => {
                tracing::info!(tenant = %tenant, provider = %format!("{domain}/{name}"), version = running, "config changed on another replica; instance swapped");
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(tenant = %tenant, provider = %format!("{domain}/{name}"), version, %reason, "config changed on another replica, but the new instance did not start; the running one stays");
            }
        }
    }

    /// Catches every running instance up with the newest config in the store.
    pub async fn catch_up_all_configs(self: &Arc<Self>) {
        match self.store.latest_config_versions().await {
            Ok(latest) => {
                for ((tenant, domain, name), version) in latest {
                    self.catch_up_config(&tenant, &domain, &name, version).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the newest configs to catch up"),
        }
    }

    /// Follows the other replicas' config saves and tenant secret writes until the process
    /// ends; returns at once where the store is this process's own. Each change is caught up
    /// on its own task, so a slow start of one provider does not hold back the others; a gap
    /// (which includes what was saved before this replica listened) is closed from the store.
    pub async fn follow_config_changes(self: Arc<Self>) {
        let store = self.store.clone();
        follow(&store, FeedKind::Configs, |change| {
            let runtime = self.clone();
            async move {
                match change {
                    Change::Config(ConfigChange {
                        tenant,
                        domain,
                        name,
                        version,
                    }) => {
                        let Ok(tenant) = TenantId::parse(&tenant) else {
                            return;
                        };
                        tokio::spawn(async move {
                            runtime
                                .catch_up_config(&tenant, &domain, &name, version)
                                .await;
                        });
                    }
                    // The secret's value is read from Vault by whoever restarts an instance.
                    Change::Secret(SecretChange { tenant, name }) => {
                        let Ok(tenant) = TenantId::parse(&tenant) else {
                            return;
                        };
                        tokio::spawn(async move {
                            runtime.refresh_tenant_secret(&tenant, &name).await;
                        });
                    }
                    Change::Gap => runtime.catch_up_all_configs().await,
                    Change::Work(_) => {}
                }
            }
        })
        .await;
    }
}

/// Hands `on` every change the other replicas notify of `kind`, until the process ends, and a
/// [`Change::Gap`] after every (re)connection, since what was notified while nobody listened is
/// lost; returns at once where the store has no feed (SQLite: one process, nothing to hear).
pub async fn follow<F, Fut>(store: &PlatformStore, kind: FeedKind, mut on: F)
where
    F: FnMut(Change) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let mut feed = match store.feed(kind).await {
            Ok(Some(feed)) => feed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, ?kind, "cannot listen to the other replicas; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        on(Change::Gap).await;
        loop {
            match feed.next().await {
                Ok(change) => on(change).await,
                Err(e) => {
                    tracing::warn!(error = %e, ?kind, "the feed from the other replicas failed; listening anew");
                    break;
                }
            }
        }
    }
}
