//! Each tenant's tables are created on its first call, once per process.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use switchyard_contracts::{Problem, TenantId};

/// The tenants whose tables this process has created. One service value serves every tenant,
/// so the service cannot create tables up front; it asks this guard on each call instead.
#[derive(Default)]
pub struct Installs {
    installed: Mutex<HashSet<TenantId>>,
    /// Serialises first-call installs: PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not safe
    /// against itself (two sessions can both find the name free and one then fails).
    installing: tokio::sync::Mutex<()>,
}

impl Installs {
    /// Runs `install` for `tenant` unless it has succeeded before in this process. A failed
    /// install is tried again on the tenant's next call.
    pub async fn once<F, Fut>(&self, tenant: &TenantId, mut install: F) -> Result<(), Problem>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), Problem>>,
    {
        if self.is_installed(tenant) {
            return Ok(());
        }
        let _installing = self.installing.lock().await;
        if self.is_installed(tenant) {
            return Ok(());
        }
        // Another replica may be installing the same tenant's tables right now.
        switchyard_outbox::ddl::create_beside_others(&mut install).await?;
        self.installed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(tenant.clone());
        Ok(())
    }

    fn is_installed(&self, tenant: &TenantId) -> bool {
        self.installed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(tenant)
    }
}
