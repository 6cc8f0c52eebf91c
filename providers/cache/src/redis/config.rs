//! Per-tenant config of `cache/redis`. Same fields, defaults and meaning as `cache/memory`'s, so
//! a tenant can move between the engines without touching its config.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisCacheConfig {
    /// TTL applied by `set`, `mset` and `incr` (on creation) when the call gives none. `None`:
    /// keys live until deleted or evicted by Redis's own policy.
    #[serde(default)]
    pub default_ttl_ms: Option<u64>,
    /// Largest accepted value, measured as its JSON text. Protects the Redis memory every tenant
    /// shares from one tenant's oversized values.
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
}

fn default_max_value_bytes() -> usize {
    1024 * 1024
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        RedisCacheConfig {
            default_ttl_ms: None,
            max_value_bytes: default_max_value_bytes(),
        }
    }
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "default_ttl_ms": {"type": ["integer", "null"], "minimum": 1, "description": "TTL used when a call gives none; null keeps keys until deleted or evicted."},
            "max_value_bytes": {"type": "integer", "minimum": 1, "maximum": 67108864, "default": 1048576, "description": "Largest accepted value, as JSON text."}
        }
    })
}
