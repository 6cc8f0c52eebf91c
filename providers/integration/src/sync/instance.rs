//! One tenant's instance of a connector engine: the domain's actions served by calling the
//! connector, the tenant's store and the destinations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchyard_client::ProviderClient;
use switchyard_spi::{CallContext, ErrorCode, ProviderError};
use tokio::sync::{Mutex, OnceCell, watch};
use tokio::task::AbortHandle;

use super::destination::Writer;
use super::events::Publisher;
use super::runner::{self, Job, now_ms, rfc3339};
use super::settings::Plan;
use super::store::{Phase, RunRow, Store, destination_key, parse_destination};
use super::tokens::tokens;
use crate::connector::{Connect, Inbound, Stream};
use crate::contract::{
    Checked, Destination, Discovered, DiscoveredStream, Mode, ReceiveParams, ReceiveResult,
    RemapParams, Reset, ResetParams, Run, StateParams, States, StreamState, SyncParams,
    UpsertParams, UpsertResults,
};
use crate::engine::Engine;
use crate::http::Tokens;

/// The longest `wait_ms` (the schema's bound), under the runtime's 30 s call timeout.
const MAX_WAIT: Duration = Duration::from_millis(25_000);

/// What outlives a tenant's instances: its store and the runs under way, so a reconfigured
/// instance answers the run its predecessor started instead of starting a second one.
pub(crate) struct Tenant {
    pub(super) store: Arc<Store>,
    /// Runs under way in this process, by stream × destination.
    active: Mutex<HashMap<(String, String), Active>>,
    /// The connection's OAuth2 tokens, one handle for every instance of the tenant.
    pub(crate) tokens: Tokens,
    /// Where the newest instance publishes events (the auth.failed event reads it).
    events: Arc<std::sync::Mutex<Option<Publisher>>>,
}

struct Active {
    run_id: String,
    done: watch::Receiver<bool>,
    task: AbortHandle,
}

impl Tenant {
    /// `connection` names the tokens in the store (the engine's name).
    pub(crate) fn new(store: Store, connection: &'static str) -> Self {
        let store = Arc::new(store);
        let events = Arc::new(std::sync::Mutex::new(None));
        Tenant {
            tokens: tokens(connection, store.clone(), events.clone()),
            store,
            active: Mutex::new(HashMap::new()),
            events,
        }
    }
}

/// One tenant's instance of engine `integration/<C::NAME>`.
pub(crate) struct Sync<C> {
    connector: Arc<C>,
    tenant: Arc<Tenant>,
    plan: Plan,
    client: Option<Arc<dyn ProviderClient>>,
    events: Publisher,
    /// The streams as first discovered by this instance (sync and receive look them up).
    streams: OnceCell<Vec<Stream>>,
}

impl<C: Connect> Sync<C> {
    pub(crate) fn new(
        connector: C,
        tenant: Arc<Tenant>,
        plan: Plan,
        client: Option<Arc<dyn ProviderClient>>,
        events: Publisher,
    ) -> Self {
        if let Ok(mut newest) = tenant.events.lock() {
            *newest = Some(events.clone());
        }
        Sync {
            connector: Arc::new(connector),
            tenant,
            plan,
            client,
            events,
            streams: OnceCell::new(),
        }
    }

    /// Starts again, in the background, every run the store shows as running that no task
    /// of this process runs: a crash or a dropped task interrupted it. Failures are logged;
    /// the next `sync` of that stream tries again.
    pub(crate) async fn resume(&self) {
        let running = match self.tenant.store.running().await {
            Ok(running) => running,
            Err(e) => {
                tracing::warn!(error = %e.detail, "could not read the interrupted runs");
                return;
            }
        };
        for run in running {
            if let Err(e) = self.resume_run(run).await {
                tracing::warn!(error = %e.detail, "could not resume a run");
            }
        }
    }

    async fn resume_run(&self, run: RunRow) -> Result<(), ProviderError> {
        let target = (run.stream.clone(), destination_key(&run.destination));
        let mut active = self.tenant.active.lock().await;
        if active.get(&target).is_some_and(|a| !a.task.is_finished()) {
            return Ok(());
        }
        // The task discovers the stream: a start never waits on the system.
        let running = self.spawn(run, None)?;
        active.insert(target, running);
        Ok(())
    }

    fn client(&self) -> Result<Arc<dyn ProviderClient>, ProviderError> {
        self.client.clone().ok_or_else(|| {
            ProviderError::unavailable(format!(
                "integration/{} runs without a provider client here (a plugin or remote \
                 host), so it cannot write to a destination",
                C::NAME
            ))
        })
    }

    /// The stream called `name`, as the connector discovers it (once per instance).
    async fn stream(&self, name: &str) -> Result<Stream, ProviderError> {
        let streams = self
            .streams
            .get_or_try_init(|| self.connector.discover())
            .await?;
        runner::find(streams.clone(), name)
    }

    /// Starts `run` as a task; the registry entry it answers is the caller's to insert.
    fn spawn(&self, run: RunRow, stream: Option<Stream>) -> Result<Active, ProviderError> {
        let job = Job {
            connector: self.connector.clone(),
            store: self.tenant.store.clone(),
            mapping: self.plan.mapping(&run.stream),
            writer: Writer::new(self.client()?, run.destination.clone()),
            events: self.events.clone(),
            stream,
            run,
        };
        let run_id = job.run.run_id.clone();
        let (sender, done) = watch::channel(false);
        let task = tokio::spawn(async move {
            runner::run(job).await;
            sender.send_replace(true);
        });
        Ok(Active {
            run_id,
            done,
            task: task.abort_handle(),
        })
    }

    /// The run under way for `stream` × `destination`, or a new one `fresh` makes.
    async fn start(
        &self,
        stream: &str,
        destination: Destination,
        fresh: impl FnOnce(String) -> RunRow,
        discovered: Option<Stream>,
    ) -> Result<(String, watch::Receiver<bool>), ProviderError> {
        // Before a run is recorded: without a client it could never write.
        self.client()?;
        let key = destination_key(&destination);
        let target = (stream.to_owned(), key.clone());
        let mut active = self.tenant.active.lock().await;
        if let Some(running) = active.get(&target)
            && !running.task.is_finished()
        {
            return Ok((running.run_id.clone(), running.done.clone()));
        }
        // A run the store shows running that no task runs (interrupted) goes on instead.
        let run = match self.tenant.store.last_run(stream, &key).await? {
            Some(run) if run.status == "running" => run,
            _ => {
                let run = fresh(key);
                self.tenant.store.insert_run(&run).await?;
                run
            }
        };
        let discovered = discovered.filter(|_| run.mode != Mode::Remap);
        let running = self.spawn(run, discovered)?;
        let answer = (running.run_id.clone(), running.done.clone());
        active.insert(target, running);
        Ok(answer)
    }

    /// Waits up to `wait_ms` for run `run_id` to end, then answers it as stored.
    async fn answer(
        &self,
        run_id: &str,
        mut done: watch::Receiver<bool>,
        wait_ms: u64,
    ) -> Result<Run, ProviderError> {
        let wait = Duration::from_millis(wait_ms).min(MAX_WAIT);
        if !wait.is_zero() {
            // A wait that ends first answers the run as it is: still running.
            let _ = tokio::time::timeout(wait, done.wait_for(|ended| *ended)).await;
        }
        let run =
            self.tenant.store.run(run_id).await?.ok_or_else(|| {
                ProviderError::internal(format!("run {run_id} is not in the store"))
            })?;
        let cursor = self
            .tenant
            .store
            .cursor(&run.stream, &destination_key(&run.destination))
            .await?;
        Ok(run.answer(cursor))
    }
}

fn new_run(
    stream: &str,
    destination: &Destination,
    mode: Mode,
    since: Option<serde_json::Value>,
) -> RunRow {
    RunRow {
        run_id: format!("run_{}", uuid::Uuid::now_v7().simple()),
        stream: stream.to_owned(),
        destination: destination.clone(),
        mode,
        status: "running",
        phase: Phase::Read,
        page: None,
        max_cursor: None,
        since,
        records: 0,
        deleted: 0,
        pages: 0,
        error: None,
        started_at_ms: now_ms(),
        finished_at_ms: None,
    }
}

#[async_trait]
impl<C: Connect> Engine for Sync<C> {
    const NAME: &'static str = C::NAME;
    const DEPENDENCY: &'static str = "sync_store";

    async fn discover(&self) -> Result<Discovered, ProviderError> {
        let streams = self.connector.discover().await?;
        Ok(Discovered {
            streams: streams
                .into_iter()
                .map(|stream| DiscoveredStream {
                    modes: match stream.cursor_field {
                        Some(_) => vec!["full", "incremental"],
                        None => vec!["full"],
                    },
                    stream,
                })
                .collect(),
        })
    }

    async fn check(&self) -> Result<Checked, ProviderError> {
        self.connector.check().await?;
        Ok(Checked {
            ok: true,
            detail: None,
        })
    }

    async fn sync(&self, _: &CallContext, p: SyncParams) -> Result<Run, ProviderError> {
        let stream = self.stream(&p.stream).await?;
        if p.mode == Mode::Incremental && stream.cursor_field.is_none() {
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/mode",
                format!("stream {:?} has no cursor field: sync it full", p.stream),
            ));
        }
        let destination = self.plan.destination(&p.stream, p.destination)?;
        let since = match p.mode {
            Mode::Incremental => {
                self.tenant
                    .store
                    .cursor(&p.stream, &destination_key(&destination))
                    .await?
            }
            _ => None,
        };
        let fresh = |_: String| new_run(&p.stream, &destination, p.mode, since);
        let (run_id, done) = self
            .start(&p.stream, destination.clone(), fresh, Some(stream))
            .await?;
        self.answer(&run_id, done, p.wait_ms).await
    }

    async fn remap(&self, _: &CallContext, p: RemapParams) -> Result<Run, ProviderError> {
        let destination = self.plan.destination(&p.stream, p.destination)?;
        let fresh = |_: String| new_run(&p.stream, &destination, Mode::Remap, None);
        let (run_id, done) = self
            .start(&p.stream, destination.clone(), fresh, None)
            .await?;
        self.answer(&run_id, done, p.wait_ms).await
    }

    async fn upsert(
        &self,
        _: &CallContext,
        p: UpsertParams,
    ) -> Result<UpsertResults, ProviderError> {
        let results = self
            .connector
            .upsert(&p.stream, &p.external_id_field, &p.records)
            .await?;
        Ok(UpsertResults { results })
    }

    async fn receive(
        &self,
        _: &CallContext,
        p: ReceiveParams,
        body: &[u8],
    ) -> Result<ReceiveResult, ProviderError> {
        let headers: BTreeMap<String, String> = p
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let received = self.connector.receive(Inbound {
            headers: &headers,
            body,
        })?;
        let answer = |duplicate| ReceiveResult {
            delivery_id: received.delivery_id.clone(),
            stream: received.stream.clone(),
            records: if duplicate { 0 } else { received.records.len() },
            deleted: if duplicate { 0 } else { received.deleted.len() },
            duplicate,
            event: None,
        };
        let store = &self.tenant.store;
        if store.delivered(&received.delivery_id).await? {
            return Ok(answer(true));
        }
        let stream = self.stream(&received.stream).await?;
        let destination = self.plan.destination(&received.stream, None)?;
        let writer = Writer::new(self.client()?, destination);
        let kept = runner::keep(&stream, received.records.clone())?;
        store.keep(&stream.name, &kept).await?;
        let items = runner::map(self.plan.mapping(&stream.name).as_deref(), &kept)?;
        let now = rfc3339(now_ms());
        writer.write(&items, &now).await?;
        writer.delete(&received.deleted, &now).await?;
        store.mark_deleted(&stream.name, &received.deleted).await?;
        // Recorded only once written: a delivery that failed here is taken again when the
        // system retries it.
        store
            .record_delivery(&received.delivery_id, now_ms())
            .await?;
        if self.events.records() {
            let upserted = items
                .iter()
                .map(|i| serde_json::json!({"stream": stream.name, "id": i.id, "record": i.record}))
                .collect();
            self.events
                .publish_all(super::events::RECORD_UPSERTED, Some(&stream.name), upserted)
                .await;
            let deleted = received
                .deleted
                .iter()
                .map(|id| serde_json::json!({"stream": stream.name, "id": id}))
                .collect();
            self.events
                .publish_all(super::events::RECORD_DELETED, Some(&stream.name), deleted)
                .await;
        }
        Ok(answer(false))
    }

    async fn state(&self, p: StateParams) -> Result<States, ProviderError> {
        let store = &self.tenant.store;
        let mut streams = Vec::new();
        for (stream, key, cursor) in store.targets(p.stream.as_deref()).await? {
            let last_run = store.last_run(&stream, &key).await?;
            streams.push(StreamState {
                destination: parse_destination(&key)?,
                last_run: last_run.map(|run| run.answer(cursor.clone())),
                cursor: cursor.unwrap_or_default(),
                stream,
            });
        }
        Ok(States { streams })
    }

    async fn reset(&self, p: ResetParams) -> Result<Reset, ProviderError> {
        let key = p.destination.as_ref().map(destination_key);
        // Held across the write so no run of the stream starts, or checkpoints, meanwhile.
        let active = self.tenant.active.lock().await;
        let running = active.iter().any(|((stream, target), run)| {
            stream == &p.stream
                && key.as_ref().is_none_or(|key| key == target)
                && !run.task.is_finished()
        });
        if running {
            return Err(ProviderError::new(
                ErrorCode::Conflict,
                format!(
                    "a sync of stream {} is running; reset it once the run has ended",
                    p.stream
                ),
            ));
        }
        let reset = match (p.cursor, key) {
            (Some(cursor), Some(key)) => {
                self.tenant
                    .store
                    .set_cursor(&p.stream, &key, &cursor)
                    .await?;
                1
            }
            (Some(_), None) => {
                return Err(ProviderError::new(
                    ErrorCode::ParamsInvalid,
                    "a cursor is set for one destination: name it",
                ));
            }
            (None, key) => self.tenant.store.reset(&p.stream, key.as_deref()).await?,
        };
        drop(active);
        Ok(Reset { reset })
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let records = self.tenant.store.probe().await?;
        Ok(Some(format!("{records} raw records kept")))
    }
}
