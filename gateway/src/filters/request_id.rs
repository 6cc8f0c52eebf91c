//! Step 1: every request gets an id, echoed on every response and passed to the runtime.

use http::HeaderValue;

/// The caller's id when it is a sane token (so it can be logged and echoed safely), else a
/// fresh time-ordered UUID.
pub fn assign(given: Option<&HeaderValue>) -> String {
    given
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
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
}
