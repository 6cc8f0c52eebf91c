//! `cache/redis`: the cache engine backed by a Redis server, so every gateway process sees the
//! same keys and they survive a gateway restart.

mod config;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, Script, cmd};
use serde_json::Value;
use switchyard_contracts::SchemaError;
use switchyard_spi::{
    ErrorCode, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext,
    parse_config,
};
use tokio::sync::OnceCell;

pub use config::RedisCacheConfig;

use crate::contract::{
    DeletePrefixResult, DeleteResult, Entry, IncrParams, IncrResult, KeyParams, MgetParams,
    MgetResult, MsetParams, MsetResult, PrefixParams, SetParams, SetResult,
};
use crate::engine::{Engine, Instance, describe};

/// The namespace production keys live under: `sy:{<tenant>}:<key>`.
const DEFAULT_NAMESPACE: &str = "sy";

/// Longest any one Redis round trip (or connection attempt) may take before the call fails as
/// unavailable: a stalled Redis must not hold gateway requests indefinitely.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Keys examined per `SCAN` step of `delete_prefix`, and so the most unlinked at once: large
/// enough to make few round trips, small enough not to block Redis noticeably.
const SCAN_COUNT: usize = 1000;

/// `incr` in one atomic step: `INCRBY`, then the TTL — the call's own, or the tenant's default
/// when the key was just created, so counting never extends or drops an existing deadline.
/// Errors come back as `CONFLICT <reason>` (not an integer, overflow); nothing was written then.
/// The result is read back with `GET` because Lua numbers are doubles and would round large
/// counters.
const INCR_SCRIPT: &str = r"
local created = redis.call('EXISTS', KEYS[1]) == 0
local counted = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(counted) == 'table' and counted.err then
  return redis.error_reply('CONFLICT ' .. string.gsub(counted.err, '^ERR ', ''))
end
local ttl = ARGV[2]
if ttl == '' and created then ttl = ARGV[3] end
if ttl ~= '' then redis.call('PEXPIRE', KEYS[1], ttl) end
return redis.call('GET', KEYS[1])
";

/// Owns the one connection every tenant's instance shares, so reconfiguring a tenant (a new
/// instance) reuses it and loses no key.
pub struct RedisCacheFactory {
    descriptor: ProviderDescriptor,
    redis: Arc<SharedRedis>,
}

impl RedisCacheFactory {
    /// `url` is the platform's Redis URL (`redis://[[user]:password@]host[:port][/db]`).
    /// Nothing connects here: the connection is made on the first call and remade by itself
    /// after a loss, so a Redis that is down at boot only makes calls fail until it is back.
    pub fn new(url: String) -> Self {
        Self::with_namespace(url, DEFAULT_NAMESPACE.to_owned())
    }

    /// Like [`RedisCacheFactory::new`], with keys under `<namespace>:{<tenant>}:` instead of
    /// `sy:`, so several deployments (or test runs) can share one Redis without seeing each
    /// other's keys. The namespace must not contain `{`, which would move the hash tag.
    pub fn with_namespace(url: String, namespace: String) -> Self {
        RedisCacheFactory {
            descriptor: describe("redis")
                .summary("Redis-backed cache with per-key TTL, shared by every gateway process.")
                .capabilities(&["ttl", "atomic_incr", "shared"])
                .config::<RedisCacheConfig>()
                .build(),
            redis: Arc::new(SharedRedis {
                url,
                namespace,
                manager: OnceCell::new(),
                incr: Script::new(INCR_SCRIPT),
            }),
        }
    }
}

#[async_trait]
impl ProviderFactory for RedisCacheFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config: RedisCacheConfig = parse_config(ctx.config)?;
        Ok(Arc::new(Instance(RedisCache {
            key_prefix: format!("{}:{{{}}}:", self.redis.namespace, ctx.tenant),
            config,
            redis: self.redis.clone(),
        })))
    }
}

/// What the factory shares with every instance.
struct SharedRedis {
    url: String,
    namespace: String,
    /// Empty until the first successful connect; a failed attempt leaves it empty so the next
    /// call tries again.
    manager: OnceCell<ConnectionManager>,
    incr: Script,
}

impl SharedRedis {
    async fn connection(&self) -> Result<ConnectionManager, ProviderError> {
        let manager = self
            .manager
            .get_or_try_init(|| bounded("connecting", self.connect()))
            .await?;
        Ok(manager.clone())
    }

    async fn connect(&self) -> RedisResult<ConnectionManager> {
        let client = redis::Client::open(self.url.as_str())?;
        // No retries: a backoff would spend the caller's time budget sleeping (a refused
        // connection answers at once instead), and the manager reconnects on the next call.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(0);
        ConnectionManager::new_with_config(client, config).await
    }

    async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, ProviderError> {
        let mut connection = self.connection().await?;
        bounded("answering", command.query_async(&mut connection)).await
    }
}

/// Runs one Redis operation within [`TIMEOUT`]; running out of time is `provider_unavailable`,
/// what Redis answered is left to the caller.
async fn timed<T>(
    stage: &str,
    operation: impl Future<Output = RedisResult<T>>,
) -> Result<RedisResult<T>, ProviderError> {
    tokio::time::timeout(TIMEOUT, operation).await.map_err(|_| {
        ProviderError::unavailable(format!(
            "redis timed out {stage} (limit {} ms)",
            TIMEOUT.as_millis()
        ))
    })
}

/// Runs one Redis operation within [`TIMEOUT`], with its failure mapped to a contract error.
async fn bounded<T>(
    stage: &str,
    operation: impl Future<Output = RedisResult<T>>,
) -> Result<T, ProviderError> {
    timed(stage, operation).await?.map_err(provider_error)
}

/// Failures of Redis itself (unreachable, loading, out of memory, failing over) are
/// `provider_unavailable` and worth retrying; a URL or credentials Redis refuses will not heal
/// by retrying; anything else is a bug here, so `internal`.
fn provider_error(e: RedisError) -> ProviderError {
    let detail = format!("redis: {e}");
    let transient = e.is_io_error()
        || e.code() == Some("OOM")
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
        );
    if transient {
        ProviderError::unavailable(detail)
    } else if matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    ) {
        ProviderError::unavailable(detail).with_retryable(false)
    } else {
        ProviderError::internal(detail)
    }
}

/// Escapes the characters `SCAN MATCH` treats as a glob, so a prefix matches only itself.
fn glob_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

struct RedisCache {
    /// `<namespace>:{<tenant>}:`: every key of this tenant starts with it, and the braces keep
    /// all of them on one Redis Cluster slot.
    key_prefix: String,
    config: RedisCacheConfig,
    redis: Arc<SharedRedis>,
}

impl RedisCache {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    fn ttl(&self, ttl_ms: Option<u64>) -> Option<u64> {
        ttl_ms.or(self.config.default_ttl_ms)
    }

    /// The value as the JSON text stored in Redis, refused when over the tenant's limit.
    fn encode(&self, pointer: &str, value: &Value) -> Result<String, ProviderError> {
        let text = serde_json::to_string(value)
            .map_err(|e| ProviderError::internal(format!("value not serializable: {e}")))?;
        if text.len() > self.config.max_value_bytes {
            let detail = format!(
                "value is {} bytes; this tenant's limit is {}",
                text.len(),
                self.config.max_value_bytes
            );
            return Err(ProviderError::field(
                ErrorCode::PayloadTooLarge,
                pointer,
                detail,
            ));
        }
        Ok(text)
    }

    /// One contract entry from what Redis holds under the key.
    fn entry(key: String, stored: Option<String>) -> Result<Entry, ProviderError> {
        match stored {
            None => Ok(Entry::missing(key)),
            Some(text) => {
                let value: Value = serde_json::from_str(&text).map_err(|e| {
                    ProviderError::internal(format!(
                        "the value under {key} is not JSON text (written outside cache/redis?): {e}"
                    ))
                })?;
                Ok(Entry::found(key, value))
            }
        }
    }

    fn set_command(&self, key: &str, text: String, ttl_ms: Option<u64>) -> Cmd {
        let mut command = cmd("SET");
        command.arg(self.key(key)).arg(text);
        if let Some(ms) = self.ttl(ttl_ms) {
            command.arg("PX").arg(ms);
        }
        command
    }

    async fn set(&self, p: SetParams) -> Result<SetResult, ProviderError> {
        let text = self.encode("/value", &p.value)?;
        self.redis
            .query::<()>(&self.set_command(&p.key, text, p.ttl_ms))
            .await?;
        Ok(SetResult { key: p.key })
    }

    async fn mset(&self, p: MsetParams) -> Result<MsetResult, ProviderError> {
        // Encode (and so size-check) every value first so a refused batch stores nothing.
        let mut texts = Vec::with_capacity(p.entries.len());
        for (i, entry) in p.entries.iter().enumerate() {
            texts.push(self.encode(&format!("/entries/{i}/value"), &entry.value)?);
        }
        // MULTI/EXEC: other clients see all of the batch or none of it.
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for (entry, text) in p.entries.iter().zip(texts) {
            pipeline
                .add_command(self.set_command(&entry.key, text, entry.ttl_ms))
                .ignore();
        }
        let mut connection = self.redis.connection().await?;
        bounded("answering", pipeline.query_async::<()>(&mut connection)).await?;
        Ok(MsetResult {
            stored: p.entries.len(),
        })
    }

    async fn incr(&self, p: IncrParams) -> Result<IncrResult, ProviderError> {
        let optional = |ttl: Option<u64>| ttl.map(|ms| ms.to_string()).unwrap_or_default();
        let mut invocation = self.redis.incr.key(self.key(&p.key));
        invocation
            .arg(p.by)
            .arg(optional(p.ttl_ms))
            .arg(optional(self.config.default_ttl_ms));
        let mut connection = self.redis.connection().await?;
        let text = match timed(
            "answering",
            invocation.invoke_async::<String>(&mut connection),
        )
        .await?
        {
            Ok(text) => text,
            Err(e) if e.code() == Some("CONFLICT") => {
                let reason = e.detail().unwrap_or("the value cannot be incremented");
                return Err(ProviderError::new(
                    ErrorCode::Conflict,
                    format!("cannot increment {}: {reason}", p.key),
                ));
            }
            Err(e) => return Err(provider_error(e)),
        };
        let value: i64 = text.parse().map_err(|e| {
            ProviderError::internal(format!("redis answered incr with a non-integer: {e}"))
        })?;
        Ok(IncrResult { key: p.key, value })
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<DeletePrefixResult, ProviderError> {
        let pattern = format!("{}*", glob_literal(&self.key(prefix)));
        let mut cursor = 0u64;
        let mut deleted = 0u64;
        loop {
            let mut scan = cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<String>) = self.redis.query(&scan).await?;
            if !keys.is_empty() {
                // UNLINK frees memory off the main thread; it counts only keys that still
                // existed, so a key SCAN returns twice is counted once.
                let removed: u64 = self.redis.query(cmd("UNLINK").arg(&keys)).await?;
                deleted += removed;
            }
            if next == 0 {
                return Ok(DeletePrefixResult { deleted });
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl Engine for RedisCache {
    const NAME: &'static str = "redis";

    async fn get(&self, p: KeyParams) -> Result<Entry, ProviderError> {
        let stored = self.redis.query(cmd("GET").arg(self.key(&p.key))).await?;
        Self::entry(p.key, stored)
    }

    async fn set(&self, p: SetParams) -> Result<SetResult, ProviderError> {
        RedisCache::set(self, p).await
    }

    async fn delete(&self, p: KeyParams) -> Result<DeleteResult, ProviderError> {
        let removed: u64 = self.redis.query(cmd("DEL").arg(self.key(&p.key))).await?;
        Ok(DeleteResult {
            deleted: removed > 0,
        })
    }

    async fn mget(&self, p: MgetParams) -> Result<MgetResult, ProviderError> {
        let keys: Vec<String> = p.keys.iter().map(|k| self.key(k)).collect();
        let stored: Vec<Option<String>> = self.redis.query(cmd("MGET").arg(keys)).await?;
        let entries = p
            .keys
            .into_iter()
            .zip(stored)
            .map(|(key, stored)| Self::entry(key, stored))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MgetResult { entries })
    }

    async fn mset(&self, p: MsetParams) -> Result<MsetResult, ProviderError> {
        RedisCache::mset(self, p).await
    }

    async fn incr(&self, p: IncrParams) -> Result<IncrResult, ProviderError> {
        RedisCache::incr(self, p).await
    }

    async fn delete_prefix(&self, p: PrefixParams) -> Result<DeletePrefixResult, ProviderError> {
        RedisCache::delete_prefix(self, &p.prefix).await
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        self.redis.query::<String>(&cmd("PING")).await?;
        Ok(None)
    }
}

/// Hosted when `SWITCHYARD_REDIS_URL` names the platform's Redis.
pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(std::env::var("SWITCHYARD_REDIS_URL")
        .ok()
        .map(|url| Arc::new(RedisCacheFactory::new(url)) as Arc<dyn ProviderFactory>))
}
