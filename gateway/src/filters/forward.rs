//! Step 8: the request goes to the runtime carrying the verified context, signed with the
//! internal key. Internal headers a client sent are removed first, so only the gateway's
//! own context ever reaches the runtime.
//!
//! The signature covers the body ([`BodySeal`]): by its SHA-256 when the gateway holds it
//! whole (read for the policy or an idempotency key, or empty), else by a tag appended to the
//! streamed body as it passes ([`tag_chunk`]), the declared length growing by the tag's.

use bytes::{Bytes, BytesMut};
use pingora::http::RequestHeader;
use switchyard_platform_store::internal_auth::{
    BODY_TAG_LEN, BodySeal, CONTEXT_HEADER, INTERNAL_HEADER_PREFIX, InternalKey, SIGNATURE_HEADER,
    VerifiedContext, unix_now,
};

use crate::RequestCtx;

/// Called once per attempt, before the body is sent: a retried attempt is signed and tagged
/// afresh, its body sent again from the start.
pub fn prepare(
    upstream: &mut RequestHeader,
    ctx: &mut RequestCtx,
    key: &InternalKey,
) -> pingora::Result<()> {
    ctx.body_tag = None;
    let smuggled: Vec<_> = upstream
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with(INTERNAL_HEADER_PREFIX))
        .cloned()
        .collect();
    for name in smuggled {
        upstream.remove_header(&name);
    }
    upstream.insert_header("x-request-id", &ctx.request_id)?;
    upstream.remove_header("traceparent");
    upstream.remove_header("tracestate");
    if let Some(trace) = &ctx.trace {
        upstream.insert_header("traceparent", &trace.traceparent)?;
        if let Some(state) = &trace.tracestate {
            upstream.insert_header("tracestate", state)?;
        }
    }
    if let Some(identity) = &ctx.identity {
        let declared = declared_length(upstream);
        let body = match (&ctx.inspected_body, declared) {
            (Some(body), _) => BodySeal::of(body),
            (None, Some(0)) => BodySeal::of(b""),
            (None, _) => BodySeal::Tagged,
        };
        let verified = VerifiedContext {
            tenant: identity.tenant.to_string(),
            subject: identity.subject.clone(),
            scopes: identity.scopes.to_header_value(),
            request_id: ctx.request_id.clone(),
            issued_at: unix_now(),
            body,
        };
        let path = upstream
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned();
        let (context, signature) = key.sign(upstream.method.as_str(), &path, &verified);
        if verified.body == BodySeal::Tagged {
            ctx.body_tag = Some(key.body_tagger(&signature));
            if let Some(length) = declared {
                upstream.insert_header("content-length", (length + BODY_TAG_LEN).to_string())?;
            }
        }
        upstream.insert_header(CONTEXT_HEADER, context)?;
        upstream.insert_header(SIGNATURE_HEADER, signature)?;
    }
    Ok(())
}

/// The body's declared length: its `Content-Length`, 0 when it declares no body at all (no
/// length and not chunked), `None` when it is chunked.
fn declared_length(header: &RequestHeader) -> Option<usize> {
    if header.headers.contains_key("transfer-encoding") {
        return None;
    }
    match header.headers.get("content-length") {
        Some(value) => value.to_str().ok().and_then(|v| v.trim().parse().ok()),
        None => Some(0),
    }
}

/// Feeds one chunk of a streamed body to its tag, and appends the tag after the last chunk.
pub fn tag_chunk(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end_of_stream: bool) {
    let Some(tagger) = ctx.body_tag.as_mut() else {
        return;
    };
    if let Some(chunk) = body.as_ref() {
        tagger.update(chunk);
    }
    if end_of_stream && let Some(tagger) = ctx.body_tag.take() {
        let mut last = BytesMut::from(body.take().unwrap_or_default());
        last.extend_from_slice(&tagger.finish());
        *body = Some(last.freeze());
    }
}
