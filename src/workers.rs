//! The per-tenant workers `serve` and `runtime` host themselves: for every tenant that uses the
//! business services, the relay of the services' outbox to the tenant's bus and the consumers
//! of the tenant's business events (the orders annotator). No API key and no process per
//! tenant: they call the runtime in process, as the tenant's platform.
//!
//! Exactly one replica runs a tenant's workers at a time: it holds the tenant's lease
//! (`workers/<tenant>`) in the platform store and renews all its leases every second in one
//! statement; a replica that dies stops renewing, and another takes the tenant over once the
//! lease runs out (a few seconds). A replica whose renewals fail stops working as soon as its
//! last renewal could have run out, before anyone else may take over. Each replica also holds a
//! membership lease (`member/<id>`), so each knows how many share the work and takes no more
//! than its share: a replica that joins gets tenants the others give back.
//!
//! The work itself may be interrupted anywhere, as `switchyard relay` may: an event published
//! but not yet marked sent is published again by the next holder (consumers dedupe by its id),
//! and a consumer's position is committed in the bus only past what it handled.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::{ProviderClient, Service, ServiceDescriptor};
use switchyard_contracts::{Problem, TenantId};
use switchyard_orders::Annotator;
use switchyard_runtime::client::RuntimeClient;
use switchyard_runtime::cluster;
use switchyard_runtime::store::{Change, FeedKind};
use switchyard_runtime::{PlatformStore, Runtime};
use switchyard_telemetry::metrics::{self, TenantLabels, WorkerLabels};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What every tenant's hosted workers do, from the services' settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostedWork {
    /// `(db, bus)`: the services' outbox in the books of `db` goes to `bus`.
    pub relays: Vec<(String, String)>,
    /// The bus the orders annotator reads `orders.order.created` from.
    pub annotator: Option<String>,
}

impl HostedWork {
    /// Nothing to run: no service has a bus.
    pub fn is_empty(&self) -> bool {
        self.relays.is_empty() && self.annotator.is_none()
    }
}

/// How often leases are renewed and how long one lasts unrenewed.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    pub ttl: Duration,
    pub tick: Duration,
}

impl Default for LeaseTiming {
    /// A dead replica's tenants are taken over within `ttl + tick` (4 s).
    fn default() -> Self {
        LeaseTiming {
            ttl: Duration::from_secs(3),
            tick: Duration::from_secs(1),
        }
    }
}

const MEMBER: &str = "member/";
const WORKERS: &str = "workers/";
/// Pause between rounds when there is nothing to do, doubling up to the longest. A service
/// call wakes the tenant's worker at once, on this replica directly and on another through the
/// store's work feed ([`Nudges`]), so the longest pause is only a safety net: an idle tenant
/// costs one outbox read and one bus poll every 30 s, 67 calls a second for 1,000 tenants.
const IDLE_FIRST: Duration = Duration::from_millis(50);
const IDLE_LONGEST: Duration = Duration::from_secs(30);
/// Holdings in the lease log are kept this long for auditors.
const LOG_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// Wakes a tenant's worker when a service call may have written an event: directly when the
/// worker runs on this replica, else through the store's work feed to the replica running it.
#[derive(Default, Clone)]
pub struct Nudges {
    inner: Arc<Mutex<HashMap<TenantId, Arc<Notify>>>>,
}

impl Nudges {
    fn register(&self, tenant: &TenantId) -> Arc<Notify> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(tenant.clone()).or_default().clone()
    }

    fn forget(&self, tenant: &TenantId) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
    }

    /// Wakes the tenant's worker here; false when it does not run here.
    fn nudge(&self, tenant: &TenantId) -> bool {
        let notify = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned();
        notify.map(|notify| notify.notify_one()).is_some()
    }

    fn nudge_all(&self) {
        for notify in self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            notify.notify_one();
        }
    }

    /// Wakes the workers of the tenants other replicas were called for, until the process
    /// ends; returns at once on a store without a feed (one process runs every worker). After
    /// a gap every worker here looks, as a wake-up may have been missed.
    async fn follow(self, store: PlatformStore) {
        cluster::follow(&store, FeedKind::Work, |change| {
            match change {
                Change::Work(tenant) => {
                    self.nudge(&tenant);
                }
                Change::Gap => self.nudge_all(),
                Change::Config(_) | Change::Secret(_) => {}
            }
            std::future::ready(())
        })
        .await;
    }
}

/// A business service as hosted with workers: its first call for a tenant marks the tenant as
/// one whose workers run (in the store, once per tenant and process), and every call wakes the
/// tenant's worker if it runs here. The `outbox` service, which the relay itself calls, is left
/// as it is: its calls would wake the relay for ever.
pub struct Marking {
    inner: Arc<dyn Service>,
    store: PlatformStore,
    nudges: Nudges,
    marked: Mutex<HashSet<TenantId>>,
}

impl Marking {
    pub fn wrap(
        services: Vec<Arc<dyn Service>>,
        store: &PlatformStore,
        nudges: &Nudges,
    ) -> Vec<Arc<dyn Service>> {
        services
            .into_iter()
            .map(|inner| {
                if inner.descriptor().name == "outbox" {
                    return inner;
                }
                Arc::new(Marking {
                    inner,
                    store: store.clone(),
                    nudges: nudges.clone(),
                    marked: Mutex::default(),
                }) as Arc<dyn Service>
            })
            .collect()
    }
}

#[async_trait]
impl Service for Marking {
    fn descriptor(&self) -> &ServiceDescriptor {
        self.inner.descriptor()
    }

    async fn invoke(
        &self,
        client: &dyn ProviderClient,
        action: &str,
        params: Value,
    ) -> Result<Value, Problem> {
        let tenant = client.tenant();
        let first = !self
            .marked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(tenant);
        if first {
            // Before the call: an event it writes must never belong to an unmarked tenant.
            match self.store.mark_hosted_tenant(tenant).await {
                Ok(()) => {
                    self.marked
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(tenant.clone());
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "cannot mark the tenant for hosted workers; will try again on its next call")
                }
            }
        }
        let answer = self.inner.invoke(client, action, params).await;
        if !self.nudges.nudge(tenant) && self.store.is_shared() {
            // Off the request's path: the caller has its answer whatever the notify does.
            let (store, tenant) = (self.store.clone(), tenant.clone());
            tokio::spawn(async move {
                if let Err(e) = store.notify_work(&tenant).await {
                    tracing::warn!(tenant = %tenant, error = %e, "cannot wake the tenant's workers on another replica; they find the events on their next round");
                }
            });
        }
        answer
    }
}

/// One replica's hosted workers: the leases it holds and the task working each tenant.
pub struct HostedWorkers {
    runtime: Arc<Runtime>,
    store: PlatformStore,
    work: HostedWork,
    timing: LeaseTiming,
    nudges: Nudges,
    /// This replica's name in the leases: unique per process start.
    holder: String,
    /// Until when (on this replica's clock) the last renewal holds at the latest; a worker
    /// does nothing past it.
    valid_until: Arc<Mutex<Instant>>,
    running: HashMap<String, JoinHandle<()>>,
}

impl HostedWorkers {
    pub fn new(
        runtime: Arc<Runtime>,
        store: PlatformStore,
        work: HostedWork,
        timing: LeaseTiming,
        nudges: Nudges,
    ) -> Self {
        HostedWorkers {
            runtime,
            store,
            work,
            timing,
            nudges,
            holder: uuid::Uuid::now_v7().to_string(),
            valid_until: Arc::new(Mutex::new(Instant::now())),
            running: HashMap::new(),
        }
    }

    /// Runs until `stop` resolves, then gives the leases back so another replica takes the
    /// tenants over at once.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tracing::info!(holder = %self.holder, relays = ?self.work.relays, annotator = ?self.work.annotator, "hosted workers");
        let follow = tokio::spawn(self.nudges.clone().follow(self.store.clone()));
        tokio::pin!(stop);
        let mut rounds: u64 = 0;
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "hosted workers: the leases could not be renewed; retrying");
            }
            rounds += 1;
            if rounds.is_multiple_of(3600) {
                let _ = self.store.lease_log_purge(LOG_RETENTION_MS).await;
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(self.timing.tick) => {}
            }
        }
        follow.abort();
        for (_, task) in self.running.drain() {
            task.abort();
        }
        self.count_held();
        if let Err(e) = self.store.lease_release(&self.holder, None).await {
            tracing::warn!(error = %e, "hosted workers: leases not released; they run out by themselves");
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.timing.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// One round: renew, give back what was lost or is more than this replica's share, take
    /// free tenants up to the share.
    async fn tick(&mut self) -> Result<(), switchyard_runtime::store::StoreError> {
        let sent = Instant::now();
        let renewed = self.store.lease_renew(&self.holder, self.ttl_ms()).await;
        let renewed = match renewed {
            Ok(renewed) => renewed,
            Err(e) => {
                self.stop_lost(&HashSet::new());
                return Err(e);
            }
        };
        self.set_valid_until(sent + self.timing.ttl);
        let member = format!("{MEMBER}{}", self.holder);
        let mut held: HashSet<String> = renewed.into_iter().map(|h| h.name).collect();
        if !held.contains(&member)
            && self
                .store
                .lease_acquire(&member, &self.holder, self.ttl_ms())
                .await?
                .is_some()
        {
            held.insert(member);
        }
        self.stop_lost(&held);
        self.count_held();
        let wanted: Vec<String> = self
            .store
            .hosted_tenants()
            .await?
            .iter()
            .map(|tenant| format!("{WORKERS}{tenant}"))
            .collect();
        let members = self.store.lease_holders(MEMBER).await?.len().max(1);
        let share = wanted.len().div_ceil(members);
        // Given back: tenants no longer hosted (deleted), and what is over the share.
        let hosted: HashSet<&String> = wanted.iter().collect();
        let (mut kept, mut extra): (Vec<String>, Vec<String>) = self
            .running
            .keys()
            .cloned()
            .partition(|name| hosted.contains(name));
        if kept.len() > share {
            extra.extend(kept.split_off(share));
        }
        if !extra.is_empty() {
            for name in &extra {
                if let Some(task) = self.running.remove(name) {
                    task.abort();
                }
            }
            self.store.lease_release(&self.holder, Some(&extra)).await?;
            self.count_held();
        }
        if self.running.len() >= share {
            return Ok(());
        }
        let taken: HashSet<String> = self
            .store
            .lease_holders(WORKERS)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for name in wanted {
            if self.running.len() >= share {
                break;
            }
            if taken.contains(&name) {
                continue;
            }
            // Taken after this round's renewal was sent, so it runs out after `valid_until`.
            if self
                .store
                .lease_acquire(&name, &self.holder, self.ttl_ms())
                .await?
                .is_some()
            {
                self.start(name);
            }
        }
        self.count_held();
        Ok(())
    }

    fn count_held(&self) {
        let held = i64::try_from(self.running.len()).unwrap_or(i64::MAX);
        metrics::global().workers.tenants_held.set(held);
    }

    fn set_valid_until(&self, until: Instant) {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    /// Stops the workers whose lease is not in `held`.
    fn stop_lost(&mut self, held: &HashSet<String>) {
        let lost: Vec<String> = self
            .running
            .keys()
            .filter(|name| !held.contains(*name))
            .cloned()
            .collect();
        for name in lost {
            if let Some(task) = self.running.remove(&name) {
                task.abort();
                tracing::warn!(lease = %name, "hosted workers: lease lost; its work stopped here");
            }
            if let Some(tenant) = tenant_of(&name) {
                self.nudges.forget(&tenant);
            }
        }
    }

    fn start(&mut self, name: String) {
        let Some(tenant) = tenant_of(&name) else {
            return;
        };
        tracing::info!(tenant = %tenant, holder = %self.holder, "hosted workers: tenant taken");
        let worker = TenantWorker {
            relay: RuntimeClient::new(self.runtime.clone(), tenant.clone(), "worker:outbox-relay"),
            annotate: RuntimeClient::new(
                self.runtime.clone(),
                tenant.clone(),
                "worker:orders-annotator",
            ),
            work: self.work.clone(),
            valid_until: self.valid_until.clone(),
            wake: self.nudges.register(&tenant),
        };
        self.running.insert(name, tokio::spawn(worker.run()));
    }
}

fn failed(tenant: &TenantId, worker: &str) {
    let labels = WorkerLabels {
        tenant: tenant.to_string(),
        worker: worker.into(),
    };
    metrics::global()
        .workers
        .failed_rounds
        .get_or_create(&labels)
        .inc();
}

fn tenant_of(lease: &str) -> Option<TenantId> {
    TenantId::parse(lease.strip_prefix(WORKERS)?).ok()
}

/// One tenant's work on the replica holding its lease.
struct TenantWorker {
    relay: RuntimeClient,
    annotate: RuntimeClient,
    work: HostedWork,
    valid_until: Arc<Mutex<Instant>>,
    wake: Arc<Notify>,
}

impl TenantWorker {
    async fn run(self) {
        let annotator = self
            .work
            .annotator
            .as_deref()
            .and_then(|bus| Annotator::new(bus).ok());
        let mut idle = IDLE_FIRST;
        loop {
            let valid_until = *self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
            let done = if Instant::now() < valid_until {
                self.round(annotator.as_ref()).await
            } else {
                0
            };
            idle = if done > 0 {
                Duration::ZERO
            } else {
                (idle * 2).clamp(IDLE_FIRST, IDLE_LONGEST)
            };
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = self.wake.notified() => idle = IDLE_FIRST / 2,
            }
        }
    }

    /// Relays each outbox, then annotates; answers how much was done.
    async fn round(&self, annotator: Option<&Annotator>) -> usize {
        let mut done = 0;
        for (db, bus) in &self.work.relays {
            let params = json!({"db": db, "bus": bus, "max_events": 200});
            match self.relay.invoke("services/outbox", "relay", params).await {
                Ok(answer) => {
                    let sent = answer["sent"].as_u64().unwrap_or(0);
                    if sent > 0 {
                        let tenant = TenantLabels {
                            tenant: self.relay.tenant().to_string(),
                        };
                        metrics::global()
                            .workers
                            .events_relayed
                            .get_or_create(&tenant)
                            .inc_by(sent);
                    }
                    done += usize::try_from(sent).unwrap_or(usize::MAX);
                }
                Err(problem) => {
                    failed(self.relay.tenant(), "relay");
                    tracing::warn!(tenant = %self.relay.tenant(), %db, %bus, code = %problem.code, detail = %problem.detail, "hosted relay round failed; retrying");
                }
            }
        }
        if let Some(annotator) = annotator {
            match annotator.run_once(&self.annotate).await {
                Ok(round) => done += round.read,
                Err(problem) => {
                    failed(self.annotate.tenant(), "annotator");
                    tracing::warn!(tenant = %self.annotate.tenant(), code = %problem.code, detail = %problem.detail, "hosted annotator round failed; retrying");
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use switchyard_runtime::{Registry, ResilienceConfig};

    use super::*;

    const FAST: LeaseTiming = LeaseTiming {
        ttl: Duration::from_millis(600),
        tick: Duration::from_millis(100),
    };

    /// How many tenants each holder has, once `expected` holds (or after 10 s, for the
    /// assertion to show what it was): polled, so a slow machine only makes the test slower.
    async fn shares(
        store: &PlatformStore,
        expected: impl Fn(&HashMap<String, usize>) -> bool,
    ) -> HashMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut shares = HashMap::new();
            for (_, holder) in store.lease_holders(WORKERS).await.unwrap() {
                *shares.entry(holder).or_default() += 1;
            }
            if expected(&shares) || Instant::now() > deadline {
                return shares;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn replica(store: &PlatformStore) -> HostedWorkers {
        let runtime = Arc::new(Runtime::new(
            Registry::default(),
            store.clone(),
            ResilienceConfig::default(),
            Default::default(),
        ));
        let work = HostedWork {
            relays: vec![("db/sqlite".into(), "bus/embedded".into())],
            annotator: None,
        };
        HostedWorkers::new(runtime, store.clone(), work, FAST, Nudges::default())
    }

    /// Ten tenants, replicas coming and going: each live replica holds its share, a replica
    /// that joins gets tenants from the other, and a dead one's tenants are taken over once its
    /// leases run out, all without two holders of one tenant at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_share_the_tenants_and_take_over_a_dead_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        for n in 0..10 {
            let tenant = TenantId::parse(&format!("t{n}")).unwrap();
            store.create_tenant(&tenant).await.unwrap();
            store.mark_hosted_tenant(&tenant).await.unwrap();
        }
        let first = replica(&store);
        let first_holder = first.holder.clone();
        let first = tokio::spawn(first.run(std::future::pending()));
        let all = |holder: &String| {
            let holder = holder.clone();
            move |s: &HashMap<String, usize>| s.get(&holder) == Some(&10)
        };
        let alone = shares(&store, all(&first_holder)).await;
        assert_eq!(alone.get(&first_holder), Some(&10), "{alone:?}");

        let second = replica(&store);
        let second_holder = second.holder.clone();
        let second = tokio::spawn(second.run(std::future::pending()));
        let halves = |s: &HashMap<String, usize>| s.len() == 2 && s.values().all(|n| *n == 5);
        let shared = shares(&store, halves).await;
        assert_eq!(shared.get(&first_holder), Some(&5), "{shared:?}");
        assert_eq!(shared.get(&second_holder), Some(&5), "{shared:?}");

        // The first dies without a word: its leases run out, the second takes them all.
        first.abort();
        let died = Instant::now();
        let after = shares(&store, all(&second_holder)).await;
        assert!(
            died.elapsed() >= FAST.ttl / 2,
            "taken over before the leases ran out"
        );
        assert_eq!(after.get(&second_holder), Some(&10), "{after:?}");
        second.abort();

        let log = store.lease_log(WORKERS).await.unwrap();
        for pair in log.windows(2) {
            if pair[0].name == pair[1].name {
                assert!(pair[1].acquired_ms > pair[0].valid_until_ms, "{pair:?}");
            }
        }
    }
}
