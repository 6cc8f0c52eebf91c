//! Per-tenant config of `cache/memory`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryCacheConfig {
    /// TTL in milliseconds applied by `set`, `mset` and `incr` when the call gives none; null
    /// keeps keys until deleted or expired.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub default_ttl_ms: Option<u64>,
    /// Largest accepted value, as JSON text; at most the operator's `cache_max_value_bytes`
    /// (1 MiB unless the operator set it), which is also the default. A tenant may only lower
    /// it, since the operator's figure is what protects the process every tenant shares.
    // Left out means the operator's figure; null is refused, as it says nothing more.
    #[serde(default)]
    #[schemars(with = "u64", range(min = 1, max = 67_108_864))]
    pub max_value_bytes: Option<usize>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::schema::Compiled;

    use super::*;

    #[test]
    fn the_schema_refuses_what_the_engine_would_not_read() {
        let schema = switchyard_spi::config_schema::<MemoryCacheConfig>();
        let compiled = Compiled::new(&schema, "cache/memory#config").unwrap();
        for accepted in [
            json!({}),
            json!({"default_ttl_ms": null, "max_value_bytes": 67_108_864}),
            json!({"default_ttl_ms": 1, "max_value_bytes": 1}),
        ] {
            assert!(compiled.check(&accepted).is_empty(), "{accepted}");
            serde_json::from_value::<MemoryCacheConfig>(accepted).unwrap();
        }
        for refused in [
            json!({"max_value_bytes": null}),
            json!({"max_value_bytes": 0}),
            json!({"max_value_bytes": 67_108_865}),
            json!({"default_ttl_ms": 0}),
            json!({"ttl": 5}),
        ] {
            assert!(!compiled.check(&refused).is_empty(), "{refused}");
        }
    }
}
