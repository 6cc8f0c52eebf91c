//! `cache/example`: a cache engine shipped as a provider plugin (a `.so` the runtime loads
//! with `libloading`), proving the plugin ABI against the unchanged cache conformance suite.
//!
//! Deliberately plain (one mutex around one map): it is the reference a connector developer
//! copies, not a production cache — `cache/memory` and `cache/redis` are those.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

/// Keys carry their tenant: every tenant shares the engine's one map, none sees another's.
type Key = (String, String);

struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The engine: owns the map, so a tenant's new instance (a reconfigure) keeps its keys.
pub struct ExampleCache {
    store: Arc<Mutex<HashMap<Key, Entry>>>,
}

impl Plugin for ExampleCache {
    type Instance = TenantCache;

    fn new() -> Self {
        ExampleCache {
            store: Arc::default(),
        }
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "cache",
            "name": "example",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Example plugin: an in-memory cache loaded from a shared library.",
            "capabilities": ["ttl", "atomic_incr"],
            "config_schema": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "default_ttl_ms": {"type": ["integer", "null"], "minimum": 1},
                    "max_value_bytes": {"type": "integer", "minimum": 1, "default": 1048576}
                }
            }
        })
    }

    fn start(&self, tenant: &str, config: Value) -> Result<TenantCache, PluginError> {
        Ok(TenantCache {
            tenant: tenant.to_owned(),
            default_ttl_ms: config["default_ttl_ms"].as_u64(),
            max_value_bytes: config["max_value_bytes"].as_u64().unwrap_or(1024 * 1024) as usize,
            store: self.store.clone(),
        })
    }
}

/// One tenant's view of the shared map.
pub struct TenantCache {
    tenant: String,
    default_ttl_ms: Option<u64>,
    max_value_bytes: usize,
    store: Arc<Mutex<HashMap<Key, Entry>>>,
}

impl TenantCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding the lock left whole entries behind: the map is still usable.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, key: &str) -> Key {
        (self.tenant.clone(), key.to_owned())
    }

    fn deadline(&self, ttl_ms: Option<u64>) -> Option<Instant> {
        ttl_ms
            .or(self.default_ttl_ms)
            .map(|ms| Instant::now() + Duration::from_millis(ms))
    }

    fn check_size(&self, pointer: &str, value: &Value) -> Result<(), PluginError> {
        let size = value.to_string().len();
        if size > self.max_value_bytes {
            let detail = format!(
                "value is {size} bytes; this tenant's limit is {}",
                self.max_value_bytes
            );
            return Err(PluginError::field("payload_too_large", pointer, detail));
        }
        Ok(())
    }

    fn read(&self, map: &HashMap<Key, Entry>, key: &str) -> Value {
        match map.get(&self.key(key)).filter(|e| e.live(Instant::now())) {
            Some(entry) => json!({"key": key, "found": true, "value": entry.value}),
            None => json!({"key": key, "found": false, "value": null}),
        }
    }

    fn incr(&self, params: &Value) -> Result<Value, PluginError> {
        let key = str_param(params, "key");
        let by = params["by"].as_i64().unwrap_or(1);
        let ttl_ms = params["ttl_ms"].as_u64();
        let mut map = self.lock();
        let now = Instant::now();
        let (base, expires_at) = match map.get(&self.key(key)).filter(|e| e.live(now)) {
            None => (0, self.deadline(ttl_ms)),
            Some(entry) => {
                let base = entry.value.as_i64().ok_or_else(|| {
                    PluginError::new("conflict", "the key holds a value that is not an integer")
                })?;
                let explicit = ttl_ms.map(|ms| now + Duration::from_millis(ms));
                (base, explicit.or(entry.expires_at))
            }
        };
        let next = base.checked_add(by).ok_or_else(|| {
            PluginError::new("conflict", "increment would overflow a 64-bit integer")
        })?;
        map.insert(
            self.key(key),
            Entry {
                value: json!(next),
                expires_at,
            },
        );
        Ok(json!({"key": key, "value": next}))
    }
}

fn str_param<'a>(params: &'a Value, field: &str) -> &'a str {
    params[field].as_str().unwrap_or_default()
}

impl Instance for TenantCache {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        let p = &call.params;
        match call.action.as_str() {
            "get" => Ok(self.read(&self.lock(), str_param(p, "key"))),
            "set" => {
                self.check_size("/value", &p["value"])?;
                let entry = Entry {
                    value: p["value"].clone(),
                    expires_at: self.deadline(p["ttl_ms"].as_u64()),
                };
                self.lock().insert(self.key(str_param(p, "key")), entry);
                Ok(json!({"key": p["key"]}))
            }
            "delete" => {
                let now = Instant::now();
                let removed = self.lock().remove(&self.key(str_param(p, "key")));
                Ok(json!({"deleted": removed.is_some_and(|e| e.live(now))}))
            }
            "mget" => {
                let map = self.lock();
                let entries: Vec<Value> = p["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| self.read(&map, k.as_str().unwrap_or_default()))
                    .collect();
                Ok(json!({"entries": entries}))
            }
            "mset" => {
                let entries = p["entries"].as_array().cloned().unwrap_or_default();
                // Check every value first so a refused batch stores nothing.
                for (i, entry) in entries.iter().enumerate() {
                    self.check_size(&format!("/entries/{i}/value"), &entry["value"])?;
                }
                let mut map = self.lock();
                for entry in &entries {
                    let stored = Entry {
                        value: entry["value"].clone(),
                        expires_at: self.deadline(entry["ttl_ms"].as_u64()),
                    };
                    map.insert(self.key(str_param(entry, "key")), stored);
                }
                Ok(json!({"stored": entries.len()}))
            }
            "incr" => self.incr(p),
            "delete_prefix" => {
                let prefix = str_param(p, "prefix");
                let now = Instant::now();
                let mut map = self.lock();
                let mut live_removed = 0u64;
                map.retain(|(tenant, key), entry| {
                    let doomed = *tenant == self.tenant && key.starts_with(prefix);
                    if doomed && entry.live(now) {
                        live_removed += 1;
                    }
                    !doomed
                });
                Ok(json!({"deleted": live_removed}))
            }
            other => Err(PluginError::new(
                "action_not_found",
                format!("cache/example has no action {other}"),
            )),
        }
    }

    /// Counts this tenant's entries only: health is served to every tenant, and the map's total
    /// would tell each one how much the others store.
    fn health(&self) -> Value {
        let entries = self
            .lock()
            .keys()
            .filter(|(t, _)| *t == self.tenant)
            .count();
        json!({"status": "up", "dependencies": [
            {"name": "memory", "status": "up", "detail": format!("{entries} entries of this tenant")}
        ]})
    }
}

export_plugin!(ExampleCache);
