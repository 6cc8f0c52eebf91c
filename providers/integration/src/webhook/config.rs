//! Per-tenant config of `integration/webhook`: the tenant's endpoints (name → URL and signing
//! secret), the networks its endpoints may reach despite the SSRF guard, and the delivery
//! budget.
//!
//! The JSON Schema derived from [`WebhookConfigFields`] is checked by the runtime against the
//! *stored* config, where the secret is a `secret://` reference; [`WebhookConfig::from_value`]
//! reads the *resolved* config the factory gets, where it is the `whsec_…` value. Errors never
//! quote a URL or a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use reqwest::Url;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError, parse_config};

/// The prefix Standard Webhooks puts before the base64 of a signing secret.
const SECRET_PREFIX: &str = "whsec_";
/// The spec's bounds on a secret's decoded length.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

const DEFAULT_MAX_ATTEMPTS: u32 = 5;
const MAX_MAX_ATTEMPTS: u32 = 20;
const DEFAULT_INITIAL_BACKOFF_MS: u64 = 500;
const DEFAULT_MAX_BACKOFF_MS: u64 = 10_000;
const DEFAULT_ATTEMPT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_MAX_TOTAL_MS: u64 = 20_000;
/// Below the runtime's 30 s call timeout, so a trigger answers its outcome before the runtime
/// gives up on the call.
const MAX_MAX_TOTAL_MS: u64 = 25_000;
const DEFAULT_RETENTION_HOURS: u64 = 168;
/// A leap year.
const MAX_RETENTION_HOURS: u64 = 8784;

/// A `secret://` reference as the runtime's resolver parses it: `env/NAME`, `file/<path>` or
/// `vault/<mount>/<path>#<key>`.
const SECRET_PATTERN: &str = r"^secret://(env/[^/]+|file/[\s\S]*|vault/[^/#]+/[^#]+#[\s\S]+)$";
/// An endpoint URL, or a reference to one. What the schema publishes of a URL: http(s), a host
/// (a name of letters, digits, dots and dashes, or a bracketed IPv6 address), no credentials,
/// an optional port. What it cannot state (a name the URL standard refuses, a port past 65535)
/// is 422.
const URL_OR_SECRET_PATTERN: &str = r"^(https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?|secret://(env/[^/]+|file/[\s\S]*|vault/[^/#]+/[^#]+#[\s\S]+))$";

/// An endpoint's signing key, decoded. `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// One receiver. The URL may itself be secret (many receivers put a token in it), so it is
/// kept out of `Debug`, errors and logs like the key.
#[derive(Clone)]
pub struct Endpoint {
    pub url: Url,
    pub key: SigningKey,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Endpoint(***)")
    }
}

/// A tenant's settings, read and checked.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The forbidden networks (loopback, private, …) endpoints may reach, e.g. `10.20.0.0/16`
    /// for a receiver on the tenant's own private network; each must lie inside the
    /// operator's `[tenancy.egress] allowed_networks`. `None`: all the operator allows.
    pub allowed_networks: Option<Vec<IpNet>>,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub attempt_timeout: Duration,
    /// The whole trigger (every attempt and wait) ends within this.
    pub max_total: Duration,
    /// How long delivered messages (and so their idempotency keys) are kept.
    pub retention: Duration,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EndpointFields {
    /// The receiver's http(s) URL, or a secret:// reference to it when it carries a token.
    #[schemars(regex(pattern = URL_OR_SECRET_PATTERN))]
    url: String,
    /// A secret:// reference to the endpoint's Standard Webhooks signing secret (whsec_ +
    /// base64 of 24 to 64 bytes).
    #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    secret: String,
}

/// The tenant's endpoints, the networks they may reach and the delivery budget. Every field
/// is optional; an empty object has no endpoints.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfigFields {
    /// The receivers trigger may name, by endpoint name.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"}))]
    endpoints: BTreeMap<String, EndpointFields>,
    /// Narrows the forbidden networks (loopback, private, link-local, …) endpoints may reach
    /// to these CIDR networks, each inside the operator's [tenancy.egress] allowed_networks
    /// (else egress_forbidden). Absent: every network the operator allows.
    #[serde(default)]
    #[schemars(
        with = "Vec<String>",
        length(max = 64),
        inner(regex(pattern = "^[0-9a-fA-F.:]+/[0-9]{1,3}$"))
    )]
    allowed_networks: Option<Vec<String>>,
    /// HTTP requests per trigger or redeliver before the message is dead-lettered.
    #[serde(default = "default_max_attempts")]
    #[schemars(range(min = 1, max = MAX_MAX_ATTEMPTS))]
    max_attempts: u32,
    /// Wait before the first retry; doubles on each retry, plus random jitter of up to the
    /// same again.
    #[serde(default = "default_initial_backoff_ms")]
    #[schemars(range(min = 1, max = 60_000))]
    initial_backoff_ms: u64,
    /// Longest wait between two attempts before jitter (a receiver's Retry-After may ask for
    /// longer).
    #[serde(default = "default_max_backoff_ms")]
    #[schemars(range(min = 1, max = 60_000))]
    max_backoff_ms: u64,
    /// How long one HTTP request may take.
    #[serde(default = "default_attempt_timeout_ms")]
    #[schemars(range(min = 100, max = 25_000))]
    attempt_timeout_ms: u64,
    /// The whole trigger ends within this; attempts and waits that would not fit are not
    /// started.
    #[serde(default = "default_max_total_ms")]
    #[schemars(range(min = 100, max = MAX_MAX_TOTAL_MS))]
    max_total_ms: u64,
    /// How long delivered messages, and so their idempotency keys, are kept. Dead letters
    /// stay until redelivered.
    #[serde(default = "default_retention_hours")]
    #[schemars(range(min = 1, max = MAX_RETENTION_HOURS))]
    retention_hours: u64,
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}
fn default_initial_backoff_ms() -> u64 {
    DEFAULT_INITIAL_BACKOFF_MS
}
fn default_max_backoff_ms() -> u64 {
    DEFAULT_MAX_BACKOFF_MS
}
fn default_attempt_timeout_ms() -> u64 {
    DEFAULT_ATTEMPT_TIMEOUT_MS
}
fn default_max_total_ms() -> u64 {
    DEFAULT_MAX_TOTAL_MS
}
fn default_retention_hours() -> u64 {
    DEFAULT_RETENTION_HOURS
}

fn invalid(pointer: &str, detail: impl Into<String>) -> ProviderError {
    ProviderError::field(ErrorCode::ConfigInvalid, pointer, detail)
}

/// A rule the schema cannot state: between two fields, or about a resolved secret (the schema
/// only sees its reference), or the finer points of URLs and CIDR networks (ADR 23).
fn unprocessable(pointer: &str, detail: impl Into<String>) -> ProviderError {
    ProviderError::field(ErrorCode::ConfigUnprocessable, pointer, detail)
}

impl WebhookConfig {
    /// Reads a resolved config. Bounds are checked here too, not only by the schema, because
    /// a factory can be started without the runtime (tests, other hosts).
    pub fn from_value(config: Value) -> Result<Self, ProviderError> {
        let raw: WebhookConfigFields = parse_config(config)?;
        let mut endpoints = BTreeMap::new();
        for (name, endpoint) in raw.endpoints {
            let pointer = format!("/endpoints/{name}");
            if !valid_endpoint_name(&name) {
                return Err(invalid(
                    &pointer,
                    "endpoint names are 1 to 64 of a-z 0-9 _ . - starting with a letter or digit",
                ));
            }
            let endpoint = Endpoint {
                url: parse_url(&endpoint.url, &format!("{pointer}/url"))?,
                key: parse_secret(&endpoint.secret, &format!("{pointer}/secret"))?,
            };
            endpoints.insert(name, endpoint);
        }
        let allowed_networks = raw
            .allowed_networks
            .map(|networks| {
                networks
                    .iter()
                    .enumerate()
                    .map(|(i, network)| {
                        network.parse::<IpNet>().map_err(|_| {
                            unprocessable(
                                &format!("/allowed_networks/{i}"),
                                format!("{network:?} is not a CIDR network such as 10.0.0.0/8"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()
            })
            .transpose()?;
        let ms = |value: u64, min: u64, max: u64, pointer: &str| {
            if (min..=max).contains(&value) {
                Ok(Duration::from_millis(value))
            } else {
                Err(invalid(
                    pointer,
                    format!("must be between {min} and {max} ms, got {value}"),
                ))
            }
        };
        if !(1..=MAX_MAX_ATTEMPTS).contains(&raw.max_attempts) {
            return Err(invalid(
                "/max_attempts",
                format!("must be between 1 and {MAX_MAX_ATTEMPTS}"),
            ));
        }
        let config = WebhookConfig {
            endpoints,
            allowed_networks,
            max_attempts: raw.max_attempts,
            initial_backoff: ms(raw.initial_backoff_ms, 1, 60_000, "/initial_backoff_ms")?,
            max_backoff: ms(raw.max_backoff_ms, 1, 60_000, "/max_backoff_ms")?,
            attempt_timeout: ms(raw.attempt_timeout_ms, 100, 25_000, "/attempt_timeout_ms")?,
            max_total: ms(raw.max_total_ms, 100, MAX_MAX_TOTAL_MS, "/max_total_ms")?,
            retention: Duration::from_secs(raw.retention_hours.saturating_mul(3600)),
        };
        if !(1..=MAX_RETENTION_HOURS).contains(&raw.retention_hours) {
            return Err(invalid(
                "/retention_hours",
                format!("must be between 1 and {MAX_RETENTION_HOURS}"),
            ));
        }
        if config.max_backoff < config.initial_backoff {
            return Err(unprocessable(
                "/max_backoff_ms",
                "must be at least initial_backoff_ms",
            ));
        }
        Ok(config)
    }
}

fn valid_endpoint_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// An `http(s)://` URL with a host. The URL is never quoted back: it may carry a token. The
/// schema's pattern refused the rest of a URL written in the config; what is left (a resolved
/// reference, a host the URL standard refuses) is 422.
fn parse_url(text: &str, pointer: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(text).map_err(|e| unprocessable(pointer, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(unprocessable(pointer, "must be an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(unprocessable(
            pointer,
            "must not carry credentials; receivers authenticate the signature",
        ));
    }
    Ok(url)
}

/// `whsec_` + base64 of 24 to 64 bytes, as Standard Webhooks issues secrets: the resolved
/// value, which the schema never sees, so a wrong one is 422.
fn parse_secret(text: &str, pointer: &str) -> Result<SigningKey, ProviderError> {
    let encoded = text.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        unprocessable(
            pointer,
            "must resolve to a Standard Webhooks secret: whsec_ followed by base64",
        )
    })?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| unprocessable(pointer, "the part after whsec_ is not base64"))?;
    if !SECRET_BYTES.contains(&bytes.len()) {
        return Err(unprocessable(
            pointer,
            format!(
                "the secret is {} bytes; Standard Webhooks secrets are {} to {}",
                bytes.len(),
                SECRET_BYTES.start(),
                SECRET_BYTES.end()
            ),
        ));
    }
    Ok(SigningKey(bytes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::schema::Compiled;

    use super::*;

    fn schema() -> Value {
        switchyard_spi::config_schema::<WebhookConfigFields>()
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn an_empty_config_has_no_endpoints_and_the_schema_defaults() {
        let config = WebhookConfig::from_value(json!({})).unwrap();
        assert!(config.endpoints.is_empty());
        let schema = schema();
        assert_eq!(
            schema["properties"]["max_attempts"]["default"],
            json!(config.max_attempts)
        );
        assert_eq!(
            schema["properties"]["max_total_ms"]["default"],
            json!(config.max_total.as_millis())
        );
    }

    #[test]
    fn the_stored_schema_takes_references_and_refuses_plain_secrets() {
        let schema = Compiled::new(&schema(), "integration/webhook#config").unwrap();
        let stored = json!({
            "endpoints": {"erp-orders": {"url": "https://hooks.example/in", "secret": "secret://env/ORDERS_WHSEC"}},
            "allowed_networks": ["10.20.0.0/16"]
        });
        assert!(schema.check(&stored).is_empty());
        let plain = json!({"endpoints": {"a": {"url": "https://h.example", "secret": SECRET}}});
        assert!(!schema.check(&plain).is_empty());
        let reference = "secret://env/W";
        for refused in [
            json!({"endpoints": {"Upper": {"url": "https://h.example", "secret": reference}}}),
            json!({"endpoints": {"a": {"url": "ftp://h.example", "secret": reference}}}),
            json!({"endpoints": {"a": {"url": "https://", "secret": reference}}}),
            json!({"endpoints": {"a": {"url": "https://u:p@h.example/", "secret": reference}}}),
            json!({"endpoints": {"a": {"url": "secret://env/", "secret": reference}}}),
            json!({"endpoints": {"a": {"url": "https://h.example", "secret": "secret://vault/kv#k"}}}),
            json!({"endpoints": {"a": {"url": "https://h.example"}}}),
            json!({"endpoints": {"a": {"url": "https://h.example", "secret": reference, "x": 1}}}),
            json!({"allowed_networks": null}),
            json!({"allowed_networks": ["localhost"]}),
            json!({"allowed_networks": vec!["10.0.0.0/8"; 65]}),
            json!({"max_attempts": 21}),
            json!({"initial_backoff_ms": 0}),
            json!({"max_backoff_ms": 60_001}),
            json!({"attempt_timeout_ms": 99}),
            json!({"max_total_ms": 25_001}),
            json!({"retention_hours": 8785}),
            json!({"retries": 3}),
        ] {
            assert!(!schema.check(&refused).is_empty(), "{refused}");
        }
    }

    #[test]
    fn bad_secrets_and_urls_are_config_unprocessable_without_quoting_them() {
        for (url, secret, pointer) in [
            (
                "https://h.example/t0ken",
                "whsec_tooshort",
                "/endpoints/a/secret",
            ),
            (
                "https://h.example/t0ken",
                "secret://env/UNRESOLVED",
                "/endpoints/a/secret",
            ),
            ("ftp://h.example/t0ken", SECRET, "/endpoints/a/url"),
            ("https://user:t0ken@h.example/", SECRET, "/endpoints/a/url"),
            ("https://1.2.3.999/t0ken", SECRET, "/endpoints/a/url"),
        ] {
            let err = WebhookConfig::from_value(
                json!({"endpoints": {"a": {"url": url, "secret": secret}}}),
            )
            .unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigUnprocessable);
            assert_eq!(err.errors[0].pointer, pointer, "{url} {secret}");
            assert!(!err.detail.contains("t0ken") && !err.detail.contains(secret));
        }
    }

    #[test]
    fn bounds_and_networks_are_checked() {
        let schema = Compiled::new(&schema(), "integration/webhook#config").unwrap();
        for (bad, pointer, code) in [
            (
                json!({"max_attempts": 0}),
                "/max_attempts",
                ErrorCode::ConfigInvalid,
            ),
            (
                json!({"max_total_ms": 60_000}),
                "/max_total_ms",
                ErrorCode::ConfigInvalid,
            ),
            (
                json!({"allowed_networks": ["localhost"]}),
                "/allowed_networks/0",
                ErrorCode::ConfigUnprocessable,
            ),
            (
                json!({"initial_backoff_ms": 500, "max_backoff_ms": 100}),
                "/max_backoff_ms",
                ErrorCode::ConfigUnprocessable,
            ),
            (
                json!({"allowed_networks": ["10.0.0.0/33"]}),
                "/allowed_networks/0",
                ErrorCode::ConfigUnprocessable,
            ),
        ] {
            let err = WebhookConfig::from_value(bad.clone()).unwrap_err();
            assert_eq!(err.errors[0].pointer, pointer, "{bad}");
            assert_eq!(err.code, code, "{bad}");
            // The schema accepts these; only the code refuses them.
            if bad["allowed_networks"][0] != "localhost" && code == ErrorCode::ConfigUnprocessable {
                assert!(schema.check(&bad).is_empty(), "{bad}");
            }
        }
        let config = WebhookConfig::from_value(
            json!({"allowed_networks": ["127.0.0.0/8", "::1/128"], "max_attempts": 3}),
        )
        .unwrap();
        assert_eq!(config.allowed_networks.map(|n| n.len()), Some(2));
        assert_eq!(config.max_attempts, 3);
    }

    #[test]
    fn debug_never_shows_a_key_or_url() {
        let config = WebhookConfig::from_value(
            json!({"endpoints": {"a": {"url": "https://h.example/t0ken", "secret": SECRET}}}),
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("t0ken") && !shown.contains("MfKQ"),
            "{shown}"
        );
    }
}
