//! Purges tenants whose deletion grace period has ended: every platform row of the tenant goes
//! (the audit log stays, with a record of the purge). A tenant resumed in the meantime is left.

use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde_json::json;
use switchyard_platform_store::{AuditEntry, PlatformStore};

pub struct TenantPurge {
    pub store: PlatformStore,
    pub every: Duration,
}

impl TenantPurge {
    /// One pass; returns how many tenants were purged.
    pub async fn run_once(&self) -> usize {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let due = match self.store.tenants_due_for_purge(&now).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "tenants due for purge could not be read");
                return 0;
            }
        };
        let mut purged = 0;
        for tenant in due {
            match self.store.purge_tenant(&tenant).await {
                Ok(true) => {
                    purged += 1;
                    tracing::info!(tenant = %tenant, "deleted tenant purged after its grace period");
                    let entry = AuditEntry {
                        tenant: tenant.to_string(),
                        actor: "system:tenant-purge".into(),
                        entity: "tenant".into(),
                        operation: "purge".into(),
                        old: Some(json!({"status": "deleting"})),
                        ..AuditEntry::default()
                    };
                    if let Err(e) = self.store.append_audit(entry).await {
                        tracing::error!(tenant = %tenant, error = %e, "the purge could not be written to the audit log");
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "tenant purge failed; retried next pass")
                }
            }
        }
        purged
    }
}

#[async_trait]
impl BackgroundService for TenantPurge {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticks = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            self.run_once().await;
        }
    }
}
