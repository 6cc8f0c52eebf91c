//! The engine's Kafka clients and the handful of operations the bus contract needs from them:
//! create a topic, produce with acknowledgements, read a range of offsets, find a topic's end,
//! read and commit a group's offsets.
//!
//! librdkafka's consumer calls block, so every one of them runs on tokio's blocking pool.
//! Reads use pooled consumers that are assigned a partition for one call and never join a
//! group; committing and reading a group's offsets needs a client whose `group.id` is that
//! group, so those are cached per group (never subscribed either: a poll must not move
//! anything, and Kafka's group membership would).
//!
//! Two choices are made for the Kafka-protocol broker the tests run on (tansu 0.6, see
//! `docs.md`): the producer sends one record per batch, and a topic's end is asked with
//! `ListOffsets(latest)` only, never found by time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_spi::{ErrorCode, ProviderError};

use super::config::KafkaSettings;

/// The only partition of every topic the engine creates: one partition is what makes a
/// topic's offsets a single dense sequence, as the contract promises.
const PARTITION: i32 = 0;
/// Idle read consumers kept for reuse. Each is a librdkafka client with its own threads and
/// connections; more than a few idle ones only cost memory on a 2-core host.
const IDLE_READERS: usize = 4;
/// Group clients kept. A poll or commit of a group whose client is not cached pays one client
/// start and a coordinator lookup (a few milliseconds).
const GROUP_CLIENTS: usize = 32;

/// A record to produce.
pub(crate) struct Outgoing {
    pub key: Option<String>,
    /// In order; Kafka headers are a list, and the engine relies on its own header being last.
    pub headers: Vec<(String, String)>,
    pub value: Vec<u8>,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fetched {
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `None` for a record without a value (a tombstone written by some other producer).
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
}

pub(crate) struct Cluster {
    settings: KafkaSettings,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    readers: Mutex<Vec<BaseConsumer>>,
    groups: Mutex<GroupClients>,
    /// Topics this process created or found existing; they are never deleted by the engine,
    /// so the answer does not go stale.
    known_topics: Mutex<HashSet<String>>,
}

#[derive(Default)]
struct GroupClients {
    clients: HashMap<String, (Arc<BaseConsumer>, u64)>,
    tick: u64,
}

impl Cluster {
    /// Creates the clients. librdkafka connects lazily, so this succeeds with the cluster down;
    /// it fails only on settings librdkafka rejects.
    pub(crate) fn new(settings: KafkaSettings) -> Result<Cluster, ProviderError> {
        settings.check()?;
        let timeout_ms = settings.timeout.as_millis().to_string();
        let producer: FutureProducer = base_config(&settings)
            // Acknowledged by every in-sync replica, without duplicates or reordering on retry.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // tansu 0.6 cannot fetch from an offset inside a multi-record batch, and answers
            // ListOffsets(latest) with the last batch's first offset + 1; with one record per
            // batch both are right. Real Kafka pays some throughput for it, not correctness.
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .set("message.timeout.ms", &timeout_ms)
            .create()
            .map_err(|e| client_error("the producer", e))?;
        let admin: AdminClient<DefaultClientContext> = base_config(&settings)
            .create()
            .map_err(|e| client_error("the admin client", e))?;
        Ok(Cluster {
            settings,
            producer,
            admin,
            readers: Mutex::new(Vec::new()),
            groups: Mutex::new(GroupClients::default()),
            known_topics: Mutex::new(HashSet::new()),
        })
    }

    /// Creates `topic` (one partition, records kept forever) unless it is known to exist.
    /// Kafka brokers need not create topics on first use (tansu never does), so the engine
    /// creates its own.
    pub(crate) async fn ensure_topic(&self, topic: &str) -> Result<(), ProviderError> {
        if lock(&self.known_topics)?.contains(topic) {
            return Ok(());
        }
        let new = NewTopic::new(
            topic,
            1,
            TopicReplication::Fixed(self.settings.replication_factor),
        )
        // The contract keeps records until they are deleted, and nothing deletes them yet.
        .set("retention.ms", "-1");
        let options = AdminOptions::new()
            .request_timeout(Some(self.settings.timeout))
            .operation_timeout(Some(self.settings.timeout));
        let results = self
            .admin
            .create_topics([&new], &options)
            .await
            .map_err(|e| kafka_error("creating a topic", &e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(kafka_error("creating a topic", &KafkaError::AdminOp(code)));
                }
            }
        }
        lock(&self.known_topics)?.insert(topic.to_owned());
        Ok(())
    }

    /// Produces `records` to the topic's partition, in order, all stamped `timestamp_ms`, and
    /// returns their offsets once every one is acknowledged. On an error some of the records
    /// may have been written: Kafka has no all-or-nothing append outside transactions.
    pub(crate) async fn produce(
        &self,
        topic: &str,
        records: &[Outgoing],
        timestamp_ms: i64,
    ) -> Result<Vec<i64>, ProviderError> {
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let headers =
                record
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |headers, (key, value)| {
                        headers.insert(Header {
                            key,
                            value: Some(value),
                        })
                    });
            let mut out = FutureRecord::<str, [u8]>::to(topic)
                .partition(PARTITION)
                .payload(&record.value)
                .headers(headers)
                .timestamp(timestamp_ms);
            if let Some(key) = &record.key {
                out = out.key(key.as_str());
            }
            // Enqueueing copies the record; only the acknowledgement is awaited below.
            let delivery = self
                .producer
                .send_result(out)
                .map_err(|(e, _)| produce_error(&e))?;
            pending.push(delivery);
        }
        let mut offsets = Vec::with_capacity(pending.len());
        for delivery in pending {
            match delivery.await {
                Ok(Ok(delivered)) => offsets.push(delivered.offset),
                Ok(Err((e, _))) => return Err(produce_error(&e)),
                Err(_) => {
                    return Err(ProviderError::unavailable(
                        "the Kafka producer shut down before acknowledging a record; retry",
                    ));
                }
            }
        }
        Ok(offsets)
    }

    /// The topic's first and next offsets (Kafka's low and high watermarks); `(0, 0)` for a
    /// topic that does not exist.
    pub(crate) async fn bounds(&self, topic: &str) -> Result<(i64, i64), ProviderError> {
        let topic = topic.to_owned();
        self.with_reader(move |reader, timeout| watermarks(reader, &topic, timeout))
            .await
    }

    /// Up to `limit` records from offset `start` on, in offset order; none when `start` is at
    /// or past the end. Records below the topic's first offset no longer exist (deleted by a
    /// retention someone set on the cluster), so a read from before it starts at it.
    pub(crate) async fn read(
        &self,
        topic: &str,
        start: i64,
        limit: i64,
    ) -> Result<Vec<Fetched>, ProviderError> {
        let topic = topic.to_owned();
        self.with_reader(move |reader, timeout| {
            let (first, end) = watermarks(reader, &topic, timeout)?;
            read_range(reader, &topic, start.max(first), end, limit, timeout)
        })
        .await
    }

    /// The offset of the first record stamped at or after `at_ms`; the topic's end when there
    /// is none. A binary search over record timestamps, which the engine keeps non-decreasing
    /// within a topic: tansu 0.6 answers every `ListOffsets` by time with offset 0.
    pub(crate) async fn first_offset_at(
        &self,
        topic: &str,
        at_ms: i64,
    ) -> Result<i64, ProviderError> {
        let topic = topic.to_owned();
        self.with_reader(move |reader, timeout| {
            let (mut low, mut high) = watermarks(reader, &topic, timeout)?;
            let end = high;
            while low < high {
                let mid = low + (high - low) / 2;
                let found = read_range(reader, &topic, mid, end, 1, timeout)?;
                match found.first() {
                    Some(record) if record.timestamp_ms < at_ms => low = record.offset + 1,
                    Some(_) => high = mid,
                    None => {
                        return Err(ProviderError::unavailable(format!(
                            "offset {mid} of a topic ending at {end} could not be read; retry"
                        )));
                    }
                }
            }
            Ok(low)
        })
        .await
    }

    /// The offsets `group` committed on each of `topics` (partition 0), `None` where it never
    /// committed.
    pub(crate) async fn committed(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Vec<Option<i64>>, ProviderError> {
        let mut wanted = TopicPartitionList::new();
        for topic in topics {
            wanted.add_partition(topic, PARTITION);
        }
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        self.with_group(group, move |client, timeout| {
            let found = client
                .committed_offsets(wanted, timeout)
                .map_err(|e| kafka_error("reading a group's committed offsets", &e))?;
            topics
                .iter()
                .map(|topic| {
                    let element = found.find_partition(topic, PARTITION).ok_or_else(|| {
                        ProviderError::unavailable(format!(
                            "the cluster did not answer for a group's offset on {topic}; retry"
                        ))
                    })?;
                    match element.error() {
                        // Kafka answers this way for a topic that does not exist (yet): the
                        // group has no position on it.
                        Err(e)
                            if e.rdkafka_error_code()
                                == Some(RDKafkaErrorCode::UnknownTopicOrPartition) =>
                        {
                            return Ok(None);
                        }
                        Err(e) => {
                            return Err(kafka_error("reading a group's committed offset", &e));
                        }
                        Ok(()) => {}
                    }
                    Ok(match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    })
                })
                .collect()
        })
        .await
    }

    /// Commits `offsets` (topic, next offset) for `group` in one request, which Kafka applies
    /// to all of them or none.
    pub(crate) async fn commit(
        &self,
        group: &str,
        offsets: &[(&str, i64)],
    ) -> Result<(), ProviderError> {
        let mut list = TopicPartitionList::new();
        for (topic, offset) in offsets {
            list.add_partition_offset(topic, PARTITION, Offset::Offset(*offset))
                .map_err(|e| kafka_error("preparing a commit", &e))?;
        }
        self.with_group(group, move |client, _| {
            client
                .commit(&list, CommitMode::Sync)
                .map_err(|e| kafka_error("committing a group's offset", &e))
        })
        .await
    }

    /// Whether the cluster answers a metadata request; used by health.
    pub(crate) async fn ping(&self) -> Result<(), ProviderError> {
        // A named topic keeps the request small on a cluster with many topics; it need not
        // exist, and asking does not create it (consumers never auto-create).
        let probe = format!("{}._health", self.settings.namespace);
        self.with_reader(move |reader, timeout| {
            reader
                .fetch_metadata(Some(&probe), timeout)
                .map(drop)
                .map_err(|e| kafka_error("asking for metadata", &e))
        })
        .await
    }

    /// Runs `op` on a pooled read consumer on the blocking pool. A consumer whose call failed
    /// is dropped rather than pooled: its assignment and fetch state are unknown.
    async fn with_reader<T, F>(&self, op: F) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce(&BaseConsumer, Duration) -> Result<T, ProviderError> + Send + 'static,
    {
        let pooled = lock(&self.readers)?.pop();
        let reader = match pooled {
            Some(reader) => reader,
            None => reader_config(&self.settings)
                .create::<BaseConsumer>()
                .map_err(|e| client_error("a consumer", e))?,
        };
        let timeout = self.settings.timeout;
        let (reader, result) = tokio::task::spawn_blocking(move || {
            let result = op(&reader, timeout);
            (reader, result)
        })
        .await
        .map_err(|e| ProviderError::internal(format!("a Kafka read task failed: {e}")))?;
        if result.is_ok() {
            let mut idle = lock(&self.readers)?;
            if idle.len() < IDLE_READERS {
                idle.push(reader);
                return result;
            }
        }
        // Closing a consumer waits for its threads: not on the async workers.
        tokio::task::spawn_blocking(move || drop(reader));
        result
    }

    /// Runs `op` on the cached client of Kafka group `group` on the blocking pool.
    async fn with_group<T, F>(&self, group: &str, op: F) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce(&BaseConsumer, Duration) -> Result<T, ProviderError> + Send + 'static,
    {
        let (client, evicted) = self.group_client(group)?;
        let timeout = self.settings.timeout;
        tokio::task::spawn_blocking(move || {
            drop(evicted);
            op(&client, timeout)
        })
        .await
        .map_err(|e| ProviderError::internal(format!("a Kafka group task failed: {e}")))?
    }

    /// The cached client of `group`, creating it if needed; when the cache is full, the least
    /// recently used client is evicted and returned so the caller drops it off the async
    /// workers.
    fn group_client(
        &self,
        group: &str,
    ) -> Result<(Arc<BaseConsumer>, Option<Arc<BaseConsumer>>), ProviderError> {
        let mut cache = lock(&self.groups)?;
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((client, used)) = cache.clients.get_mut(group) {
            *used = tick;
            return Ok((client.clone(), None));
        }
        let client: BaseConsumer = base_config(&self.settings)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| client_error("a group client", e))?;
        let client = Arc::new(client);
        let mut evicted = None;
        if cache.clients.len() >= GROUP_CLIENTS {
            let oldest = cache
                .clients
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone());
            evicted = oldest
                .and_then(|name| cache.clients.remove(&name))
                .map(|(client, _)| client);
        }
        cache
            .clients
            .insert(group.to_owned(), (client.clone(), tick));
        Ok((client, evicted))
    }
}

fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", "switchyard-bus")
        .set(
            "socket.timeout.ms",
            settings.timeout.as_millis().max(10).to_string(),
        )
        // librdkafka's own log lines would go to stderr; errors reach callers as ProviderErrors.
        .set("log_level", "3");
    config
}

fn reader_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = base_config(settings);
    config
        // librdkafka refuses `assign` without a group id. This one never joins or commits;
        // `_` cannot occur in a tenant id, so it is no tenant's group.
        .set("group.id", format!("{}._reader", settings.namespace))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // Never jump elsewhere when an offset is out of range: report it.
        .set("auto.offset.reset", "error")
        // A fetch at the end returns after this long instead of Kafka's 500 ms default.
        .set("fetch.wait.max.ms", "10")
        // Prefetch less than the 64 MiB default: a call reads at most 1000 records.
        .set("queued.max.messages.kbytes", "8192");
    config
}

/// Low and high watermarks of the topic's partition; `(0, 0)` when the topic does not exist.
///
/// A pooled reader that once found the topic missing keeps that in its metadata cache (for
/// `topic.metadata.refresh.interval.ms`, 5 minutes), so a topic created since would read as
/// empty: on "unknown", the reader asks the broker for the topic's metadata and tries again.
fn watermarks(
    reader: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<(i64, i64), ProviderError> {
    let unknown = |e: &KafkaError| {
        matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnknownPartition | RDKafkaErrorCode::UnknownTopicOrPartition)
        )
    };
    match reader.fetch_watermarks(topic, PARTITION, timeout) {
        Ok(bounds) => Ok(bounds),
        Err(e) if unknown(&e) => {
            reader
                .fetch_metadata(Some(topic), timeout)
                .map_err(|e| kafka_error("reading a topic's metadata", &e))?;
            match reader.fetch_watermarks(topic, PARTITION, timeout) {
                Ok(bounds) => Ok(bounds),
                Err(e) if unknown(&e) => Ok((0, 0)),
                Err(e) => Err(kafka_error("reading a topic's end", &e)),
            }
        }
        Err(e) => Err(kafka_error("reading a topic's end", &e)),
    }
}

/// Reads up to `limit` records in `[start, end)`: assigns the partition at `start`, polls until
/// enough records arrived or the partition's end is reported, and unassigns.
fn read_range(
    reader: &BaseConsumer,
    topic: &str,
    start: i64,
    end: i64,
    limit: i64,
    timeout: Duration,
) -> Result<Vec<Fetched>, ProviderError> {
    let wanted = usize::try_from((end - start).min(limit)).unwrap_or(0);
    if wanted == 0 {
        return Ok(Vec::new());
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, PARTITION, Offset::Offset(start))
        .map_err(|e| kafka_error("preparing a read", &e))?;
    reader
        .assign(&assignment)
        .map_err(|e| kafka_error("starting a read", &e))?;
    let deadline = Instant::now() + timeout;
    let mut records = Vec::with_capacity(wanted);
    let mut next = start;
    let outcome = loop {
        if records.len() >= wanted {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(ProviderError::unavailable(format!(
                "reading from the Kafka cluster took longer than {timeout:?}; retry"
            )));
        }
        match reader.poll(left) {
            None => {}
            // Anything below `next` is left over from an earlier fetch position.
            Some(Ok(message)) if message.topic() == topic && message.offset() >= next => {
                next = message.offset() + 1;
                records.push(fetched(&message));
            }
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(_))) => break Ok(()),
            Some(Err(e)) => break Err(kafka_error("reading records", &e)),
        }
    };
    let unassigned = reader
        .unassign()
        .map_err(|e| kafka_error("ending a read", &e));
    outcome.and(unassigned).map(|()| records)
}

fn fetched<M: Message>(message: &M) -> Fetched {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                    (h.key.to_owned(), value.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    Fetched {
        offset: message.offset(),
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        headers,
        value: message.payload().map(<[u8]>::to_vec),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, ProviderError> {
    mutex
        .lock()
        .map_err(|_| ProviderError::internal("a bus/kafka registry is poisoned"))
}

fn client_error(what: &str, error: KafkaError) -> ProviderError {
    tracing::error!(error = %error, "cannot create {what} for bus/kafka");
    ProviderError::new(
        ErrorCode::ConfigInvalid,
        format!("bus/kafka cannot create {what}: {error}"),
    )
}

/// Errors of a produce: a record the broker refuses for its size is the caller's to fix;
/// everything else is [`kafka_error`].
fn produce_error(error: &KafkaError) -> ProviderError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => ProviderError::invalid_param(
            "/messages",
            format!("a message is larger than the Kafka cluster accepts: {error}"),
        ),
        _ => kafka_error("producing records", error),
    }
}

/// Maps a Kafka failure to the contract. Refused credentials or permissions are a deployment
/// problem (internal, not retryable, logged as an error); a topic name Kafka rejects is a
/// conflict (Kafka treats `.` and `_` as the same character when it compares topic names);
/// anything else — a broker down or slow, a leader moving, a timeout — is retryable
/// `provider_unavailable`.
fn kafka_error(doing: &str, error: &KafkaError) -> ProviderError {
    use RDKafkaErrorCode as Code;
    match error.rdkafka_error_code() {
        Some(
            Code::TopicAuthorizationFailed
            | Code::GroupAuthorizationFailed
            | Code::ClusterAuthorizationFailed
            | Code::SaslAuthenticationFailed
            | Code::Authentication,
        ) => {
            tracing::error!(error = %error, "bus/kafka refused while {doing}");
            ProviderError::internal(format!(
                "the Kafka cluster refused the engine while {doing}: {error}"
            ))
        }
        Some(Code::InvalidTopic) => ProviderError::new(
            ErrorCode::Conflict,
            format!(
                "the Kafka cluster refused the topic while {doing} (a topic whose name differs \
                 only by '.' versus '_' may exist): {error}"
            ),
        ),
        _ => {
            tracing::warn!(error = %error, "bus/kafka unavailable while {doing}");
            ProviderError::unavailable(format!(
                "the Kafka cluster failed while {doing}: {error}; retry"
            ))
        }
    }
}
