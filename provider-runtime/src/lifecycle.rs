//! One tenant's slot for one provider: its lifecycle state and its current instance.
//!
//! Hot swap: a reconfigure starts the new instance *before* touching the old one, publishes it
//! atomically, and only then waits for the old instance's in-flight calls to finish before
//! stopping it. A call therefore always runs to completion on the instance it started on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use switchyard_spi::Provider;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::resilience::{CircuitObserver, Resilience, ResilienceConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Stopped,
    Starting,
    Running,
    Stopping,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub lifecycle: Lifecycle,
    /// Why the slot failed (or was stopped); shown to the tenant's admins.
    pub reason: Option<String>,
}

struct Instance {
    provider: Arc<dyn Provider>,
    /// The version of the tenant's config it was started with (0: none saved yet).
    version: i64,
    /// Every call holds a read guard; draining takes the write guard.
    in_flight: Arc<RwLock<()>>,
}

/// Why a slot has no instance to lend. The two differ for the caller: a provider the tenant's
/// own admin stopped stays stopped until that admin starts it (a state the caller controls, not
/// an outage), while a failed start may succeed on a later call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRunning {
    HeldStopped,
    StartFailed(String),
}

/// The right to run one call on one instance; the instance is not stopped while it lives.
pub struct Lease {
    pub provider: Arc<dyn Provider>,
    _guard: OwnedRwLockReadGuard<()>,
}

pub struct Slot {
    /// Bulkhead, breaker, timeout and retries for this tenant's calls to this provider.
    pub resilience: Resilience,
    current: ArcSwapOption<Instance>,
    status: std::sync::Mutex<Status>,
    /// Serialises start, stop and swap; calls never take it.
    transition: tokio::sync::Mutex<()>,
    /// Set by an admin `stop`: the slot stays stopped until an admin `start`.
    held_stopped: AtomicBool,
    /// Fingerprint of the secrets the running instance was started with.
    secrets: std::sync::Mutex<Option<[u8; 32]>>,
    /// The health status last reported, so a change can be told apart from a repeat.
    health: std::sync::Mutex<Option<String>>,
}

impl Slot {
    pub fn new(resilience: &ResilienceConfig, circuit: Option<CircuitObserver>) -> Self {
        Slot {
            resilience: Resilience::observed(resilience, circuit),
            current: ArcSwapOption::empty(),
            status: std::sync::Mutex::new(Status {
                lifecycle: Lifecycle::Stopped,
                reason: None,
            }),
            transition: tokio::sync::Mutex::new(()),
            held_stopped: AtomicBool::new(false),
            secrets: std::sync::Mutex::new(None),
            health: std::sync::Mutex::new(None),
        }
    }

    /// Records the health status just reported; answers the previous one when it differs (the
    /// first report is not a change).
    pub fn note_health(&self, status: &str) -> Option<String> {
        let mut last = self.health.lock().ok()?;
        let previous = last.replace(status.to_owned())?;
        (previous != status).then_some(previous)
    }
}

impl Slot {
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or(Status {
            lifecycle: Lifecycle::Failed,
            reason: Some("status lock poisoned".into()),
        })
    }

    fn set_status(&self, lifecycle: Lifecycle, reason: Option<String>) {
        if let Ok(mut status) = self.status.lock() {
            *status = Status { lifecycle, reason };
        }
    }

    pub fn is_held_stopped(&self) -> bool {
        self.held_stopped.load(Ordering::SeqCst)
    }

    /// A lease on the running instance, or `None` when there is none.
    pub fn lease(&self) -> Option<Lease> {
        let mut seen: Option<Arc<Instance>> = None;
        loop {
            let instance = self.current.load_full()?;
            if seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &instance)) {
                // Draining, and no successor was published: the slot is stopping.
                return None;
            }
            match instance.in_flight.clone().try_read_owned() {
                Ok(guard) => {
                    return Some(Lease {
                        provider: instance.provider.clone(),
                        _guard: guard,
                    });
                }
                // The instance is draining; its successor (if any) is already published.
                Err(_) => seen = Some(instance),
            }
        }
    }

    /// Starts an instance with `start` unless one runs or an admin holds the slot stopped.
    /// Returns the lease, or why there is none.
    pub async fn ensure_running<F, Fut>(&self, start: F) -> Result<Lease, NotRunning>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Arc<dyn Provider>, i64), String>>,
    {
        if let Some(lease) = self.lease() {
            return Ok(lease);
        }
        let _transition = self.transition.lock().await;
        if let Some(lease) = self.lease() {
            return Ok(lease);
        }
        if self.is_held_stopped() {
            return Err(NotRunning::HeldStopped);
        }
        self.set_status(Lifecycle::Starting, None);
        match start().await {
            Ok((provider, version)) => {
                self.publish(provider, version);
                self.lease().ok_or_else(|| {
                    NotRunning::StartFailed("instance vanished right after start".into())
                })
            }
            Err(reason) => {
                self.set_status(Lifecycle::Failed, Some(reason.clone()));
                Err(NotRunning::StartFailed(reason))
            }
        }
    }

    fn publish(&self, provider: Arc<dyn Provider>, version: i64) -> Option<Arc<Instance>> {
        let previous = self.current.swap(Some(Arc::new(Instance {
            provider,
            version,
            in_flight: Arc::new(RwLock::new(())),
        })));
        self.set_status(Lifecycle::Running, None);
        previous
    }

    /// Replaces the running instance with a new, already started one, then drains and stops
    /// the old one in the background so the caller does not wait for slow calls.
    ///
    /// The version check: an instance of an older config than the running one is stopped
    /// instead of published, so a slow start of version 2 finishing after version 3 arrived
    /// from another replica never takes the slot back to 2.
    pub async fn swap(&self, provider: Arc<dyn Provider>, version: i64) {
        let _transition = self.transition.lock().await;
        if self
            .running_version()
            .is_some_and(|running| running > version)
        {
            drop(_transition);
            provider.stop().await;
            return;
        }
        if let Some(old) = self.publish(provider, version) {
            tokio::spawn(drain_and_stop(old));
        }
    }

    /// The config version of the running instance; `None` when none runs.
    pub fn running_version(&self) -> Option<i64> {
        self.current
            .load()
            .as_ref()
            .map(|instance| instance.version)
    }

    /// Another replica saved config `version`: when an older one runs here, starts an instance
    /// with `start` (which reads the newest config) and swaps it in. Under the slot's
    /// transition lock, so a start that read the store before the save cannot publish after
    /// this check. Nothing running: nothing to do, the next start reads the new config.
    /// Answers the version now running when it changed.
    pub async fn catch_up<F, Fut>(&self, version: i64, start: F) -> Result<Option<i64>, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Arc<dyn Provider>, i64), String>>,
    {
        let _transition = self.transition.lock().await;
        let Some(running) = self.running_version() else {
            return Ok(None);
        };
        if running >= version {
            return Ok(None);
        }
        let (provider, started) = start().await?;
        if started <= running {
            provider.stop().await;
            return Ok(None);
        }
        if let Some(old) = self.publish(provider, started) {
            tokio::spawn(drain_and_stop(old));
        }
        Ok(Some(started))
    }

    /// Admin stop: no new call gets an instance; the current one is drained, then stopped.
    pub async fn stop(&self) {
        let _transition = self.transition.lock().await;
        self.held_stopped.store(true, Ordering::SeqCst);
        self.set_status(Lifecycle::Stopping, None);
        if let Some(old) = self.current.swap(None) {
            drain_and_stop(old).await;
        }
        self.set_status(Lifecycle::Stopped, Some("stopped by an admin".into()));
    }

    pub fn remember_secrets(&self, fingerprint: [u8; 32]) {
        if let Ok(mut seen) = self.secrets.lock() {
            *seen = Some(fingerprint);
        }
    }

    pub fn secrets_changed(&self, fingerprint: &[u8; 32]) -> bool {
        self.secrets
            .lock()
            .map(|seen| seen.as_ref() != Some(fingerprint))
            .unwrap_or(true)
    }

    /// Admin start: lifts the hold of a previous stop.
    pub fn release_hold(&self) {
        self.held_stopped.store(false, Ordering::SeqCst);
    }
}

async fn drain_and_stop(instance: Arc<Instance>) {
    let _drained = instance.in_flight.write().await;
    instance.provider.stop().await;
}
