//! Per-tenant config of `cache/redis`. Same fields, defaults and meaning as `cache/memory`'s, so
//! a tenant can move between the engines without touching its config.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisCacheConfig {
    /// TTL in milliseconds applied by `set`, `mset` and `incr` (on creation) when the call
    /// gives none; null keeps keys until deleted or evicted by Redis's own policy.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub default_ttl_ms: Option<u64>,
    /// Largest accepted value, as JSON text. Protects the Redis memory every tenant shares
    /// from one tenant's oversized values.
    #[serde(default = "default_max_value_bytes")]
    #[schemars(range(min = 1, max = 67_108_864))]
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
