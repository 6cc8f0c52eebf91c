//! `cache/memory`: the embedded default cache engine.

mod config;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use serde_json::Value;
use switchyard_contracts::SchemaError;
use switchyard_spi::tenancy::Quotas;
use switchyard_spi::{
    ErrorCode, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext,
    TenantId, parse_config,
};

use crate::contract::{
    DeletePrefixResult, DeleteResult, Entry, IncrParams, IncrResult, KeyParams, MgetParams,
    MgetResult, MsetParams, MsetResult, PrefixParams, SetParams, SetResult,
};
use crate::engine::{Engine, Instance, describe};

pub use config::MemoryCacheConfig;

/// What an entry costs besides its key and value text: moka's node, the key's and the
/// value's heap headers, the deadline. An estimate, so that a flood of empty values is
/// bounded by the tenant's quota like a flood of large ones.
const ENTRY_OVERHEAD: u64 = 128;

#[derive(Clone)]
struct Stored {
    /// The value as JSON text. Text costs one byte per byte, where a parsed `Value` costs
    /// several (32 bytes per array element), so what the tenant is charged is what it holds.
    text: Arc<str>,
    expires_at: Option<Instant>,
}

impl Stored {
    fn value(&self) -> Result<Value, ProviderError> {
        serde_json::from_str(&self.text)
            .map_err(|e| ProviderError::internal(format!("a stored value is not JSON: {e}")))
    }
}

/// What an entry is charged against its tenant's quota, for a value text of `text_len` bytes.
fn weight(key: &str, text_len: usize) -> u64 {
    key.len() as u64 + text_len as u64 + ENTRY_OVERHEAD
}

/// The length of a value's JSON text, measured without building it: a refused value costs no
/// copy of itself.
fn text_len(value: &Value) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Each entry expires at its own deadline, fixed when written; an `incr` without a TTL keeps it.
struct Deadline;

impl Expiry<String, Stored> for Deadline {
    fn expire_after_create(&self, _: &String, value: &Stored, now: Instant) -> Option<Duration> {
        value.expires_at.map(|at| at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Stored,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        value.expires_at.map(|at| at.saturating_duration_since(now))
    }
}

/// One tenant's entries. A cache per tenant, weighed in bytes, so that one tenant's writes
/// can never displace another tenant's entries, and its health can count its own.
struct TenantCache {
    entries: Cache<String, Stored>,
    /// The tenant's quota in bytes.
    quota: u64,
    /// Serialises the tenant's writes, so that "does it fit?" and "store it" happen with no
    /// other write of the tenant in between and the quota is never overrun.
    writes: tokio::sync::Mutex<()>,
}

impl TenantCache {
    fn new(quota: u64) -> Self {
        TenantCache {
            entries: Cache::builder()
                .weigher(|key: &String, stored: &Stored| {
                    u32::try_from(weight(key, stored.text.len())).unwrap_or(u32::MAX)
                })
                // The admission check below refuses first; moka's own bound at the same
                // figure only matters if an entry's weight were misjudged.
                .max_capacity(quota)
                .expire_after(Deadline)
                .build(),
            quota,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// The bytes the tenant holds now. Moka applies writes and expiries lazily; running its
    /// pending tasks first makes the figure exact (under the write lock, nothing adds to it).
    async fn used(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.weighted_size()
    }

    /// Refuses a write that would take the tenant past its quota: `writes` are the keys and
    /// the lengths of the value texts about to be stored (a key given twice is charged once,
    /// last value wins). Call with the write lock held.
    async fn admit(&self, writes: &[(&str, usize)]) -> Result<(), ProviderError> {
        let mut new: HashMap<&str, u64> = HashMap::new();
        for (key, text_len) in writes {
            new.insert(key, weight(key, *text_len));
        }
        let mut used = self.used().await;
        for key in new.keys() {
            if let Some(old) = self.entries.get(*key).await {
                used = used.saturating_sub(weight(key, old.text.len()));
            }
        }
        let needed = used.saturating_add(new.values().sum());
        if needed > self.quota {
            return Err(ProviderError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "this write would hold {needed} bytes in cache/memory; the tenant's quota is \
                     {} bytes: delete keys, or set TTLs so they expire",
                    self.quota
                ),
            ));
        }
        Ok(())
    }
}

/// Owns every tenant's cache, so a reconfigured tenant keeps its keys.
pub struct MemoryCacheFactory {
    descriptor: ProviderDescriptor,
    /// The operator's per-tenant byte quota.
    quota: u64,
    /// The operator's largest value, which a tenant's `max_value_bytes` may only lower.
    max_value_bytes: usize,
    tenants: Mutex<HashMap<TenantId, Arc<TenantCache>>>,
}

impl Default for MemoryCacheFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCacheFactory {
    /// The engine under the default quotas (`Quotas::default()`).
    pub fn new() -> Self {
        MemoryCacheFactory {
            descriptor: describe("memory")
                .summary("In-process cache with per-key TTL; the embedded default.")
                .capabilities(&["ttl", "atomic_incr"])
                .config::<MemoryCacheConfig>()
                .build(),
            quota: 0,
            max_value_bytes: 0,
            tenants: Mutex::default(),
        }
        .with_quotas(&Quotas::default())
    }

    /// Holds every tenant to the operator's `cache_bytes_per_tenant` and
    /// `cache_max_value_bytes`.
    pub fn with_quotas(mut self, quotas: &Quotas) -> Self {
        self.quota = quotas.cache_bytes_per_tenant.get();
        self.max_value_bytes =
            usize::try_from(quotas.cache_max_value_bytes.get()).unwrap_or(usize::MAX);
        config::publish_ceiling(
            &mut self.descriptor.config_schema,
            quotas.cache_max_value_bytes.get(),
        );
        self
    }

    fn tenant_cache(&self, tenant: &TenantId) -> Arc<TenantCache> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(TenantCache::new(self.quota)))
            .clone()
    }
}

#[async_trait]
impl ProviderFactory for MemoryCacheFactory {
    fn node_local(&self) -> Option<&'static str> {
        Some("keys in this process's memory")
    }

    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config: MemoryCacheConfig = parse_config(ctx.config)?;
        let max_value_bytes = match config.max_value_bytes {
            None => self.max_value_bytes,
            Some(wanted) if wanted <= self.max_value_bytes => wanted,
            Some(wanted) => {
                return Err(ProviderError::field(
                    ErrorCode::ConfigInvalid,
                    "/max_value_bytes",
                    format!(
                        "{wanted} is above the operator's ceiling of {} bytes",
                        self.max_value_bytes
                    ),
                ));
            }
        };
        Ok(Arc::new(Instance(MemoryCache {
            cache: self.tenant_cache(&ctx.tenant),
            default_ttl_ms: config.default_ttl_ms,
            max_value_bytes,
        })))
    }
}

struct MemoryCache {
    cache: Arc<TenantCache>,
    default_ttl_ms: Option<u64>,
    /// The tenant's own limit, at most the operator's.
    max_value_bytes: usize,
}

impl MemoryCache {
    fn deadline(&self, ttl_ms: Option<u64>) -> Option<Instant> {
        ttl_ms
            .or(self.default_ttl_ms)
            .map(|ms| Instant::now() + Duration::from_millis(ms))
    }

    /// The length of the value's text, refused as `payload_too_large` above the tenant's limit.
    fn check_size(&self, pointer: &str, value: &Value) -> Result<usize, ProviderError> {
        let len = text_len(value);
        if len > self.max_value_bytes {
            let detail = format!(
                "value is {len} bytes; this tenant's limit is {}",
                self.max_value_bytes
            );
            return Err(ProviderError::field(
                ErrorCode::PayloadTooLarge,
                pointer,
                detail,
            ));
        }
        Ok(len)
    }

    async fn read(&self, key: String) -> Result<Entry, ProviderError> {
        Ok(match self.cache.entries.get(&key).await {
            Some(stored) => Entry::found(key, stored.value()?),
            None => Entry::missing(key),
        })
    }

    /// Stores `entries` (key, value, the length of its text, deadline) if they fit the
    /// tenant's quota, all or none. The texts are built only once admitted.
    async fn store(
        &self,
        entries: Vec<(String, Value, usize, Option<Instant>)>,
    ) -> Result<(), ProviderError> {
        let _write = self.cache.writes.lock().await;
        let writes: Vec<(&str, usize)> = entries
            .iter()
            .map(|(key, _, text_len, _)| (key.as_str(), *text_len))
            .collect();
        self.cache.admit(&writes).await?;
        for (key, value, _, expires_at) in entries {
            let text = value.to_string().into();
            self.cache
                .entries
                .insert(key, Stored { text, expires_at })
                .await;
        }
        Ok(())
    }

    async fn incr(&self, p: IncrParams) -> Result<IncrResult, ProviderError> {
        let explicit_deadline = p
            .ttl_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let new_deadline = self.deadline(p.ttl_ms);
        let _write = self.cache.writes.lock().await;
        // The widest integer text, so the check holds whatever the sum turns out to be.
        self.cache
            .admit(&[(p.key.as_str(), i64::MIN.to_string().len())])
            .await?;
        let result = self
            .cache
            .entries
            .entry(p.key.clone())
            .and_try_compute_with(|current| async move {
                let (base, expires_at) = match current {
                    None => (0, new_deadline),
                    Some(entry) => {
                        let stored = entry.into_value();
                        let base = stored.value()?.as_i64().ok_or_else(|| {
                            ProviderError::new(
                                ErrorCode::Conflict,
                                "the key holds a value that is not an integer",
                            )
                        })?;
                        (base, explicit_deadline.or(stored.expires_at))
                    }
                };
                let next = base.checked_add(p.by).ok_or_else(|| {
                    ProviderError::new(
                        ErrorCode::Conflict,
                        "increment would overflow a 64-bit integer",
                    )
                })?;
                Ok::<_, ProviderError>(Op::Put(Stored {
                    text: next.to_string().into(),
                    expires_at,
                }))
            })
            .await?;
        // The computation always puts a value, so there is always an entry.
        let stored = result
            .into_entry()
            .ok_or_else(|| ProviderError::internal("incr stored nothing"))?
            .into_value();
        let value = stored
            .value()?
            .as_i64()
            .ok_or_else(|| ProviderError::internal("incr stored a value that is not an integer"))?;
        Ok(IncrResult { key: p.key, value })
    }

    /// How many keys starting with `prefix` it removed.
    async fn delete_prefix(&self, prefix: String) -> u64 {
        let entries = &self.cache.entries;
        let doomed: Vec<Arc<String>> = entries
            .iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key)
            .collect();
        let mut deleted = 0u64;
        for key in doomed {
            if entries.remove(key.as_str()).await.is_some() {
                deleted += 1;
            }
        }
        deleted
    }
}

#[async_trait]
impl Engine for MemoryCache {
    const NAME: &'static str = "memory";

    async fn get(&self, p: KeyParams) -> Result<Entry, ProviderError> {
        self.read(p.key).await
    }

    async fn set(&self, p: SetParams) -> Result<SetResult, ProviderError> {
        let text_len = self.check_size("/value", &p.value)?;
        let expires_at = self.deadline(p.ttl_ms);
        self.store(vec![(p.key.clone(), p.value, text_len, expires_at)])
            .await?;
        Ok(SetResult { key: p.key })
    }

    async fn delete(&self, p: KeyParams) -> Result<DeleteResult, ProviderError> {
        let deleted = self.cache.entries.remove(&p.key).await.is_some();
        Ok(DeleteResult { deleted })
    }

    async fn mget(&self, p: MgetParams) -> Result<MgetResult, ProviderError> {
        let mut entries = Vec::with_capacity(p.keys.len());
        for key in p.keys {
            entries.push(self.read(key).await?);
        }
        Ok(MgetResult { entries })
    }

    async fn mset(&self, p: MsetParams) -> Result<MsetResult, ProviderError> {
        // Check every value first so a refused batch stores nothing.
        let mut entries = Vec::with_capacity(p.entries.len());
        for (i, entry) in p.entries.into_iter().enumerate() {
            let text_len = self.check_size(&format!("/entries/{i}/value"), &entry.value)?;
            let expires_at = self.deadline(entry.ttl_ms);
            entries.push((entry.key, entry.value, text_len, expires_at));
        }
        let stored = entries.len();
        self.store(entries).await?;
        Ok(MsetResult { stored })
    }

    async fn incr(&self, p: IncrParams) -> Result<IncrResult, ProviderError> {
        MemoryCache::incr(self, p).await
    }

    async fn delete_prefix(&self, p: PrefixParams) -> Result<DeletePrefixResult, ProviderError> {
        Ok(DeletePrefixResult {
            deleted: MemoryCache::delete_prefix(self, p.prefix).await,
        })
    }

    /// The calling tenant's own figures only: every tenant's instance answers health, and
    /// what others hold is none of its business.
    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let used = self.cache.used().await;
        Ok(Some(format!(
            "this tenant holds {} entries in {used} of its {} bytes",
            self.cache.entries.entry_count(),
            self.cache.quota
        )))
    }
}

/// Always hosted: the embedded default, held to the operator's quotas.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(
        MemoryCacheFactory::new().with_quotas(&host.tenancy.quotas),
    )))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;

    use serde_json::json;
    use switchyard_spi::testkit::Harness;

    use super::*;

    /// The engine under a quota of 1000 bytes per tenant and values of at most 400 bytes.
    fn harness() -> Harness {
        let quotas = Quotas {
            cache_bytes_per_tenant: NonZeroU64::new(1_000).unwrap(),
            cache_max_value_bytes: NonZeroU64::new(400).unwrap(),
            ..Quotas::default()
        };
        Harness::new(Arc::new(MemoryCacheFactory::new().with_quotas(&quotas)))
    }

    /// A string value whose JSON text is `bytes` long.
    fn text_of(bytes: usize) -> Value {
        json!("x".repeat(bytes - 2))
    }

    #[tokio::test]
    async fn a_write_past_the_tenants_quota_is_refused_and_evicts_nobody() {
        let h = harness();
        let globex = h.tenant("globex").await;
        let acme = h.tenant("acme").await;
        globex
            .ok("set", json!({"key": "kept", "value": text_of(300)}))
            .await;
        // Each entry weighs its key, its text and the overhead: 2 + 300 + 128 = 430 bytes.
        for key in ["a1", "a2"] {
            acme.ok("set", json!({"key": key, "value": text_of(300)}))
                .await;
        }
        let refused = acme
            .err("set", json!({"key": "a3", "value": text_of(300)}))
            .await;
        assert_eq!(refused.code, ErrorCode::QuotaExceeded);
        let refused = acme
            .err(
                "mset",
                json!({"entries": [{"key": "b1", "value": 1}, {"key": "b2", "value": text_of(300)}]}),
            )
            .await;
        assert_eq!(refused.code, ErrorCode::QuotaExceeded);
        assert_eq!(acme.ok("get", json!({"key": "b1"})).await["found"], false);
        for key in ["a1", "a2"] {
            assert_eq!(acme.ok("get", json!({"key": key})).await["found"], true);
        }
        assert_eq!(
            globex.ok("get", json!({"key": "kept"})).await["found"],
            true
        );
        // Replacing a key is charged the difference, and deleting frees room.
        acme.ok("set", json!({"key": "a2", "value": text_of(350)}))
            .await;
        acme.ok("delete", json!({"key": "a1"})).await;
        acme.ok("set", json!({"key": "a3", "value": text_of(300)}))
            .await;
        // An increment is charged the widest integer it could write.
        let refused = acme.err("incr", json!({"key": "n"})).await;
        assert_eq!(refused.code, ErrorCode::QuotaExceeded);
    }

    #[tokio::test]
    async fn the_tenant_may_narrow_the_operators_largest_value_but_not_widen_it() {
        let h = harness();
        let narrowed = h
            .tenant_with_config("acme", json!({"max_value_bytes": 100}))
            .await;
        let too_large = narrowed
            .err("set", json!({"key": "k", "value": text_of(101)}))
            .await;
        assert_eq!(too_large.code, ErrorCode::PayloadTooLarge);
        let default = h.tenant("globex").await;
        default
            .ok("set", json!({"key": "k", "value": text_of(400)}))
            .await;
        let too_large = default
            .err("set", json!({"key": "k", "value": text_of(401)}))
            .await;
        assert_eq!(too_large.code, ErrorCode::PayloadTooLarge);

        let refused = MemoryCacheFactory::new()
            .with_quotas(&Quotas {
                cache_max_value_bytes: NonZeroU64::new(400).unwrap(),
                ..Quotas::default()
            })
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"max_value_bytes": 401}),
                client: None,
            })
            .await
            .err()
            .unwrap();
        assert_eq!(refused.code, ErrorCode::ConfigInvalid);
        assert_eq!(refused.errors[0].pointer, "/max_value_bytes");
    }

    #[tokio::test]
    async fn health_shows_only_the_callers_own_figures() {
        let h = harness();
        let acme = h.tenant("acme").await;
        let globex = h.tenant("globex").await;
        let before = serde_json::to_value(acme.provider.health().await).unwrap();
        for i in 0..3 {
            globex
                .ok("set", json!({"key": format!("k{i}"), "value": i}))
                .await;
        }
        assert_eq!(
            serde_json::to_value(acme.provider.health().await).unwrap(),
            before
        );
        acme.ok("set", json!({"key": "mine", "value": 1})).await;
        let detail = acme.provider.health().await.dependencies[0].detail.clone();
        assert_eq!(
            detail.as_deref(),
            Some("this tenant holds 1 entries in 133 of its 1000 bytes")
        );
    }
}
