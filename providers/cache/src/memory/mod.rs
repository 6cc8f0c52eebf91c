//! `cache/memory`: the embedded default cache engine.

mod config;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
};

pub use config::MemoryCacheConfig;

/// Entries across all tenants; least recently used are evicted beyond it.
const CAPACITY: u64 = 1_000_000;

/// Keys carry their tenant, so isolation holds even though every tenant shares one store.
type Key = (TenantId, String);

#[derive(Clone)]
struct Stored {
    value: Arc<Value>,
    expires_at: Option<Instant>,
}

/// Each entry expires at its own deadline, fixed when written; an `incr` without a TTL keeps it.
struct Deadline;

impl Expiry<Key, Stored> for Deadline {
    fn expire_after_create(&self, _: &Key, value: &Stored, now: Instant) -> Option<Duration> {
        value.expires_at.map(|at| at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &Key,
        value: &Stored,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        value.expires_at.map(|at| at.saturating_duration_since(now))
    }
}

/// Owns the one store all tenants share, so a reconfigured tenant keeps its keys.
pub struct MemoryCacheFactory {
    descriptor: ProviderDescriptor,
    store: Cache<Key, Stored>,
}

impl Default for MemoryCacheFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCacheFactory {
    pub fn new() -> Self {
        MemoryCacheFactory {
            descriptor: ProviderDescriptor {
                domain: "cache".into(),
                name: "memory".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "In-process cache with per-key TTL; the embedded default.".into(),
                capabilities: vec!["ttl".into(), "atomic_incr".into()],
                config_schema: config::schema(),
                actions: domains::actions("cache"),
            },
            store: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(Deadline)
                .build(),
        }
    }
}

#[async_trait]
impl ProviderFactory for MemoryCacheFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config: MemoryCacheConfig = serde_json::from_value(ctx.config)
            .map_err(|e| ProviderError::new(ErrorCode::ConfigInvalid, e.to_string()))?;
        Ok(Arc::new(MemoryCache {
            tenant: ctx.tenant,
            config,
            store: self.store.clone(),
        }))
    }
}

struct MemoryCache {
    tenant: TenantId,
    config: MemoryCacheConfig,
    store: Cache<Key, Stored>,
}

#[derive(Deserialize)]
struct KeyParams {
    key: String,
}

#[derive(Deserialize)]
struct SetParams {
    key: String,
    value: Value,
    ttl_ms: Option<u64>,
}

#[derive(Deserialize)]
struct MgetParams {
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct MsetParams {
    entries: Vec<SetParams>,
}

#[derive(Deserialize)]
struct IncrParams {
    key: String,
    #[serde(default = "one")]
    by: i64,
    ttl_ms: Option<u64>,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
struct PrefixParams {
    prefix: String,
}

impl MemoryCache {
    fn key(&self, key: String) -> Key {
        (self.tenant.clone(), key)
    }

    fn deadline(&self, ttl_ms: Option<u64>) -> Option<Instant> {
        ttl_ms
            .or(self.config.default_ttl_ms)
            .map(|ms| Instant::now() + Duration::from_millis(ms))
    }

    fn check_size(&self, pointer: &str, value: &Value) -> Result<(), ProviderError> {
        let size = serde_json::to_vec(value)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > self.config.max_value_bytes {
            let detail = format!(
                "value is {size} bytes; this tenant's limit is {}",
                self.config.max_value_bytes
            );
            return Err(ProviderError::field(
                ErrorCode::PayloadTooLarge,
                pointer,
                detail,
            ));
        }
        Ok(())
    }

    async fn read(&self, key: String) -> Value {
        match self.store.get(&self.key(key.clone())).await {
            Some(stored) => json!({"key": key, "found": true, "value": *stored.value}),
            None => json!({"key": key, "found": false, "value": null}),
        }
    }

    async fn incr(&self, p: IncrParams) -> Result<Value, ProviderError> {
        let explicit_deadline = p
            .ttl_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let new_deadline = self.deadline(p.ttl_ms);
        let result = self
            .store
            .entry(self.key(p.key.clone()))
            .and_try_compute_with(|current| async move {
                let (base, expires_at) = match current {
                    None => (0, new_deadline),
                    Some(entry) => {
                        let stored = entry.into_value();
                        let base = stored.value.as_i64().ok_or_else(|| {
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
                    value: Arc::new(json!(next)),
                    expires_at,
                }))
            })
            .await?;
        let value = result
            .into_entry()
            .map(|e| e.into_value().value)
            .unwrap_or_default();
        Ok(json!({"key": p.key, "value": *value}))
    }

    async fn delete_prefix(&self, prefix: String) -> Value {
        let doomed: Vec<Key> = self
            .store
            .iter()
            .filter(|(key, _)| key.0 == self.tenant && key.1.starts_with(&prefix))
            .map(|(key, _)| (*key).clone())
            .collect();
        let mut deleted = 0u64;
        for key in doomed {
            if self.store.remove(&key).await.is_some() {
                deleted += 1;
            }
        }
        json!({"deleted": deleted})
    }
}

#[async_trait]
impl Provider for MemoryCache {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "get" => {
                let p: KeyParams = parse_params(call.params)?;
                Ok(self.read(p.key).await)
            }
            "set" => {
                let p: SetParams = parse_params(call.params)?;
                self.check_size("/value", &p.value)?;
                let stored = Stored {
                    value: Arc::new(p.value),
                    expires_at: self.deadline(p.ttl_ms),
                };
                self.store.insert(self.key(p.key.clone()), stored).await;
                Ok(json!({"key": p.key}))
            }
            "delete" => {
                let p: KeyParams = parse_params(call.params)?;
                let deleted = self.store.remove(&self.key(p.key)).await.is_some();
                Ok(json!({"deleted": deleted}))
            }
            "mget" => {
                let p: MgetParams = parse_params(call.params)?;
                let mut entries = Vec::with_capacity(p.keys.len());
                for key in p.keys {
                    entries.push(self.read(key).await);
                }
                Ok(json!({"entries": entries}))
            }
            "mset" => {
                let p: MsetParams = parse_params(call.params)?;
                // Check every value first so a refused batch stores nothing.
                for (i, entry) in p.entries.iter().enumerate() {
                    self.check_size(&format!("/entries/{i}/value"), &entry.value)?;
                }
                let stored = p.entries.len();
                for entry in p.entries {
                    let value = Stored {
                        value: Arc::new(entry.value),
                        expires_at: self.deadline(entry.ttl_ms),
                    };
                    self.store.insert(self.key(entry.key), value).await;
                }
                Ok(json!({"stored": stored}))
            }
            "incr" => self.incr(parse_params(call.params)?).await,
            "delete_prefix" => {
                let p: PrefixParams = parse_params(call.params)?;
                Ok(self.delete_prefix(p.prefix).await)
            }
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("cache/memory has no action {other}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(vec![DependencyHealth {
            name: "memory".into(),
            status: HealthStatus::Up,
            detail: Some(format!(
                "{} entries across all tenants",
                self.store.entry_count()
            )),
        }])
    }
}
