//! Inbound webhooks: `POST /inbound/{tenant}/integration/{name}`, the one route a third party
//! (Shopify, Salesforce) calls without a Switchyard API key. The gateway and the runtime read
//! such a request by this one code, so the policy judges exactly the call that runs: the
//! integration engine's `receive` with the sender's headers as params and the raw body as the
//! payload. The engine verifies the sender's signature over that body itself.

use http::HeaderMap;
use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, Problem};

/// The only domain whose engines take inbound webhooks.
pub const DOMAIN: &str = "integration";

/// The action an inbound webhook runs.
pub const ACTION: &str = "receive";

/// How the caller of an inbound webhook is named (`inbound:integration/shopify`): not a key
/// or a token, the route itself.
pub const SUBJECT_PREFIX: &str = "inbound:";

/// Headers the engine never sees: the sender's credentials for Switchyard itself (a webhook
/// carries its own signature instead), and what the hop from the gateway to the runtime
/// rewrites (length, framing, request id, trace), so that the headers the gateway's policy
/// judged are the ones the runtime hands the engine, over a socket or in process.
const DROPPED: [&str; 15] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Internal headers between the gateway and the runtime (signed context, error code); the
/// gateway removes any a client sent.
const INTERNAL_PREFIX: &str = "x-switchyard-";

/// The answer to an inbound webhook for a tenant that does not exist or an engine that takes
/// no webhooks: the one a bad signature gets, so a sender learns no tenant's or engine's name.
pub fn refused() -> Problem {
    Problem::new(
        ErrorCode::SignatureInvalid,
        "the webhook's signature does not verify",
    )
}

/// The tenant and engine an inbound path names: `["inbound", tenant, "integration", name]`.
pub fn target<'a>(segments: &[&'a str]) -> Option<(&'a str, &'a str)> {
    match segments {
        ["inbound", tenant, DOMAIN, name] => Some((tenant, name)),
        _ => None,
    }
}

/// The subject an inbound call to engine `name` runs as.
pub fn subject(name: &str) -> String {
    format!("{SUBJECT_PREFIX}{DOMAIN}/{name}")
}

/// The params of the `receive` call: `{"headers": {name: value}}`, names lower-cased (as HTTP
/// has them), a repeated header's values joined by `", "` (RFC 9110 §5.3), a value that is
/// not text read lossily.
pub fn params(headers: &HeaderMap) -> Value {
    let mut kept: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if DROPPED.contains(&name) || name.starts_with(INTERNAL_PREFIX) {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes());
        match kept.get_mut(name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                kept.insert(name.to_owned(), Value::String(value.into_owned()));
            }
        }
    }
    json!({ "headers": kept })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_an_integration_engine_under_a_tenant_is_a_target() {
        assert_eq!(
            target(&["inbound", "acme", "integration", "shopify"]),
            Some(("acme", "shopify"))
        );
        for other in [
            &["inbound", "acme", "db", "sqlite"][..],
            &["inbound", "acme", "integration"],
            &["providers", "acme", "integration", "shopify"],
        ] {
            assert_eq!(target(other), None, "{other:?}");
        }
        assert_eq!(subject("shopify"), "inbound:integration/shopify");
    }

    #[test]
    fn the_senders_headers_are_kept_without_credentials_or_what_the_hop_rewrites() {
        let mut headers = HeaderMap::new();
        let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
            h.append(name, HeaderValue::from_static(value));
        };
        set(&mut headers, "X-Shopify-Hmac-Sha256", "c2lnbmF0dXJl");
        set(&mut headers, "X-Shopify-Topic", "orders/create");
        set(&mut headers, "content-type", "application/json");
        set(&mut headers, "accept", "text/plain");
        set(&mut headers, "accept", "application/json");
        set(&mut headers, "authorization", "Bearer sk_live");
        set(&mut headers, "cookie", "session=1");
        set(&mut headers, "x-switchyard-context", "forged");
        set(&mut headers, "content-length", "12");
        set(&mut headers, "x-request-id", "r1");
        headers.append("x-binary", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        assert_eq!(
            params(&headers),
            json!({"headers": {
                "x-shopify-hmac-sha256": "c2lnbmF0dXJl",
                "x-shopify-topic": "orders/create",
                "content-type": "application/json",
                "accept": "text/plain, application/json",
                "x-binary": "caf\u{fffd}",
            }})
        );
    }
}
