//! The exact-match answer cache of one tenant's gateway instance.
//!
//! A repeated request with the same alias, the same messages (after templates and redaction)
//! and the same sampling parameters is answered from memory, without an upstream call or a
//! budget charge. The cache lives in the tenant's instance, so tenants never share entries
//! and the tenant is not part of the key. It is opt-in and, by default, only for requests at
//! temperature 0: at any other temperature the caller asked for a fresh sample each time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::tokens::Usage;

const DEFAULT_MAX_ENTRIES: u64 = 1_000;
const MAX_MAX_ENTRIES: u64 = 100_000;
const DEFAULT_TTL_SECONDS: u64 = 300;
const MAX_TTL_SECONDS: u64 = 86_400;
/// Versions the key's canonical form: a change to it must not match keys hashed the old way.
const KEY_DOMAIN: &[u8] = b"switchyard/ai-gateway/cache/v1\0";

/// The answer cache: off unless enabled.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Answer repeated identical chat requests from memory, without calling the model.
    #[serde(default)]
    pub enabled: bool,
    /// How many answers the cache keeps; the least useful are evicted first.
    #[serde(default = "default_max_entries")]
    #[schemars(range(min = 1, max = MAX_MAX_ENTRIES))]
    pub max_entries: u64,
    /// How long an answer is served from the cache, in seconds.
    #[serde(default = "default_ttl_seconds")]
    #[schemars(range(min = 1, max = MAX_TTL_SECONDS))]
    pub ttl_seconds: u64,
    /// Also cache requests with a temperature above 0 (or none, which models treat as 1):
    /// repeated requests then get the same sample instead of a new one.
    #[serde(default)]
    pub cache_nonzero_temperature: bool,
}

fn default_max_entries() -> u64 {
    DEFAULT_MAX_ENTRIES
}

fn default_ttl_seconds() -> u64 {
    DEFAULT_TTL_SECONDS
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_entries: DEFAULT_MAX_ENTRIES,
            ttl_seconds: DEFAULT_TTL_SECONDS,
            cache_nonzero_temperature: false,
        }
    }
}

/// The SHA-256 of a request's canonical form (see [`cache_key`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The key of a chat request: the alias, the messages as sent upstream (after templates and
/// redaction) and the sampling parameters (`temperature`, `max_tokens`, `top_p`, `stop`,
/// `seed`, ... as one JSON object; pass only what changes the answer, not `stream` or
/// `user`).
///
/// The JSON is hashed in a canonical form written straight into the hasher: object keys
/// sorted, no whitespace, integral floats written as integers (`1.0` and `1` are the same
/// temperature), so two requests that differ only in key order or number spelling share an
/// entry whatever order the JSON map keeps.
pub fn cache_key(alias: &str, messages: &Value, params: &Value) -> CacheKey {
    let mut hasher = Sha256::new();
    hasher.update(KEY_DOMAIN);
    hasher.update((alias.len() as u64).to_be_bytes());
    hasher.update(alias.as_bytes());
    canonical(&mut hasher, messages);
    canonical(&mut hasher, params);
    CacheKey(hasher.finalize().into())
}

fn canonical(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Null => hasher.update(b"null"),
        Value::Bool(true) => hasher.update(b"true"),
        Value::Bool(false) => hasher.update(b"false"),
        Value::Number(number) => {
            let integral = number
                .as_f64()
                .filter(|f| number.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15);
            match integral {
                Some(f) => hasher.update((f as i64).to_string()),
                None => hasher.update(number.to_string()),
            }
        }
        Value::String(text) => string(hasher, text),
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                canonical(hasher, item);
            }
            hasher.update(b"]");
        }
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort_unstable();
            hasher.update(b"{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                string(hasher, key);
                hasher.update(b":");
                canonical(hasher, &fields[key]);
            }
            hasher.update(b"}");
        }
    }
}

/// A string as a length-prefixed byte run: unambiguous without escaping.
fn string(hasher: &mut Sha256, text: &str) {
    hasher.update(b"\"");
    hasher.update((text.len() as u64).to_be_bytes());
    hasher.update(text.as_bytes());
}

/// One cached non-stream answer: the body as the upstream's adapter returned it, and the
/// usage it reported (recorded in the audit of a hit, never charged to the budget again).
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnswer {
    pub answer: Value,
    pub usage: Usage,
    stored_at: Instant,
}

/// The answers of one tenant instance, bounded in entries and age.
#[derive(Clone)]
pub struct ResponseCache {
    entries: moka::future::Cache<CacheKey, Arc<CachedAnswer>>,
    ttl: Duration,
    nonzero_temperature: bool,
}

impl ResponseCache {
    /// The cache `config` asks for, or `None` when it is disabled.
    pub fn new(config: &CacheConfig) -> Option<Self> {
        if !config.enabled {
            return None;
        }
        let ttl = Duration::from_secs(config.ttl_seconds.clamp(1, MAX_TTL_SECONDS));
        let entries = moka::future::Cache::builder()
            .max_capacity(config.max_entries.clamp(1, MAX_MAX_ENTRIES))
            // moka's own expiry frees the memory of old entries; `get` also checks the age
            // against the caller's clock, so an entry is never served past its TTL.
            .time_to_live(ttl)
            .build();
        Some(Self {
            entries,
            ttl,
            nonzero_temperature: config.cache_nonzero_temperature,
        })
    }

    /// Whether a request at `temperature` (`None`: the model's default, which is above 0)
    /// may be answered from and stored in the cache.
    pub fn is_cacheable(&self, temperature: Option<f64>) -> bool {
        self.nonzero_temperature || temperature == Some(0.0)
    }

    /// The answer stored under `key`, if it is younger than the TTL at `now`.
    pub async fn get(&self, key: &CacheKey, now: Instant) -> Option<Arc<CachedAnswer>> {
        let hit = self.entries.get(key).await?;
        if now.saturating_duration_since(hit.stored_at) >= self.ttl {
            self.entries.invalidate(key).await;
            return None;
        }
        Some(hit)
    }

    /// Stores a successful non-stream answer under `key`, as of `now`.
    pub async fn insert(&self, key: CacheKey, answer: Value, usage: Usage, now: Instant) {
        let entry = CachedAnswer {
            answer,
            usage,
            stored_at: now,
        };
        self.entries.insert(key, Arc::new(entry)).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages() -> Value {
        json!([{"role": "system", "content": "be terse"}, {"role": "user", "content": "hi"}])
    }

    #[test]
    fn equal_requests_share_a_key_whatever_the_key_order_or_number_spelling() {
        let a = cache_key(
            "fast",
            &messages(),
            &json!({"temperature": 0, "max_tokens": 64}),
        );
        let b = cache_key(
            "fast",
            &json!([{"content": "be terse", "role": "system"}, {"content": "hi", "role": "user"}]),
            &json!({"max_tokens": 64, "temperature": 0.0}),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn any_difference_changes_the_key() {
        let base = cache_key("fast", &messages(), &json!({"temperature": 0}));
        let variants = [
            cache_key("smart", &messages(), &json!({"temperature": 0})),
            cache_key(
                "fast",
                &json!([{"role": "user", "content": "hi"}]),
                &json!({"temperature": 0}),
            ),
            cache_key("fast", &messages(), &json!({"temperature": 0.2})),
            cache_key(
                "fast",
                &messages(),
                &json!({"temperature": 0, "max_tokens": 1}),
            ),
            cache_key("fast", &messages(), &json!({"temperature": 0, "seed": 7})),
        ];
        for (i, variant) in variants.iter().enumerate() {
            assert_ne!(&base, variant, "variant {i}");
        }
    }

    #[test]
    fn strings_cannot_be_shifted_between_fields() {
        // Without length prefixes these two would serialize alike.
        let a = cache_key("ab", &json!(["c"]), &json!({}));
        let b = cache_key("a", &json!(["bc"]), &json!({}));
        assert_ne!(a, b);
        let c = cache_key("x", &json!(["a\",\"b"]), &json!({}));
        let d = cache_key("x", &json!(["a", "b"]), &json!({}));
        assert_ne!(c, d);
    }

    #[test]
    fn the_key_prints_as_hex() {
        let key = cache_key("a", &json!([]), &json!({}));
        let hex = format!("{key:?}");
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn disabled_is_no_cache() {
        assert!(ResponseCache::new(&CacheConfig::default()).is_none());
    }

    #[test]
    fn only_temperature_zero_is_cacheable_unless_configured() {
        let config = CacheConfig {
            enabled: true,
            ..CacheConfig::default()
        };
        let cache = ResponseCache::new(&config).unwrap();
        assert!(cache.is_cacheable(Some(0.0)));
        assert!(!cache.is_cacheable(Some(0.7)));
        assert!(!cache.is_cacheable(None));
        let any = ResponseCache::new(&CacheConfig {
            cache_nonzero_temperature: true,
            ..config
        })
        .unwrap();
        assert!(any.is_cacheable(Some(0.7)) && any.is_cacheable(None));
    }

    #[tokio::test]
    async fn a_stored_answer_is_served_until_its_ttl() {
        let cache = ResponseCache::new(&CacheConfig {
            enabled: true,
            ttl_seconds: 60,
            ..CacheConfig::default()
        })
        .unwrap();
        let key = cache_key("fast", &messages(), &json!({"temperature": 0}));
        let t0 = Instant::now();
        assert!(cache.get(&key, t0).await.is_none());
        let answer = json!({"content": "hello", "model": "m"});
        cache
            .insert(key, answer.clone(), Usage::new(3, 1), t0)
            .await;
        let hit = cache.get(&key, t0 + Duration::from_secs(59)).await.unwrap();
        assert_eq!(hit.answer, answer);
        assert_eq!(hit.usage, Usage::new(3, 1));
        assert!(
            cache
                .get(&key, t0 + Duration::from_secs(60))
                .await
                .is_none()
        );
        assert!(
            cache.get(&key, t0).await.is_none(),
            "an expired entry is dropped, not kept for an earlier clock"
        );
    }

    #[tokio::test]
    async fn the_cache_keeps_at_most_max_entries() {
        let cache = ResponseCache::new(&CacheConfig {
            enabled: true,
            max_entries: 10,
            ..CacheConfig::default()
        })
        .unwrap();
        let now = Instant::now();
        for i in 0..100 {
            let key = cache_key("a", &json!([i]), &json!({}));
            cache.insert(key, json!(i), Usage::default(), now).await;
        }
        cache.entries.run_pending_tasks().await;
        assert!(
            cache.entries.entry_count() <= 10,
            "{}",
            cache.entries.entry_count()
        );
    }

    #[test]
    fn the_config_has_defaults_and_refuses_unknown_fields() {
        let config: CacheConfig = serde_json::from_value(json!({"enabled": true})).unwrap();
        assert_eq!(
            config,
            CacheConfig {
                enabled: true,
                ..CacheConfig::default()
            }
        );
        assert!(serde_json::from_value::<CacheConfig>(json!({"enable": true})).is_err());
    }
}
