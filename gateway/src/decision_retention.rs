//! Deletes policy decisions past their tenant's retention, so the decision log does not grow
//! with every request ever decided. The default is `[policy] decision_retention_days`; the
//! operator sets a tenant's own in its limits (`decision_retention_days`), read at every run.
//!
//! Every replica runs it: the deletes are idempotent, and a replica finding nothing left to
//! delete costs one short read per tenant.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use switchyard_platform_store::PlatformStore;

use crate::filters::policy::PolicyConfig;

/// Days a decision is kept when neither the gateway config nor the tenant's limits say.
pub const DEFAULT_RETENTION_DAYS: NonZeroU32 = NonZeroU32::new(90).unwrap();
/// How often the purge runs unless `[policy] decision_purge_interval_ms` says.
pub const DEFAULT_PURGE_INTERVAL_MS: u64 = 3_600_000;
/// Rows per delete statement (each its own transaction): at about a millisecond per hundred
/// rows, the decision log's writer never waits long behind a purge of a large backlog.
const BATCH: u32 = 2_000;

pub struct DecisionPurge {
    pub store: PlatformStore,
    pub default_days: NonZeroU32,
    pub every: Duration,
}

impl DecisionPurge {
    /// The purge with `[policy]`'s settings, or the defaults without a policy: decisions a
    /// past policy logged still age out.
    pub fn new(store: PlatformStore, policy: Option<&PolicyConfig>) -> Self {
        DecisionPurge {
            store,
            default_days: policy.map_or(DEFAULT_RETENTION_DAYS, |p| p.decision_retention_days),
            every: Duration::from_millis(
                policy
                    .map_or(DEFAULT_PURGE_INTERVAL_MS, |p| p.decision_purge_interval_ms)
                    .max(100),
            ),
        }
    }
}

#[async_trait]
impl BackgroundService for DecisionPurge {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticks = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            match self
                .store
                .purge_decisions(self.default_days.get(), now_ms, BATCH)
                .await
            {
                Ok(purged) if purged.decisions == 0 => {}
                Ok(purged) => {
                    switchyard_telemetry::metrics::global()
                        .gateway
                        .decisions_purged
                        .inc_by(purged.decisions);
                    tracing::info!(
                        decisions = purged.decisions,
                        inputs = purged.inputs,
                        "decisions past their retention removed"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "decision log purge failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::GatewayConfig;

    #[test]
    fn retention_is_90_days_unless_set_and_0_is_refused() {
        let config: GatewayConfig = toml::from_str("[policy]\nbundle = \"b.tar.gz\"\n").unwrap();
        let policy = config.policy.unwrap();
        assert_eq!(policy.decision_retention_days.get(), 90);
        assert!(policy.decision_upload.is_none());
        let config: GatewayConfig = toml::from_str(
            "[policy]\nbundle = \"b\"\ndecision_retention_days = 7\ndecision_purge_interval_ms = 500\n\
             [policy.decision_upload]\nurl = \"http://127.0.0.1:9/logs\"\nbatch_max = 50\n",
        )
        .unwrap();
        let policy = config.policy.unwrap();
        assert_eq!(
            (
                policy.decision_retention_days.get(),
                policy.decision_purge_interval_ms
            ),
            (7, 500)
        );
        assert_eq!(policy.decision_upload.unwrap().batch_max.get(), 50);
        let err = toml::from_str::<GatewayConfig>(
            "[policy]\nbundle = \"b\"\ndecision_retention_days = 0\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("decision_retention_days"), "{err}");
    }
}
