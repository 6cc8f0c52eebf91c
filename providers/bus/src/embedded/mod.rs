#![doc = include_str!("docs.md")]

mod config;
mod log;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
    to_result,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::OnceCell;

pub use config::EmbeddedBusConfig;
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
            descriptor: ProviderDescriptor {
                domain: "bus".into(),
                name: "embedded".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "Durable event log in one SQLite file per tenant: ordered topics, \
                          consumer groups, replay; no broker to run."
                    .into(),
                capabilities: ["ordering", "consumer_groups", "replay", "durable"]
                    .map(String::from)
                    .to_vec(),
                config_schema: config::schema(),
                actions: domains::actions("bus"),
            },
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
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = EmbeddedBusConfig::from_value(ctx.config)?;
        let log = self.log(&ctx.tenant).await?;
        Ok(Arc::new(EmbeddedBus { log, config }))
    }
}

/// One tenant's instance. Holds no state of its own besides the config, so stopping it
/// releases nothing: the log belongs to the factory and outlives instance swaps.
struct EmbeddedBus {
    log: Arc<Log>,
    config: EmbeddedBusConfig,
}

#[async_trait]
impl Provider for EmbeddedBus {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "publish" => to_result(self.publish(parse_params(call.params)?).await?),
            "poll" => to_result(self.poll(parse_params(call.params)?).await?),
            "commit" => to_result(self.commit(parse_params(call.params)?).await?),
            "replay" => to_result(self.replay(parse_params(call.params)?).await?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("bus/embedded has no action {other:?}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        let log = match self.log.ping().await {
            Ok(()) => DependencyHealth {
                name: "log".into(),
                status: HealthStatus::Up,
                detail: None,
            },
            Err(e) => DependencyHealth {
                name: "log".into(),
                status: HealthStatus::Down,
                detail: Some(e.detail),
            },
        };
        Health::from_dependencies(vec![log])
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishParams {
    topic: String,
    messages: Vec<MessageParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageParams {
    key: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    payload: Value,
}

#[derive(Serialize)]
struct Published {
    topic: String,
    offsets: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollParams {
    topic: String,
    group: String,
    offset: Option<u64>,
    max_records: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitParams {
    topic: String,
    group: String,
    offset: u64,
}

#[derive(Serialize)]
struct Committed {
    topic: String,
    group: String,
    committed: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayParams {
    topic: String,
    from_offset: Option<u64>,
    from_time: Option<String>,
    max_records: Option<u32>,
}

#[derive(Serialize)]
struct Records {
    records: Vec<RecordOut>,
    next_offset: i64,
}

#[derive(Serialize)]
struct RecordOut {
    offset: i64,
    key: Option<String>,
    headers: BTreeMap<String, String>,
    payload: Value,
    published_at: String,
}

impl EmbeddedBus {
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
        let start = match params.offset {
            Some(offset) => sql_offset(offset, "/offset")?,
            None => self.log.committed(&params.group, &params.topic).await?,
        };
        self.read(&params.topic, start, params.max_records).await
    }

    async fn commit(&self, params: CommitParams) -> Result<Committed, ProviderError> {
        let offset = sql_offset(params.offset, "/offset")?;
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
        let start = match (params.from_offset, params.from_time.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ProviderError::invalid_param(
                    "/from_time",
                    "give from_offset or from_time, not both",
                ));
            }
            (Some(offset), None) => sql_offset(offset, "/from_offset")?,
            (None, Some(time)) => {
                let at_ms = parse_time_ms(time)?;
                self.log.first_offset_at(&params.topic, at_ms).await?
            }
            (None, None) => 0,
        };
        self.read(&params.topic, start, params.max_records).await
    }

    /// The shared tail of poll and replay: read from `start` and say where to continue.
    async fn read(
        &self,
        topic: &str,
        start: i64,
        max_records: Option<u32>,
    ) -> Result<Records, ProviderError> {
        let limit = max_records.unwrap_or(self.config.default_max_records);
        let stored = self.log.read(topic, start, i64::from(limit)).await?;
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

/// SQLite integers are signed 64-bit; the contract's offsets are unbounded non-negative
/// integers. No topic can reach 2^63 records, so a larger offset is a caller error.
fn sql_offset(offset: u64, pointer: &str) -> Result<i64, ProviderError> {
    i64::try_from(offset)
        .map_err(|_| ProviderError::invalid_param(pointer, "offset must be below 2^63"))
}

/// `published_at` as RFC 3339 in UTC with exactly three fractional digits, so every record's
/// time has the same shape and sorts as text.
fn format_time_ms(ms: i64) -> Result<String, ProviderError> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| ProviderError::internal(format!("stored publish time {ms} invalid: {e}")))?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    ))
}

/// Parses a `from_time` to the first whole millisecond at or after it, the resolution
/// records are stamped with; any UTC offset is accepted.
fn parse_time_ms(text: &str) -> Result<i64, ProviderError> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        ProviderError::invalid_param("/from_time", format!("not an RFC 3339 date-time: {e}"))
    })?;
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000)
        + i128::from(t.unix_timestamp_nanos().rem_euclid(1_000_000) != 0);
    i64::try_from(ms).map_err(|_| ProviderError::invalid_param("/from_time", "time out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn start(factory: &EmbeddedBusFactory, tenant: &str, config: Value) -> Arc<dyn Provider> {
        factory
            .start(StartContext {
                tenant: TenantId::parse(tenant).unwrap(),
                config,
            })
            .await
            .unwrap()
    }

    async fn invoke(provider: &dyn Provider, action: &str, params: Value) -> Value {
        let ctx = CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "unit".into(),
            subject: None,
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

    #[test]
    fn times_round_trip_at_millisecond_resolution() {
        let text = format_time_ms(1_700_000_000_123).unwrap();
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_time_ms(&text).unwrap(), 1_700_000_000_123);
        assert_eq!(format_time_ms(0).unwrap(), "1970-01-01T00:00:00.000Z");
        // A finer time rounds up: the record stamped .123 was published before .1231.
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.1231Z").unwrap(),
            1_700_000_000_124
        );
        assert_eq!(
            parse_time_ms("2023-11-15T00:13:20.123+02:00").unwrap(),
            1_700_000_000_123
        );
        let err = parse_time_ms("yesterday").unwrap_err();
        assert_eq!(err.errors[0].pointer, "/from_time");
    }
}
