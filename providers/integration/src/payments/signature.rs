//! Stripe's webhook signature: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, where each
//! `v1` is the hex HMAC-SHA256 of `"<t>.<raw body>"` keyed with the endpoint's whole
//! `whsec_…` secret (several while a secret is being rolled). A delivery verifies when one
//! `v1` matches (compared in constant time) and `t` is within the tolerance of now, so a
//! captured delivery cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchyard_spi::{ErrorCode, ProviderError};

use crate::http::Secret;

fn refused(detail: &str) -> ProviderError {
    ProviderError::new(ErrorCode::SignatureInvalid, detail.to_owned())
}

/// Checks `header` against `body` at unix time `now`.
pub(super) fn verify(
    secret: &Secret,
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_s: u64,
) -> Result<(), ProviderError> {
    let header = header.ok_or_else(|| refused("no Stripe-Signature header"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v1)) => signatures.extend(hex::decode(v1).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| refused("Stripe-Signature carries no timestamp"))?;
    if signatures.is_empty() {
        return Err(refused("Stripe-Signature carries no v1 signature"));
    }
    let verifies = signatures.iter().any(|signature| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).expect("HMAC takes any key");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(signature).is_ok()
    });
    if !verifies {
        return Err(refused(
            "no v1 signature of Stripe-Signature matches the body under the tenant's webhook secret",
        ));
    }
    if now.abs_diff(t) > tolerance_s {
        return Err(refused(
            "the signed timestamp is outside the tolerance window (a replay, or a clock off)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `t=1700000000`, body `{}`, secret `whsec_test`: the digest computed with openssl.
    const V1: &str = "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91";

    fn secret() -> Secret {
        Secret("whsec_test".into())
    }

    #[test]
    fn a_matching_v1_within_the_window_verifies_and_anything_else_is_refused() {
        let t = 1_700_000_000;
        let header = format!("t={t},v0=ignored,v1=00ff,v1={V1}");
        verify(&secret(), Some(&header), b"{}", t + 10, 300).unwrap();
        for (header, body, now) in [
            (format!("t={t},v1={V1}"), &b"{} "[..], t),
            (format!("t={},v1={V1}", t + 1), &b"{}"[..], t),
            (format!("t={t},v1={V1}"), &b"{}"[..], t + 301),
            (format!("t={t}"), &b"{}"[..], t),
            (format!("v1={V1}"), &b"{}"[..], t),
        ] {
            let err = verify(&secret(), Some(&header), body, now, 300).unwrap_err();
            assert_eq!(err.code, ErrorCode::SignatureInvalid, "{header}");
        }
        let err = verify(
            &Secret("whsec_other".into()),
            Some(&format!("t={t},v1={V1}")),
            b"{}",
            t,
            300,
        )
        .unwrap_err();
        assert!(!err.detail.contains("whsec"));
        assert!(verify(&secret(), None, b"{}", t, 300).is_err());
    }
}
