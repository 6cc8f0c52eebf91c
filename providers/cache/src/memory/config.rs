//! Per-tenant config of `cache/memory`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The engine's own bound on `max_value_bytes` (64 MiB), whatever the operator's ceiling.
const MAX_VALUE_BYTES: u64 = 67_108_864;

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
    #[schemars(with = "u64", range(min = 1, max = MAX_VALUE_BYTES))]
    pub max_value_bytes: Option<usize>,
}

/// Publishes the operator's `cache_max_value_bytes` as the schema's `maximum` for
/// `max_value_bytes` (when it is below the engine's own bound; a factory held to new quotas
/// is published anew, never from its previous figure), so a config above the ceiling
/// is refused by the schema the tenant reads (400 `config_invalid`) rather than by a rule the
/// document does not state (ADR 23). The served document is built from the running process's
/// descriptors, so it carries this operator's figure.
pub fn publish_ceiling(schema: &mut Value, ceiling: u64) {
    if let Some(field) = schema.pointer_mut("/properties/max_value_bytes") {
        field["maximum"] = json!(MAX_VALUE_BYTES.min(ceiling));
    }
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

    #[test]
    fn the_operators_ceiling_is_the_published_maximum_when_it_is_lower() {
        let mut schema = switchyard_spi::config_schema::<MemoryCacheConfig>();
        publish_ceiling(&mut schema, 400);
        let compiled = Compiled::new(&schema, "cache/memory#config").unwrap();
        assert!(compiled.check(&json!({"max_value_bytes": 400})).is_empty());
        assert!(!compiled.check(&json!({"max_value_bytes": 401})).is_empty());
        // Raised again (a factory built under the defaults, then held to the operator's):
        // up to the engine's own bound, never above it.
        publish_ceiling(&mut schema, 32 * 1024 * 1024);
        assert_eq!(
            schema["properties"]["max_value_bytes"]["maximum"],
            json!(32 * 1024 * 1024)
        );
        publish_ceiling(&mut schema, u64::MAX);
        assert_eq!(
            schema["properties"]["max_value_bytes"]["maximum"],
            json!(MAX_VALUE_BYTES)
        );
    }
}
