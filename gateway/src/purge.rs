//! Removes idempotency records past their retention, so the platform store does not grow
//! with every keyed request ever made.

use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use switchyard_platform_store::PlatformStore;

const EVERY: Duration = Duration::from_secs(600);

pub struct IdempotencyPurge {
    pub store: PlatformStore,
    pub retention: Duration,
}

#[async_trait]
impl BackgroundService for IdempotencyPurge {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            let cutoff = std::time::SystemTime::now()
                .checked_sub(self.retention)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            match self.store.idempotency_purge(cutoff).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired idempotency records removed"),
                Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
            }
        }
    }
}
