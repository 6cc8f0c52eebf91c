//! The Switchyard gateway, on Pingora.
//!
//! A request meets these filters in this order, each in its own module, each answering its
//! refusals as problem+json with the request id:
//!
//! 1. [`filters::request_id`]: take the caller's `X-Request-Id` or make one;
//! 2. [`filters::route`]: classify the path (public, catalog read, admin, invoke) or 404;
//! 3. [`filters::authenticate`]: a tenant-scoped API key (`Authorization: Bearer sy_...`) → 401;
//! 4. [`filters::tenant`]: the key's tenant; a disagreeing `X-Tenant-Id` → 403;
//! 5. [`filters::authorize`]: the key's scopes allow the operation → else 403;
//! 6. [`filters::forward`]: proxy to the runtime with the verified context signed into
//!    internal headers (client-sent internal headers are dropped).

pub mod filters;
mod problem;

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_runtime::internal_auth::InternalKey;

use filters::authenticate::{Authenticator, Identity};
use filters::route::Route;

pub use filters::authenticate::KEY_CACHE_TTL;

/// What the filters learn about one request, in the order they learn it.
#[derive(Default)]
pub struct RequestCtx {
    pub request_id: String,
    pub route: Option<Route>,
    pub identity: Option<Identity>,
}

pub struct Gateway {
    upstream: SocketAddr,
    authenticator: Authenticator,
    internal_key: InternalKey,
}

impl Gateway {
    pub fn new(
        upstream: SocketAddr,
        authenticator: Authenticator,
        internal_key: InternalKey,
    ) -> Self {
        Gateway {
            upstream,
            authenticator,
            internal_key,
        }
    }

    async fn run_filters(&self, session: &Session, ctx: &mut RequestCtx) -> Result<(), Problem> {
        let header = session.req_header();
        let route = filters::route::classify(&header.method, header.uri.path())?;
        ctx.route = Some(route);
        let Some(operation) = route.operation() else {
            return Ok(());
        };
        let identity = self
            .authenticator
            .authenticate(header.headers.get("authorization"))
            .await?;
        filters::tenant::resolve(&identity, header.headers.get("x-tenant-id"))?;
        filters::authorize::check(&identity, operation, header.uri.path())?;
        ctx.identity = Some(identity);
        Ok(())
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx::default()
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<bool> {
        ctx.request_id =
            filters::request_id::assign(session.req_header().headers.get("x-request-id"));
        match self.run_filters(session, ctx).await {
            Ok(()) => Ok(false),
            Err(refusal) => {
                problem::respond(session, refusal, &ctx.request_id).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        filters::forward::prepare(upstream_request, ctx, &self.internal_key)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        upstream_response.insert_header("x-request-id", &ctx.request_id)?;
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &pingora::Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let problem = match e.esource() {
            pingora::ErrorSource::Upstream => Some(Problem::new(
                ErrorCode::UpstreamUnavailable,
                "the provider runtime could not be reached; retry shortly",
            )),
            pingora::ErrorSource::Downstream => match e.etype() {
                pingora::ErrorType::WriteError
                | pingora::ErrorType::ReadError
                | pingora::ErrorType::ConnectionClosed => None,
                _ => Some(Problem::new(
                    ErrorCode::RequestInvalid,
                    "the request could not be read",
                )),
            },
            _ => Some(Problem::new(
                ErrorCode::Internal,
                "the gateway failed to proxy the request",
            )),
        };
        let error_code = problem.as_ref().map_or(0, |p| p.status());
        if let Some(problem) = problem
            && let Err(write_error) = problem::respond(session, problem, &ctx.request_id).await
        {
            tracing::debug!(error = %write_error, "could not write the error response");
        }
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }
}
