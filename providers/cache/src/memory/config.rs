//! Per-tenant config of `cache/memory`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryCacheConfig {
    /// TTL applied by `set`, `mset` and `incr` when the call gives none. `None`: keys live
    /// until deleted or they expire.
    #[serde(default)]
    pub default_ttl_ms: Option<u64>,
    /// Largest accepted value, measured as its JSON text. `None` takes the operator's
    /// `cache_max_value_bytes`; a tenant may only lower it, since the operator's figure is
    /// what protects the process every tenant shares.
    #[serde(default)]
    pub max_value_bytes: Option<usize>,
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "default_ttl_ms": {"type": ["integer", "null"], "minimum": 1, "description": "TTL used when a call gives none; null keeps keys until deleted or expired."},
            "max_value_bytes": {"type": "integer", "minimum": 1, "maximum": 67108864, "description": "Largest accepted value, as JSON text; at most the operator's cache_max_value_bytes (1 MiB unless the operator set it), which is also the default."}
        }
    })
}
