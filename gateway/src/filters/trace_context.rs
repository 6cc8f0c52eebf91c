//! Step 2: W3C Trace Context. A valid `traceparent` (and its `tracestate`) is propagated to
//! the runtime unchanged; an absent or malformed one is replaced by a fresh trace, and its
//! `tracestate` dropped, as the W3C recommendation asks.

use http::HeaderValue;
use rand::RngCore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

pub fn accept(traceparent: Option<&HeaderValue>, tracestate: Option<&HeaderValue>) -> TraceContext {
    match traceparent
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid(v))
    {
        Some(valid) => TraceContext {
            traceparent: valid.to_owned(),
            tracestate: tracestate
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= 512)
                .map(str::to_owned),
        },
        None => TraceContext {
            traceparent: fresh(),
            tracestate: None,
        },
    }
}

/// `version-traceid-parentid-flags`, lowercase hex, ids not all zero, version not `ff`;
/// version 00 has exactly these four fields, later versions may append more.
fn is_valid(value: &str) -> bool {
    let fields: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    match fields.as_slice() {
        [version, trace_id, parent_id, flags, rest @ ..] => {
            hex(version, 2)
                && *version != "ff"
                && (rest.is_empty() || *version != "00")
                && hex(trace_id, 32)
                && nonzero(trace_id)
                && hex(parent_id, 16)
                && nonzero(parent_id)
                && hex(flags, 2)
        }
        _ => false,
    }
}

fn fresh() -> String {
    let mut trace_id = [0u8; 16];
    let mut parent_id = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut trace_id);
    rand::thread_rng().fill_bytes(&mut parent_id);
    // A random id is all zero with probability 2^-128; the W3C forbids it, so nudge it.
    trace_id[15] |= 1;
    parent_id[7] |= 1;
    format!("00-{}-{}-00", hex::encode(trace_id), hex::encode(parent_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_and_its_tracestate_pass_unchanged() {
        let ctx = accept(
            Some(&HeaderValue::from_static(VALID)),
            Some(&HeaderValue::from_static("vendor=abc")),
        );
        assert_eq!(
            ctx,
            TraceContext {
                traceparent: VALID.into(),
                tracestate: Some("vendor=abc".into())
            }
        );
    }

    #[test]
    fn malformed_or_missing_traceparents_start_a_new_trace_without_tracestate() {
        let bad = [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ];
        for value in bad {
            let ctx = accept(
                Some(&HeaderValue::from_static(value)),
                Some(&HeaderValue::from_static("vendor=abc")),
            );
            assert_ne!(ctx.traceparent, value);
            assert!(is_valid(&ctx.traceparent), "{}", ctx.traceparent);
            assert_eq!(ctx.tracestate, None);
        }
        assert!(is_valid(&accept(None, None).traceparent));
        assert!(is_valid(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"
        ));
    }
}
