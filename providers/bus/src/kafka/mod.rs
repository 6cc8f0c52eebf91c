#![doc = include_str!("docs.md")]

mod client;
mod config;
mod env;
mod names;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;
use switchyard_spi::{
    ErrorCode, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};

use crate::config::{BusConfig, MAX_DELIVERIES};
use crate::contract::{
    CommitParams, Committed, PollParams, PublishParams, Published, RecordOut, Records, ReplayFrom,
    ReplayParams, dead_letter_headers, dead_letter_topic, format_time_ms, offset_param,
};
use client::{Cluster, Fetched, Outgoing};
pub use config::KafkaSettings;
pub(crate) use env::builtin;
use names::Names;

use crate::engine::{self as bus, Instance};

/// The header the engine appends to every record it produces, naming the publishing tenant
/// for consumers that read the topics with plain Kafka clients.
const TENANT_HEADER: &str = "tenant_id";
/// Bits of a packed delivery counter that hold the count (see [`pack_count`]).
const COUNT_BITS: u32 = 10;
/// Lock entries kept before unused ones are pruned (see [`Locks`]).
const LOCKS_KEPT: usize = 1024;

const _: () = assert!(MAX_DELIVERIES < 1 << COUNT_BITS);

/// The `bus/kafka` engine: every tenant's topics and groups on one Kafka cluster, isolated by
/// name prefix (ADR 0010).
pub struct KafkaFactory {
    descriptor: ProviderDescriptor,
    engine: Arc<Engine>,
}

/// What all tenants' instances share: the clients, and the in-process locks that order
/// publishes per topic and counted polls per group.
struct Engine {
    namespace: String,
    cluster: Cluster,
    /// Per Kafka topic: the timestamp of its last record as far as this process knows
    /// (`None`: not looked up yet). Holding the lock serialises this process's publishes to
    /// the topic, so a batch gets consecutive offsets and timestamps never go backwards.
    topics: Locks<String, Option<i64>>,
    /// Per (Kafka group, Kafka topic): serialises the read-modify-write of delivery counts.
    deliveries: Locks<(String, String), ()>,
}

impl KafkaFactory {
    /// An engine on the cluster of `settings`. Does not connect yet: a cluster that is down
    /// makes calls fail as retryable `provider_unavailable`, not the start. Fails (as
    /// `config_invalid`) only on settings that can never work.
    pub fn new(settings: KafkaSettings) -> Result<Self, ProviderError> {
        let namespace = settings.namespace.clone();
        let cluster = Cluster::new(settings)?;
        Ok(KafkaFactory {
            descriptor: bus::describe("kafka")
                .summary(
                    "Event log on a Kafka cluster: one single-partition topic per tenant \
                     topic, consumer-group offsets in Kafka, replay by offset or time.",
                )
                .capabilities(&["ordering", "consumer_groups", "replay", "durable"])
                .config::<BusConfig>()
                .build(),
            engine: Arc::new(Engine {
                namespace,
                cluster,
                topics: Locks::default(),
                deliveries: Locks::default(),
            }),
        })
    }
}

#[async_trait]
impl ProviderFactory for KafkaFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = BusConfig::from_value(ctx.config)?;
        Ok(Arc::new(Instance(KafkaBus {
            names: Names::new(&self.engine.namespace, &ctx.tenant),
            tenant: ctx.tenant,
            engine: self.engine.clone(),
            config,
        })))
    }
}

/// One tenant's instance: its names and config over the shared clients. Stopping it releases
/// nothing; the clients belong to the factory.
struct KafkaBus {
    engine: Arc<Engine>,
    tenant: TenantId,
    names: Names,
    config: BusConfig,
}

/// A record to publish, before it gets the engine's header.
struct NewRecord {
    key: Option<String>,
    headers: BTreeMap<String, String>,
    payload: Value,
}

#[async_trait]
impl bus::Engine for KafkaBus {
    const NAME: &'static str = "kafka";
    const DEPENDENCY: &'static str = "brokers";

    async fn publish(&self, params: PublishParams) -> Result<Published, ProviderError> {
        let records = params
            .messages
            .into_iter()
            .map(|m| NewRecord {
                key: m.key,
                headers: m.headers,
                payload: m.payload,
            })
            .collect();
        let offsets = self
            .produce(&self.names.topic(&params.topic), records)
            .await?;
        Ok(Published {
            topic: params.topic,
            offsets,
        })
    }

    async fn poll(&self, params: PollParams) -> Result<Records, ProviderError> {
        let limit = self.limit(params.max_records);
        let topic = self.names.topic(&params.topic);
        if let Some(offset) = params.offset {
            let start = offset_param(offset, "/offset")?;
            return records(start, self.engine.cluster.read(&topic, start, limit).await?);
        }
        let group = self.names.group(&params.group);
        match self.config.max_deliveries {
            None => {
                let committed = self.engine.cluster.committed(&group, &[&topic]).await?;
                let start = committed[0].unwrap_or(0);
                records(start, self.engine.cluster.read(&topic, start, limit).await?)
            }
            Some(max_deliveries) => {
                let dead_letters = self.names.topic(&dead_letter_topic(&params.topic)?);
                let counters = self.names.counters(&params.topic);
                let lock = self.engine.deliveries.get((group.clone(), topic.clone()))?;
                let _counting = lock.lock().await;
                let committed = self
                    .engine
                    .cluster
                    .committed(&group, &[&topic, &counters])
                    .await?;
                let mut start = committed[0].unwrap_or(0);
                let mut deliveries = committed[1].map_or(0, |packed| unpack_count(packed, start));
                let mut found = self.engine.cluster.read(&topic, start, limit).await?;
                let Some(head) = found.first() else {
                    return records(start, found);
                };
                // The group's position may point below the topic's first record (records
                // deleted by a retention set on the cluster): the head is what is there.
                if head.offset != start {
                    start = head.offset;
                    deliveries = 0;
                }
                // Created only now that there is something to count: polling an empty or
                // unknown topic leaves nothing behind on the cluster.
                self.engine.cluster.ensure_topic(&counters).await?;
                if deliveries >= i64::from(max_deliveries) {
                    let head = found.remove(0);
                    let dead = NewRecord {
                        key: head.key.clone(),
                        headers: dead_letter_headers(
                            contract_headers(head.headers),
                            &params.group,
                            head.offset,
                            max_deliveries,
                        ),
                        payload: payload(head.value),
                    };
                    // Written before the group moves: a failure in between leaves the group
                    // where it was, and the next poll writes the dead letter again (at least
                    // once, never lost).
                    self.produce(&dead_letters, vec![dead]).await?;
                    start += 1;
                    self.engine
                        .cluster
                        .commit(
                            &group,
                            &[(&topic, start), (&counters, pack_count(start, 0))],
                        )
                        .await?;
                    deliveries = 0;
                    found = self.engine.cluster.read(&topic, start, limit).await?;
                    if found.is_empty() {
                        return records(start, found);
                    }
                }
                self.engine
                    .cluster
                    .commit(&group, &[(&counters, pack_count(start, deliveries + 1))])
                    .await?;
                records(start, found)
            }
        }
    }

    async fn commit(&self, params: CommitParams) -> Result<Committed, ProviderError> {
        let offset = offset_param(params.offset, "/offset")?;
        let topic = self.names.topic(&params.topic);
        let (_, end) = self.engine.cluster.bounds(&topic).await?;
        if offset > end {
            return Err(ProviderError::new(
                ErrorCode::Conflict,
                format!(
                    "cannot commit offset {offset} on topic {:?}: its next unwritten offset is \
                     {end}, a group can commit at most that",
                    params.topic
                ),
            ));
        }
        // A topic without records has no position to store (Kafka would refuse a commit on a
        // topic that does not exist), and every group is at 0 on it anyway.
        if end > 0 {
            let group = self.names.group(&params.group);
            if self.config.max_deliveries.is_some() {
                let counters = self.names.counters(&params.topic);
                let lock = self.engine.deliveries.get((group.clone(), topic.clone()))?;
                let _counting = lock.lock().await;
                self.engine.cluster.ensure_topic(&counters).await?;
                self.engine
                    .cluster
                    .commit(
                        &group,
                        &[(&topic, offset), (&counters, pack_count(offset, 0))],
                    )
                    .await?;
            } else {
                self.engine
                    .cluster
                    .commit(&group, &[(&topic, offset)])
                    .await?;
            }
        }
        Ok(Committed {
            topic: params.topic,
            group: params.group,
            committed: offset,
        })
    }

    async fn replay(&self, params: ReplayParams) -> Result<Records, ProviderError> {
        let topic = self.names.topic(&params.topic);
        let start = match params.start()? {
            ReplayFrom::Offset(offset) => offset,
            ReplayFrom::TimeMs(at_ms) => self.engine.cluster.first_offset_at(&topic, at_ms).await?,
        };
        let limit = self.limit(params.max_records);
        records(start, self.engine.cluster.read(&topic, start, limit).await?)
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        self.engine.cluster.ping().await
    }
}

impl KafkaBus {
    /// Produces `records` to the Kafka topic `topic` (created if needed) under the topic's
    /// lock, all stamped with one time that is not before the topic's last record's.
    async fn produce(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
    ) -> Result<Vec<i64>, ProviderError> {
        let outgoing = records
            .into_iter()
            .map(|r| self.outgoing(r))
            .collect::<Result<Vec<_>, _>>()?;
        let state = self.engine.topics.get(topic.to_owned())?;
        let mut last_ms = state.lock().await;
        self.engine.cluster.ensure_topic(topic).await?;
        let last = match *last_ms {
            Some(ms) => ms,
            None => self.last_timestamp(topic).await?,
        };
        let at_ms = now_ms().max(last);
        // Stored before producing: even a failed publish may have written some records.
        *last_ms = Some(at_ms);
        self.engine.cluster.produce(topic, &outgoing, at_ms).await
    }

    /// The timestamp of the topic's last record, 0 when it has none. Read once per topic and
    /// process, so timestamps stay ordered across restarts of the gateway.
    async fn last_timestamp(&self, topic: &str) -> Result<i64, ProviderError> {
        let (first, end) = self.engine.cluster.bounds(topic).await?;
        if end <= first {
            return Ok(0);
        }
        let last = self.engine.cluster.read(topic, end - 1, 1).await?;
        Ok(last.first().map_or(0, |r| r.timestamp_ms))
    }

    fn outgoing(&self, record: NewRecord) -> Result<Outgoing, ProviderError> {
        let value = serde_json::to_vec(&record.payload)
            .map_err(|e| ProviderError::internal(format!("payload not serializable: {e}")))?;
        let mut headers: Vec<(String, String)> = record.headers.into_iter().collect();
        headers.push((TENANT_HEADER.into(), self.tenant.as_str().into()));
        Ok(Outgoing {
            key: record.key,
            headers,
            value,
        })
    }

    fn limit(&self, max_records: Option<u32>) -> i64 {
        i64::from(max_records.unwrap_or(self.config.default_max_records))
    }
}

/// The shared tail of poll and replay: the records read from `start`, and where to continue.
fn records(start: i64, fetched: Vec<Fetched>) -> Result<Records, ProviderError> {
    let next_offset = fetched.last().map_or(start, |r| r.offset + 1);
    let records = fetched
        .into_iter()
        .map(record_out)
        .collect::<Result<_, _>>()?;
    Ok(Records {
        records,
        next_offset,
    })
}

fn record_out(record: Fetched) -> Result<RecordOut, ProviderError> {
    Ok(RecordOut {
        offset: record.offset,
        key: record.key,
        headers: contract_headers(record.headers),
        payload: payload(record.value),
        published_at: format_time_ms(record.timestamp_ms)?,
    })
}

/// A record's headers as the contract shows them: the caller's, without the `tenant_id` header
/// the engine appended last (a caller's own `tenant_id`, earlier in the list, is kept). A name
/// that occurs twice — possible only in records written by other Kafka producers — keeps its
/// last value.
fn contract_headers(mut headers: Vec<(String, String)>) -> BTreeMap<String, String> {
    if headers
        .last()
        .is_some_and(|(name, _)| name == TENANT_HEADER)
    {
        headers.pop();
    }
    headers.into_iter().collect()
}

/// A record's value as its JSON payload. The engine writes JSON; a value some other producer
/// wrote that is not JSON is returned as a string, and a missing value as `null`.
fn payload(value: Option<Vec<u8>>) -> Value {
    match value {
        None => Value::Null,
        Some(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    }
}

/// A group's delivery count for the record at `position`, packed into one committed offset
/// (Kafka stores offsets, and tansu drops commit metadata): `position << 10 | count`. Keeping
/// the position makes a count taken at another position read as 0.
fn pack_count(position: i64, count: i64) -> i64 {
    position << COUNT_BITS | count
}

/// The count packed in `packed` if it was taken at `position`, else 0.
fn unpack_count(packed: i64, position: i64) -> i64 {
    if packed >> COUNT_BITS == position {
        packed & ((1 << COUNT_BITS) - 1)
    } else {
        0
    }
}

fn now_ms() -> i64 {
    // A clock before 1970 is a broken host; 0 keeps the log usable and ordered.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Async locks by key, created on first use. When more than [`LOCKS_KEPT`] exist, the ones no
/// call holds are dropped, so the map stays bounded by what is in use; a dropped topic entry
/// only costs one lookup of the topic's last timestamp.
struct Locks<K, V> {
    entries: Mutex<HashMap<K, Arc<tokio::sync::Mutex<V>>>>,
}

impl<K, V> Default for Locks<K, V> {
    fn default() -> Self {
        Locks {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Default> Locks<K, V> {
    fn get(&self, key: K) -> Result<Arc<tokio::sync::Mutex<V>>, ProviderError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| ProviderError::internal("a bus/kafka lock registry is poisoned"))?;
        if entries.len() > LOCKS_KEPT {
            entries.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Ok(entries.entry(key).or_default().clone())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use switchyard_spi::{CallContext, HealthStatus, Invocation};

    use super::*;

    #[test]
    fn the_engine_header_is_hidden_and_a_callers_own_kept() {
        let written = vec![
            ("source".to_owned(), "shop".to_owned()),
            ("tenant_id".to_owned(), "claimed".to_owned()),
            ("tenant_id".to_owned(), "acme".to_owned()),
        ];
        let shown = contract_headers(written);
        assert_eq!(
            shown,
            BTreeMap::from([
                ("source".to_owned(), "shop".to_owned()),
                ("tenant_id".to_owned(), "claimed".to_owned()),
            ])
        );
        assert!(contract_headers(vec![("tenant_id".into(), "acme".into())]).is_empty());
    }

    #[test]
    fn foreign_values_still_read_as_payloads() {
        assert_eq!(payload(Some(br#"{"a":1}"#.to_vec())), json!({"a": 1}));
        assert_eq!(payload(Some(b"not json".to_vec())), json!("not json"));
        assert_eq!(payload(None), Value::Null);
    }

    #[test]
    fn delivery_counts_belong_to_their_position() {
        let packed = pack_count(41, 3);
        assert_eq!(unpack_count(packed, 41), 3);
        assert_eq!(unpack_count(packed, 42), 0);
        assert_eq!(
            unpack_count(pack_count(7, i64::from(MAX_DELIVERIES)), 7),
            1000
        );
        assert_eq!(unpack_count(pack_count(0, 0), 0), 0);
    }

    #[test]
    fn unused_locks_are_pruned() {
        let locks: Locks<usize, ()> = Locks::default();
        let held = locks.get(0).unwrap();
        for key in 1..=LOCKS_KEPT + 1 {
            locks.get(key).unwrap();
        }
        let entries = locks.entries.lock().unwrap();
        assert!(entries.len() <= 2, "{} entries kept", entries.len());
        assert!(Arc::ptr_eq(&entries[&0], &held));
    }

    /// Nothing listens on port 1: every call must fail as retryable `provider_unavailable`
    /// within the timeout, and health must say down.
    #[tokio::test]
    async fn a_cluster_that_is_down_is_retryable_unavailable() {
        let factory = KafkaFactory::new(
            KafkaSettings::new("127.0.0.1:1").with_timeout(Duration::from_millis(500)),
        )
        .unwrap();
        let bus = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"max_deliveries": 2}),
                client: None,
            })
            .await
            .unwrap();
        let ctx = CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "unit".into(),
            subject: None,
            service: None,
        };
        for (action, params) in [
            (
                "publish",
                json!({"topic": "orders", "messages": [{"payload": 1}]}),
            ),
            ("poll", json!({"topic": "orders", "group": "billing"})),
            (
                "poll",
                json!({"topic": "orders", "group": "billing", "offset": 3}),
            ),
            (
                "commit",
                json!({"topic": "orders", "group": "billing", "offset": 1}),
            ),
            ("replay", json!({"topic": "orders"})),
            (
                "replay",
                json!({"topic": "orders", "from_time": "2024-01-01T00:00:00Z"}),
            ),
        ] {
            let call = Invocation {
                action: action.into(),
                params: params.clone(),
                payload: None,
            };
            let err = bus.invoke(&ctx, call).await.unwrap_err();
            assert_eq!(
                err.code,
                ErrorCode::ProviderUnavailable,
                "{action} {params}: {err:?}"
            );
            assert!(err.retryable, "{action}");
        }
        let health = bus.health().await;
        assert_eq!(health.status, HealthStatus::Down);
        assert_eq!(health.dependencies[0].name, "brokers");
    }

    #[test]
    fn settings_that_can_never_work_refuse_to_build_the_factory() {
        let err = KafkaFactory::new(KafkaSettings::new("")).err().unwrap();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
    }
}
