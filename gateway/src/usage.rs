//! Calls and errors per tenant, counted as requests finish and added to the platform store in
//! batches (`tenant_usage`), so the operator's usage view covers every replica. Counting is a
//! map update under an uncontended lock; the store sees one transaction per flush.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use switchyard_contracts::TenantId;
use switchyard_platform_store::{PlatformStore, UsageBatch, utc_day};

/// How often counts are written to the store: the operator's view lags by at most this.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Counts since the last flush: tenant → (calls, errors).
#[derive(Default)]
pub struct UsageCounter {
    counts: Mutex<HashMap<TenantId, (i64, i64)>>,
}

impl UsageCounter {
    /// One finished call of `tenant`; an answer of 400 or above (or none) is an error.
    pub fn count(&self, tenant: &TenantId, status: u16) {
        let error = i64::from(!(1..400).contains(&status));
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(tenant) {
            Some((calls, errors)) => {
                *calls += 1;
                *errors += error;
            }
            None => {
                counts.insert(tenant.clone(), (1, error));
            }
        }
    }

    /// Takes the counts so far, dated today (UTC): a flush straddling midnight dates the last
    /// two seconds of a day to the next one.
    fn take(&self) -> UsageBatch {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()));
        let day = utc_day(time::OffsetDateTime::now_utc().unix_timestamp() * 1000);
        counts
            .into_iter()
            .map(|(tenant, counts)| ((tenant.to_string(), day.clone()), counts))
            .collect()
    }

    /// Puts counts back after a failed write, so a store outage loses nothing.
    fn restore(&self, batch: UsageBatch) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for ((tenant, _), (calls, errors)) in batch {
            if let Ok(tenant) = TenantId::parse(&tenant) {
                let entry = counts.entry(tenant).or_default();
                entry.0 += calls;
                entry.1 += errors;
            }
        }
    }

    /// Writes what was counted; on failure keeps it for the next flush.
    pub async fn flush(&self, store: &PlatformStore) {
        let batch = self.take();
        if let Err(e) = store.add_usage(&batch).await {
            tracing::warn!(error = %e, "tenant usage could not be written; kept for the next flush");
            self.restore(batch);
        }
    }
}

/// Flushes a [`UsageCounter`] every [`FLUSH_EVERY`], and once more at shutdown.
pub struct UsageFlush {
    pub counter: Arc<UsageCounter>,
    pub store: PlatformStore,
}

#[async_trait]
impl BackgroundService for UsageFlush {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticks = tokio::time::interval(FLUSH_EVERY);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => {
                    self.counter.flush(&self.store).await;
                    return;
                }
            }
            self.counter.flush(&self.store).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_errors_add_up_per_tenant_and_come_back_after_a_failed_write() {
        let counter = UsageCounter::default();
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        for status in [200, 201, 403, 500, 0] {
            counter.count(&acme, status);
        }
        counter.count(&globex, 204);
        let batch = counter.take();
        let of = |t: &str| {
            batch
                .iter()
                .find(|((tenant, _), _)| tenant == t)
                .map(|(_, c)| *c)
        };
        assert_eq!(of("acme"), Some((5, 3)));
        assert_eq!(of("globex"), Some((1, 0)));
        assert!(counter.take().is_empty());
        counter.restore(batch);
        counter.count(&acme, 200);
        assert_eq!(
            counter.take().into_values().collect::<Vec<_>>(),
            vec![(6, 3), (1, 0)]
        );
    }
}
