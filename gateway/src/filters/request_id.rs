//! Step 1: every request gets an id, echoed on every response and passed to the runtime.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use uuid::{Builder, Uuid};

/// The caller's id when it is a sane token (so it can be logged and echoed safely), else a
/// fresh time-ordered UUID ([`fresh`]).
pub fn assign(given: Option<&HeaderValue>) -> String {
    given
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(fresh, str::to_owned)
}

/// Bits of the process's random part of an id (RFC 9562 gives UUIDv7 74 bits to fill).
const SEED_BITS: u32 = 34;

/// A UUIDv7 (RFC 9562): the Unix time in milliseconds, then a counter of this process (40
/// bits, so the ids it makes within one millisecond sort in the order it made them), then 34
/// random bits drawn once per process (so two gateways' ids differ). `Uuid::now_v7` draws
/// fresh randomness from the operating system for every id and formats it through `Display`,
/// about 1.3 µs per request; this is a counter increment and a format into a stack buffer.
fn fresh() -> String {
    static SEED: LazyLock<u128> =
        LazyLock::new(|| Uuid::new_v4().as_u128() & ((1 << SEED_BITS) - 1));
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed) & ((1 << 40) - 1));
    // 74 bits: rand_a (12) then rand_b (62), each in its own bytes so the version and
    // variant bits the builder sets overwrite none of them.
    let bits = (count << SEED_BITS) | *SEED;
    let mut bytes = [0u8; 10];
    bytes[..2].copy_from_slice(&((bits >> 62) as u16).to_be_bytes());
    bytes[2..].copy_from_slice(&((bits as u64) & ((1 << 62) - 1)).to_be_bytes());
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let id = Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_and_replaces_the_rest() {
        assert_eq!(assign(Some(&HeaderValue::from_static("req-42"))), "req-42");
        for bad in ["", "has space", "new\tline"] {
            let generated = assign(HeaderValue::from_str(bad).ok().as_ref());
            assert_ne!(generated, bad);
            assert_eq!(generated.len(), 36);
        }
        assert_eq!(assign(None).len(), 36);
        assert_ne!(
            assign(Some(&HeaderValue::from_str(&"a".repeat(129)).unwrap())).len(),
            129
        );
    }

    #[test]
    fn fresh_ids_are_uuid_v7_unique_and_in_order() {
        let ids: Vec<String> = (0..10_000).map(|_| fresh()).collect();
        for id in &ids {
            let parsed = Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 7, "{id}");
            assert_eq!(parsed.hyphenated().to_string(), *id);
        }
        // One process's ids sort in the order they were made, so no two are equal.
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order");
        let millis = |id: &str| {
            let (secs, nanos) = Uuid::parse_str(id)
                .unwrap()
                .get_timestamp()
                .unwrap()
                .to_unix();
            secs * 1000 + u64::from(nanos) / 1_000_000
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now.abs_diff(millis(&ids[0])) < 60_000);
    }
}
