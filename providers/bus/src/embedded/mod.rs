#![doc = include_str!("docs.md")]

mod log;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use switchyard_contracts::SchemaError;
use switchyard_spi::{
    Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};
use tokio::sync::OnceCell;

use crate::config::BusConfig;
use crate::contract::{
    CommitParams, Committed, PollParams, PublishParams, Published, RecordOut, Records, ReplayFrom,
    ReplayParams, dead_letter_topic, format_time_ms, offset_param,
};
use crate::engine::{Engine, Instance, describe};
use log::{Log, NewMessage, StoredRecord};

/// How long a statement waits for a lock held by someone else (another process on the same
/// file, a checkpoint) before the call fails as retryable. Short enough that a stuck lock
/// surfaces as an error instead of a hung request.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `bus/embedded` engine. Owns one log (database file) per tenant, opened on the tenant's
/// first start and shared by every later instance of that tenant, so a reconfigure (a new
/// instance swapped in while the old one finishes its calls) sees the same records and
/// offsets, and there is only ever one writer per file.
pub struct EmbeddedBusFactory {
    root: PathBuf,
    descriptor: ProviderDescriptor,
    /// A cell per tenant rather than one async lock over the map: opening one tenant's
    /// database does not hold up the others, and a failed open leaves the cell empty so the
    /// next start retries.
    logs: Mutex<HashMap<TenantId, Arc<OnceCell<Arc<Log>>>>>,
}

impl EmbeddedBusFactory {
    /// An engine keeping its tenants' databases under `root`, which is created if missing.
    /// Failing to create it is not fatal here: the error is logged and surfaces again, as a
    /// failed start, when a tenant's database cannot be opened.
    pub fn new(root: PathBuf) -> Self {
        if let Err(e) = std::fs::create_dir_all(&root) {
            tracing::error!(root = %root.display(), error = %e, "cannot create the bus root");
        }
        EmbeddedBusFactory {
            root,
            descriptor: describe("embedded")
                .summary(
                    "Durable event log in one SQLite file per tenant: ordered topics, \
                     consumer groups, replay; no broker to run.",
                )
                .capabilities(&["ordering", "consumer_groups", "replay", "durable"])
                .config::<BusConfig>()
                .build(),
            logs: Mutex::new(HashMap::new()),
        }
    }

    async fn log(&self, tenant: &TenantId) -> Result<Arc<Log>, ProviderError> {
        let cell = {
            let mut logs = self
                .logs
                .lock()
                .map_err(|_| ProviderError::internal("the bus log registry is poisoned"))?;
            logs.entry(tenant.clone()).or_default().clone()
        };
        let path = self.root.join(format!("{}.db", tenant.as_str()));
        cell.get_or_try_init(|| async {
            tracing::info!(tenant = %tenant, path = %path.display(), "opening bus log");
            Log::open(&path, BUSY_TIMEOUT).await.map(Arc::new)
        })
        .await
        .cloned()
    }
}

#[async_trait]
impl ProviderFactory for EmbeddedBusFactory {
    fn node_local(&self) -> Option<&'static str> {
        Some("an event log in files under this node's data dir")
    }

    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = BusConfig::from_value(ctx.config)?;
        let log = self.log(&ctx.tenant).await?;
        Ok(Arc::new(Instance(EmbeddedBus { log, config })))
    }
}

/// One tenant's instance. Holds no state of its own besides the config, so stopping it
/// releases nothing: the log belongs to the factory and outlives instance swaps.
struct EmbeddedBus {
    log: Arc<Log>,
    config: BusConfig,
}

#[async_trait]
impl Engine for EmbeddedBus {
    const NAME: &'static str = "embedded";
    const DEPENDENCY: &'static str = "log";

    async fn publish(&self, params: PublishParams) -> Result<Published, ProviderError> {
        let messages: Vec<NewMessage> = params
            .messages
            .into_iter()
            .map(|m| NewMessage {
                key: m.key,
                headers: m.headers,
                payload: m.payload,
            })
            .collect();
        let offsets = self.log.append(&params.topic, &messages).await?;
        Ok(Published {
            topic: params.topic,
            offsets,
        })
    }

    async fn poll(&self, params: PollParams) -> Result<Records, ProviderError> {
        let limit = self.limit(params.max_records);
        let (start, stored) = match (params.offset, self.config.max_deliveries) {
            (Some(offset), _) => {
                let start = offset_param(offset, "/offset")?;
                (start, self.log.read(&params.topic, start, limit).await?)
            }
            (None, None) => {
                let start = self.log.committed(&params.group, &params.topic).await?;
                (start, self.log.read(&params.topic, start, limit).await?)
            }
            (None, Some(max_deliveries)) => {
                let dead_letters = dead_letter_topic(&params.topic)?;
                self.log
                    .deliver(
                        &params.group,
                        &params.topic,
                        &dead_letters,
                        max_deliveries,
                        limit,
                    )
                    .await?
            }
        };
        records(start, stored)
    }

    async fn commit(&self, params: CommitParams) -> Result<Committed, ProviderError> {
        let offset = offset_param(params.offset, "/offset")?;
        self.log
            .commit(&params.group, &params.topic, offset)
            .await?;
        Ok(Committed {
            topic: params.topic,
            group: params.group,
            committed: offset,
        })
    }

    async fn replay(&self, params: ReplayParams) -> Result<Records, ProviderError> {
        let start = match params.start()? {
            ReplayFrom::Offset(offset) => offset,
            ReplayFrom::TimeMs(at_ms) => self.log.first_offset_at(&params.topic, at_ms).await?,
        };
        let limit = self.limit(params.max_records);
        records(start, self.log.read(&params.topic, start, limit).await?)
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        self.log.ping().await
    }
}

impl EmbeddedBus {
    fn limit(&self, max_records: Option<u32>) -> i64 {
        i64::from(max_records.unwrap_or(self.config.default_max_records))
    }
}

/// The shared tail of poll and replay: the records read from `start`, and where to continue.
fn records(start: i64, stored: Vec<StoredRecord>) -> Result<Records, ProviderError> {
    let next_offset = stored.last().map_or(start, |r| r.offset + 1);
    let records = stored
        .into_iter()
        .map(record_out)
        .collect::<Result<_, _>>()?;
    Ok(Records {
        records,
        next_offset,
    })
}

fn record_out(record: StoredRecord) -> Result<RecordOut, ProviderError> {
    Ok(RecordOut {
        offset: record.offset,
        key: record.key,
        headers: record.headers,
        payload: record.payload,
        published_at: format_time_ms(record.published_at_ms)?,
    })
}

/// Always hosted: the embedded default, under the data directory.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(EmbeddedBusFactory::new(
        host.data.join("bus/embedded"),
    ))))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use switchyard_spi::{CallContext, ErrorCode, HealthStatus, Invocation};

    use super::*;

    async fn start(factory: &EmbeddedBusFactory, tenant: &str, config: Value) -> Arc<dyn Provider> {
        factory
            .start(StartContext {
                tenant: TenantId::parse(tenant).unwrap(),
                config,
                client: None,
            })
            .await
            .unwrap()
    }

    async fn invoke(provider: &dyn Provider, action: &str, params: Value) -> Value {
        let ctx = CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "unit".into(),
            subject: None,
            service: None,
        };
        let call = Invocation {
            action: action.into(),
            params,
            payload: None,
        };
        provider.invoke(&ctx, call).await.unwrap()
    }

    #[tokio::test]
    async fn each_tenant_gets_its_own_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let factory = EmbeddedBusFactory::new(dir.path().join("nested/root"));
        start(&factory, "acme", json!({})).await;
        start(&factory, "globex", json!({})).await;
        assert!(dir.path().join("nested/root/acme.db").is_file());
        assert!(dir.path().join("nested/root/globex.db").is_file());
    }

    #[tokio::test]
    async fn default_max_records_applies_when_the_call_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let factory = EmbeddedBusFactory::new(dir.path().to_path_buf());
        let bus = start(&factory, "acme", json!({"default_max_records": 2})).await;
        let messages: Vec<Value> = (0..5).map(|i| json!({"payload": i})).collect();
        invoke(
            &*bus,
            "publish",
            json!({"topic": "t", "messages": messages}),
        )
        .await;

        let polled = invoke(&*bus, "poll", json!({"topic": "t", "group": "g"})).await;
        assert_eq!(polled["records"].as_array().unwrap().len(), 2);
        assert_eq!(polled["next_offset"], 2);
        let replayed = invoke(&*bus, "replay", json!({"topic": "t", "max_records": 4})).await;
        assert_eq!(replayed["records"].as_array().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn an_invalid_config_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let factory = EmbeddedBusFactory::new(dir.path().to_path_buf());
        let err = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"default_max_records": 0}),
                client: None,
            })
            .await
            .err()
            .unwrap();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
    }

    #[tokio::test]
    async fn health_reports_the_log_up() {
        let dir = tempfile::tempdir().unwrap();
        let factory = EmbeddedBusFactory::new(dir.path().to_path_buf());
        let health = start(&factory, "acme", json!({})).await.health().await;
        assert_eq!(health.status, HealthStatus::Up);
        assert_eq!(health.dependencies[0].name, "log");
    }
}
