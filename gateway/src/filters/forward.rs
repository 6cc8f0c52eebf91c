//! Step 8: the request goes to the runtime carrying the verified context, signed with the
//! internal key. Internal headers a client sent are removed first, so only the gateway's
//! own context ever reaches the runtime.

use pingora::http::RequestHeader;
use switchyard_runtime::internal_auth::{
    CONTEXT_HEADER, INTERNAL_HEADER_PREFIX, InternalKey, SIGNATURE_HEADER, VerifiedContext,
    unix_now,
};

use crate::RequestCtx;

pub fn prepare(
    upstream: &mut RequestHeader,
    ctx: &RequestCtx,
    key: &InternalKey,
) -> pingora::Result<()> {
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
        let verified = VerifiedContext {
            tenant: identity.tenant.to_string(),
            subject: identity.subject.clone(),
            scopes: identity.scopes.to_header_value(),
            request_id: ctx.request_id.clone(),
            issued_at: unix_now(),
        };
        let path = upstream
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned();
        let (context, signature) = key.sign(upstream.method.as_str(), &path, &verified);
        upstream.insert_header(CONTEXT_HEADER, context)?;
        upstream.insert_header(SIGNATURE_HEADER, signature)?;
    }
    Ok(())
}
