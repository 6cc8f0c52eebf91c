//! The factory-owned registry of every engine's per-tenant pools.
//!
//! A reconfigure starts a new instance while the old one still serves calls. If the new
//! config shapes the pools the same way (equal settings), both instances share one
//! [`Lease`]; otherwise the new one gets pools of its own and both coexist until the old
//! instance stops. Pools close when the last instance using them stops, so the data never
//! depends on which instance wrote it.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

use switchyard_spi::{ProviderError, TenantId};
use tokio::sync::Mutex;

/// Tenant → the pools (`P`) new instances should use, and the settings (`S`) they were opened
/// with.
pub(crate) struct Registry<P, S> {
    current: Mutex<HashMap<TenantId, Arc<Lease<P, S>>>>,
}

/// One tenant's pools, shared by its instances while their settings agree.
pub(crate) struct Lease<P, S> {
    pools: P,
    pub settings: S,
    /// Instances using these pools; only changed under the registry lock.
    users: AtomicUsize,
}

impl<P, S> Deref for Lease<P, S> {
    type Target = P;

    fn deref(&self) -> &P {
        &self.pools
    }
}

impl<P, S: PartialEq> Registry<P, S> {
    pub fn new() -> Self {
        Registry {
            current: Mutex::new(HashMap::new()),
        }
    }

    /// The pools a new instance of `tenant` should use: the current ones if they were opened
    /// with `settings`, else those `open` gives, which become current. `open` runs under the
    /// lock, so two concurrent starts never open two sets for the same settings.
    pub async fn acquire(
        &self,
        tenant: &TenantId,
        settings: S,
        open: impl Future<Output = Result<P, ProviderError>>,
    ) -> Result<Arc<Lease<P, S>>, ProviderError> {
        let mut current = self.current.lock().await;
        if let Some(lease) = current.get(tenant)
            && lease.settings == settings
        {
            lease.users.fetch_add(1, SeqCst);
            return Ok(lease.clone());
        }
        let lease = Arc::new(Lease {
            pools: open.await?,
            settings,
            users: AtomicUsize::new(1),
        });
        current.insert(tenant.clone(), lease.clone());
        Ok(lease)
    }

    /// Called once per instance on stop. True when it was the last instance using `lease`:
    /// the caller then closes its pools.
    pub async fn release(&self, tenant: &TenantId, lease: &Arc<Lease<P, S>>) -> bool {
        let mut current = self.current.lock().await;
        let last = lease.users.fetch_sub(1, SeqCst) == 1;
        if last && current.get(tenant).is_some_and(|c| Arc::ptr_eq(c, lease)) {
            current.remove(tenant);
        }
        last
    }
}
