//! Idempotency keys (Stripe's semantics, as in the IETF `Idempotency-Key` draft): a POST sent
//! again with the same key replays the first response instead of running twice.
//!
//! The records live in the platform store (`PlatformStore::idempotency_*`), shared by every
//! gateway instance. This module holds what the proxy needs around them: the config, parsing
//! the header, fingerprinting the request, mapping refusals to problems, and deciding which
//! responses are kept and which of their headers are replayed.
//!
//! What one tenant's records may hold is the operator's `idempotency_bytes_per_tenant`
//! (`[tenancy.quotas]`), which the store enforces: a tenant at its quota is refused new keyed
//! requests with `quota_exceeded` (429) before they run, and never served without the
//! protection it asked for.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_platform_store::Begin;

/// The request header carrying the key.
pub const KEY_HEADER: &str = "idempotency-key";
/// Set to `true` on a replayed response, so a client can tell a replay from a fresh run.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// How long a request finding its key in flight waits for the record to settle before it is
/// refused with 409 (at most the upstream timeout, when that is shorter).
///
/// A proxied response is stored after it has left the gateway: Pingora's body filter, which
/// sees the last byte, cannot wait for the store, so the record is completed in `logging`. A
/// client that retries the moment it has the answer can therefore find the record in flight for
/// the few milliseconds that write takes, and would get 409 for a request that was answered.
/// Waiting covers that gap (whichever gateway instance served the first request, since the
/// record is all they share) while a duplicate of a request that is really still running still
/// gets 409, only later. In-process answers are stored before they are written and never
/// leave such a gap. A few seconds spans a slow or busy store with margin; a client that
/// waited longer would see its own timeout rather than a faster 409.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);

/// The pause before the poll after `polls` polls of a record in flight: 5 ms doubling to 100
/// ms, so a record completed just after the response left is seen within milliseconds, and a
/// duplicate of a long request does not hammer the store (each poll takes the key's lock).
pub fn in_flight_poll_delay(polls: u32) -> Duration {
    Duration::from_millis(5u64.saturating_mul(1 << polls.min(5)).min(100))
}

/// Response headers kept with a stored response and replayed with it. Everything else is
/// per-exchange (`date`, `x-request-id`, `content-length` recomputed on replay) or
/// connection-level, and replaying it would lie about the replay.
const STORED_HEADERS: [&str; 3] = ["content-type", "content-language", "location"];

/// Idempotency settings; a missing field takes its default.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long a key is remembered; past it the key is free again and nothing replays.
    pub retention_secs: u64,
    /// How long a request holds its key before another request may take it over, which
    /// covers a gateway that died mid-request. Keep it above the slowest upstream answer, or a
    /// retry of a slow request runs concurrently with it.
    pub lease_secs: u64,
    /// Responses with a larger body are not stored: the record is released instead, so a
    /// retry runs the request again rather than the store filling with large payloads.
    pub max_stored_body_bytes: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            retention_secs: 86_400,
            lease_secs: 60,
            max_stored_body_bytes: 1024 * 1024,
        }
    }
}

impl IdempotencyConfig {
    /// The lease in the store's unit; saturates rather than wrapping on absurd configs.
    pub fn lease_ms(&self) -> i64 {
        secs_to_ms(self.lease_secs)
    }

    /// The retention in the store's unit; saturates rather than wrapping on absurd configs.
    pub fn retention_ms(&self) -> i64 {
        secs_to_ms(self.retention_secs)
    }

    /// Whether a response is kept for replay; otherwise the record is released.
    ///
    /// 2xx and 4xx are outcomes of the request itself and must replay. 5xx (and an upstream
    /// that never answered) may not have run at all, so a retry must run again. 408 and 429
    /// are 4xx but only say "not now": storing them would refuse the retry they invite.
    pub fn should_store(&self, status: u16, body_len: usize) -> bool {
        let outcome = (200..300).contains(&status) || (400..500).contains(&status);
        outcome && status != 408 && status != 429 && body_len <= self.max_stored_body_bytes
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The key, if the request has one. A key must be 1 to 255 visible ASCII characters; anything
/// else is refused rather than ignored, because silently running a request the client meant
/// to protect is the one outcome idempotency exists to prevent. The detail does not echo the
/// key back.
pub fn parse_key(header: Option<&HeaderValue>) -> Result<Option<String>, Problem> {
    let Some(value) = header else { return Ok(None) };
    value
        .to_str()
        .ok()
        .filter(|key| (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
        .map(|key| Some(key.to_owned()))
        .ok_or_else(|| {
            Problem::new(
                ErrorCode::RequestInvalid,
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            )
        })
}

/// SHA-256 of the request a key is bound to. Each part is length-prefixed, so moving bytes
/// between method, path and body cannot produce the same fingerprint.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), path_and_query.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The refusal for a key the request may not use now; `None` when it proceeds or replays.
/// The details are fixed text: echoing the key or body would copy caller data into error
/// logs and client error displays.
pub fn problem_for(begin: &Begin) -> Option<Problem> {
    match begin {
        Begin::Proceed | Begin::Replay(_) => None,
        Begin::InFlight => Some(Problem::new(
            ErrorCode::IdempotencyInFlight,
            "a request with this Idempotency-Key is still being processed; retry later",
        )),
        Begin::KeyReused => Some(Problem::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different method, path or body; \
             use a new key for a new request",
        )),
        // Retryable: records past their retention stop counting.
        Begin::QuotaExceeded => Some(
            Problem::new(
                ErrorCode::QuotaExceeded,
                "this tenant's stored idempotent responses fill its quota; the request did not \
                 run: retry once older keys expire",
            )
            .with_retryable(true),
        ),
    }
}

/// The response headers to store for replay, in order, as `(lowercase name, value)`.
/// Values that are not visible text are skipped: they could not be replayed faithfully.
pub fn storable_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    STORED_HEADERS
        .iter()
        .flat_map(|name| {
            headers
                .get_all(*name)
                .iter()
                .filter_map(move |v| Some(((*name).to_owned(), v.to_str().ok()?.to_owned())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_platform_store::StoredResponse;

    #[test]
    fn config_defaults_apply_to_missing_fields_and_unknown_fields_are_refused() {
        let config: IdempotencyConfig = serde_json::from_str(r#"{"lease_secs": 5}"#).unwrap();
        assert_eq!(
            config,
            IdempotencyConfig {
                lease_secs: 5,
                ..IdempotencyConfig::default()
            }
        );
        assert_eq!(config.lease_ms(), 5_000);
        assert_eq!(config.retention_ms(), 86_400_000);
        assert_eq!(config.max_stored_body_bytes, 1_048_576);
        assert!(serde_json::from_str::<IdempotencyConfig>(r#"{"lease": 5}"#).is_err());
        let absurd = IdempotencyConfig {
            retention_secs: u64::MAX,
            ..IdempotencyConfig::default()
        };
        assert_eq!(absurd.retention_ms(), i64::MAX);
    }

    #[test]
    fn outcomes_are_stored_and_transient_or_oversized_responses_are_not() {
        let config = IdempotencyConfig {
            max_stored_body_bytes: 10,
            ..IdempotencyConfig::default()
        };
        for status in [200, 201, 204, 400, 404, 409, 422] {
            assert!(config.should_store(status, 10), "{status}");
        }
        for status in [100, 302, 408, 429, 500, 502, 503, 504] {
            assert!(!config.should_store(status, 0), "{status}");
        }
        assert!(!config.should_store(200, 11));
    }

    #[test]
    fn a_key_in_flight_is_polled_soon_then_at_most_every_100_ms_within_the_wait() {
        let delays: Vec<u64> = (0..8)
            .map(|n| in_flight_poll_delay(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 100, 100, 100]);
        assert_eq!(in_flight_poll_delay(u32::MAX), Duration::from_millis(100));
        assert!(IN_FLIGHT_WAIT >= Duration::from_secs(1));
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert_eq!(parse_key(None).unwrap(), None);
        for good in [
            "a",
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
            "\"quoted\"",
            &"k".repeat(255),
        ] {
            let header = HeaderValue::from_str(good).unwrap();
            assert_eq!(parse_key(Some(&header)).unwrap().as_deref(), Some(good));
        }
        let too_long = "k".repeat(256);
        for bad in [
            HeaderValue::from_static(""),
            HeaderValue::from_static("has space"),
            HeaderValue::from_static("tab\there"),
            HeaderValue::from_str(&too_long).unwrap(),
            HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        ] {
            let problem = parse_key(Some(&bad)).unwrap_err();
            assert_eq!(problem.code, ErrorCode::RequestInvalid, "{bad:?}");
            assert_eq!(problem.status(), 400);
        }
    }

    #[test]
    fn the_published_key_schema_admits_exactly_the_keys_the_gateway_accepts() {
        let schema = switchyard_contracts::schema::Compiled::new(
            &switchyard_contracts::openapi::idempotency_key_schema(),
            "Idempotency-Key",
        )
        .unwrap();
        let (longest, too_long) = ("k".repeat(255), "k".repeat(256));
        for key in [
            "a",
            "order-17:retry#2",
            "~!",
            &longest,
            &too_long,
            "",
            "has space",
            "tab\there",
            "clé",
        ] {
            let header = HeaderValue::from_bytes(key.as_bytes()).unwrap();
            assert_eq!(
                parse_key(Some(&header)).is_ok(),
                schema.check(&serde_json::json!(key)).is_empty(),
                "{key:?}"
            );
        }
    }

    #[test]
    fn the_fingerprint_covers_method_path_query_and_body_without_ambiguity() {
        let base = fingerprint("POST", "/v1/db/x?a=1", b"{}");
        assert_eq!(base, fingerprint("POST", "/v1/db/x?a=1", b"{}"));
        for other in [
            fingerprint("PUT", "/v1/db/x?a=1", b"{}"),
            fingerprint("POST", "/v1/db/y?a=1", b"{}"),
            fingerprint("POST", "/v1/db/x?a=2", b"{}"),
            fingerprint("POST", "/v1/db/x?a=1", b"{ }"),
        ] {
            assert_ne!(base, other);
        }
        // The same bytes split differently between parts are different requests.
        assert_ne!(
            fingerprint("POST", "/ab", b""),
            fingerprint("POST", "/a", b"b")
        );
    }

    #[test]
    fn only_in_flight_reused_and_over_quota_keys_are_refused() {
        let replay = Begin::Replay(StoredResponse {
            status: 201,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        });
        assert_eq!(problem_for(&Begin::Proceed), None);
        assert_eq!(problem_for(&replay), None);

        let in_flight = problem_for(&Begin::InFlight).unwrap();
        assert_eq!(in_flight.code, ErrorCode::IdempotencyInFlight);
        assert_eq!(in_flight.status(), 409);
        assert!(in_flight.retryable);
        let reused = problem_for(&Begin::KeyReused).unwrap();
        assert_eq!(reused.code, ErrorCode::IdempotencyKeyReused);
        assert_eq!(reused.status(), 422);
        assert!(!reused.retryable);
        let full = problem_for(&Begin::QuotaExceeded).unwrap();
        assert_eq!(full.code, ErrorCode::QuotaExceeded);
        assert_eq!(full.status(), 429);
        assert!(full.retryable);
    }

    #[test]
    fn only_content_describing_headers_are_stored() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("location", HeaderValue::from_static("/v1/things/7"));
        headers.insert("x-request-id", HeaderValue::from_static("req-1"));
        headers.insert(
            "date",
            HeaderValue::from_static("Tue, 01 Jul 2025 00:00:00 GMT"),
        );
        headers.insert("content-length", HeaderValue::from_static("2"));
        headers.insert(
            "content-language",
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        assert_eq!(
            storable_headers(&headers),
            [
                ("content-type".to_owned(), "application/json".to_owned()),
                ("location".to_owned(), "/v1/things/7".to_owned()),
            ]
        );
    }
}
