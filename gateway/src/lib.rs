//! The Switchyard gateway, on Pingora.
//!
//! A request meets these filters in this order, each in its own module, each answering its
//! refusals as problem+json with the request id:
//!
//! 1. [`filters::request_id`]: take the caller's `X-Request-Id` or make one;
//! 2. [`filters::trace_context`]: accept a valid W3C `traceparent` or start a trace;
//! 3. [`filters::route`]: classify the path (public, catalog read, admin, invoke) or 404; the
//!    OpenAI-compatible `/v1/*` routes are `ai/gateway`'s read and invokes
//!    ([`switchyard_request::openai`]), and their refusals are written in OpenAI's error shape;
//! 4. [`filters::body_limit`]: a declared body over the limit → 413;
//! 5. [`filters::authenticate`]: an API key, an OIDC token or a client certificate → 401; for
//!    an inbound webhook ([`filters::inbound`]) no credentials: the caller is the path's
//!    tenant and engine, and a tenant that does not exist is refused after step 7, as a bad
//!    signature (401 `signature_invalid`);
//! 6. [`filters::authorize`]: the scopes allow the operation → else 403;
//! 7. [`filters::rate_limit`]: the tenant's and the credential's budgets → else 429;
//! 8. [`filters::policy`]: the running OPA bundle decides, the decision is logged → else 403
//!    `policy_denied` with its decision id (the policy sees `X-Tenant-Id` itself, so
//!    cross-tenant attempts are decided and logged). What it judges is what runs: the body is
//!    read by the runtime's own rules ([`switchyard_runtime::http::envelope`]) — a
//!    Content-Type the route does not take is refused with 415 and a malformed body with 400
//!    before the policy — and that reading is handed to the runtime in this process, or
//!    re-read there from the body the signature covers;
//! 9. [`filters::tenant`]: the credentials' tenant; a disagreeing `X-Tenant-Id` → 403 (the
//!    backstop when no policy is configured);
//! 10. [`filters::idempotency`]: a POST with `Idempotency-Key` is replayed, refused (409/422)
//!     or recorded, and its response stored;
//! 11. [`filters::forward`]: to a healthy runtime ([`upstream`]) with the verified context
//!     and the body signed into internal headers (client-sent internal headers are dropped) —
//!     or, when the runtime lives in this process ([`upstream::RuntimeLink::InProcess`]),
//!     straight into it with the verified context as a value; an answer of server-sent events
//!     (a streamed chat) is passed on frame by frame.
//!
//! `GET /policies/...` ([`audit`]) and `GET /audit/log...` ([`audit_log`]) are answered by
//! the gateway itself after step 9.

pub mod admin;
mod audit;
mod audit_log;
pub mod config;
pub mod decision_retention;
pub mod decision_upload;
mod export;
pub mod filters;
mod keys;
mod observe;
mod problem;
pub mod purge;
pub mod shutdown;
pub mod upstream;
pub mod usage;

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::BodyExt;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_identity::Identity;
use switchyard_identity::oidc::{OidcVerifier, VerifierBuildError};
use switchyard_platform_store::PlatformStore;
use switchyard_platform_store::internal_auth::{BodyTagger, InternalKey};
use switchyard_platform_store::{Begin, StoredResponse};
use switchyard_request::Dispatch;
use switchyard_request::envelope::{self, BodyForm, BodyRule, Executed};
use switchyard_request::path::{Segments, Split};
use switchyard_spi::CallContext;

use config::GatewayConfig;
use filters::authenticate::Authenticator;
use filters::authorize::Target;
use filters::idempotency;
use filters::policy::Policy;
use filters::rate_limit::{RateLimitConfigError, RateLimiter};
use filters::route::Route;
use filters::trace_context::TraceContext;
use shutdown::{Drain, InFlight};
use std::sync::Arc;
use upstream::RuntimeLink;

pub use filters::authenticate::KEY_CACHE_TTL;

/// Seconds a client should wait before retrying when no runtime is healthy.
const NO_UPSTREAM_RETRY_AFTER: &str = "1";

/// What the filters learn about one request, in the order they learn it.
#[derive(Default)]
pub struct RequestCtx {
    /// Held for the request's lifetime, so a draining shutdown waits for it.
    in_flight: Option<InFlight>,
    pub request_id: String,
    pub trace: Option<TraceContext>,
    pub route: Option<Route>,
    /// The path's segments, split once when the request arrives and read by every step (and
    /// by the runtime in this process) instead of splitting the path again.
    pub segments: Segments,
    pub identity: Option<Identity>,
    /// Body bytes seen so far, for bodies without a declared length.
    body_bytes: usize,
    /// The upstream this attempt goes to, and the one the previous attempt failed on.
    upstream: Option<SocketAddr>,
    failed_upstream: Option<SocketAddr>,
    retries: u32,
    no_healthy_upstream: bool,
    /// `RateLimit-*` headers for the response, when a budget applies.
    rate_limit_headers: Vec<(&'static str, String)>,
    idempotency: Option<PendingIdempotency>,
    /// The body the filters already read whole (for the policy or an idempotency key), kept
    /// so that in-process dispatch does not read it again and forwarding can seal it.
    inspected_body: Option<Bytes>,
    /// What the policy judged as running, handed to a runtime in this process.
    executed: Option<Executed>,
    /// Tags a body that streams through to the runtime ([`filters::forward`]).
    body_tag: Option<BodyTagger>,
    /// Metrics, spans and the access log line of this request.
    observed: observe::Observed,
}

/// A request recorded under an idempotency key, and the response being captured for it.
struct PendingIdempotency {
    tenant: TenantId,
    key: String,
    fingerprint: [u8; 32],
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The largest body the gateway reads whole before proxying (to fingerprint it for an
/// `Idempotency-Key`, or to show its params to the policy); Pingora re-sends it from its retry
/// buffer, which holds this much.
const MAX_INSPECTED_BODY: usize = 64 * 1024;

/// What the filters decided to do with a request that passed them.
enum Next {
    Proxy,
    Replay(StoredResponse),
    AnswerAudit,
    AnswerKeys,
    AnswerConsole,
    AnswerAdmin,
}

pub struct Gateway {
    config: GatewayConfig,
    runtime: RuntimeLink,
    authenticator: Authenticator,
    /// Always built: without `[rate_limit]` it limits only tenants the operator gave a
    /// budget through `/admin`, and answers "no budget" for the rest at the cost of a lookup.
    rate_limiter: Arc<RateLimiter>,
    policy: Option<Arc<Policy>>,
    store: PlatformStore,
    internal_key: InternalKey,
    drain: Drain,
    console: switchyard_console::Console,
    /// The body of a ready `/readyz`: the status, and what this node keeps to itself.
    ready_body: Bytes,
    /// The tenants the operator suspended or is deleting: refused after authentication.
    tenant_gate: Arc<filters::tenant::TenantGate>,
    /// Calls and errors per tenant, for the operator's usage view.
    usage: Arc<usage::UsageCounter>,
}

/// Why `Gateway::new` refuses its parts.
#[derive(Debug, thiserror::Error)]
pub enum GatewayBuildError {
    #[error(transparent)]
    Oidc(#[from] VerifierBuildError),
    #[error(transparent)]
    RateLimit(#[from] RateLimitConfigError),
}

/// The parts a gateway is built from; `Gateway::new` checks the config against them.
pub struct GatewayParts {
    pub config: GatewayConfig,
    pub runtime: RuntimeLink,
    pub authenticator: Authenticator,
    pub policy: Option<Arc<Policy>>,
    pub store: PlatformStore,
    pub internal_key: InternalKey,
    pub drain: Drain,
}

impl Gateway {
    pub fn new(parts: GatewayParts) -> Result<Self, GatewayBuildError> {
        let GatewayParts {
            config,
            runtime,
            mut authenticator,
            policy,
            store,
            internal_key,
            drain,
        } = parts;
        if let Some(oidc) = &config.oidc {
            authenticator =
                authenticator.with_oidc(OidcVerifier::new(oidc.clone(), &config.tenancy.egress)?);
        }
        let rate_limiter = Arc::new(RateLimiter::new(
            config.rate_limit.clone().unwrap_or_default(),
        )?);
        Ok(Gateway {
            config,
            runtime,
            authenticator,
            rate_limiter,
            policy,
            store,
            internal_key,
            drain,
            console: switchyard_console::Console::default(),
            ready_body: Bytes::from_static(b"{\"status\":\"ready\"}"),
            tenant_gate: Arc::default(),
            usage: Arc::default(),
        })
    }

    /// The suspended tenants this gateway refuses; a [`filters::tenant::TenantGateRefresh`]
    /// keeps it in step with the store.
    pub fn tenant_gate(&self) -> Arc<filters::tenant::TenantGate> {
        self.tenant_gate.clone()
    }

    /// The request budgets, whose per-tenant overrides a
    /// [`filters::tenant::TenantGateRefresh`] keeps in step with the operator's limits.
    pub fn rate_limiter(&self) -> Arc<RateLimiter> {
        self.rate_limiter.clone()
    }

    /// The per-tenant call counts a [`usage::UsageFlush`] writes to the store.
    pub fn usage(&self) -> Arc<usage::UsageCounter> {
        self.usage.clone()
    }

    /// Adds to a ready `/readyz` what keeps state on this node only (`[{what, why, state}]`),
    /// so an operator running replicas sees what they do not share.
    pub fn with_node_local(mut self, node_local: serde_json::Value) -> Self {
        self.ready_body = Bytes::from(
            serde_json::json!({"status": "ready", "node_local": node_local}).to_string(),
        );
        self
    }

    /// Runs the filters in order and says what to do with a request that passed them.
    async fn run_filters(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Next, Problem> {
        let header = session.req_header();
        ctx.trace = Some(filters::trace_context::accept(
            header.headers.get("traceparent"),
            header.headers.get("tracestate"),
        ));
        let path = header.uri.path();
        let segments = ctx.segments.of(path);
        let route = filters::route::classify_segments(&header.method, path, segments.as_slice())?;
        ctx.route = Some(route);
        filters::body_limit::check_declared(
            header.headers.get("content-length"),
            self.config.limits.max_body_bytes,
        )?;
        let Some(operation) = route.operation() else {
            // The console signs its users in itself, and reaches the API as them.
            return Ok(match route {
                Route::Console => Next::AnswerConsole,
                Route::Platform => Next::AnswerAdmin,
                _ => Next::Proxy,
            });
        };
        let inbound = route == Route::Inbound;
        let identity = if inbound {
            filters::inbound::identify(segments.as_slice())?
        } else {
            let client_cert = session.digest().and_then(|d| d.ssl_digest.clone());
            let identity = self
                .authenticator
                .authenticate(header.headers.get("authorization"), client_cert.as_deref())
                .await?;
            observe::authenticated(ctx, &identity.tenant);
            identity
        };
        self.tenant_gate.check(identity.tenant.as_str())?;
        filters::authorize::check(
            &identity,
            operation,
            Target::of_segments(segments.as_slice()),
        )?;
        if let Some(verdict) = self
            .rate_limiter
            .check(&identity.tenant, &identity.subject)
            .await?
        {
            ctx.rate_limit_headers = verdict.headers();
            if let Some(refusal) = verdict.problem() {
                return Err(refusal);
            }
        }
        if inbound {
            filters::inbound::check_tenant(&self.store, &identity.tenant).await?;
            observe::authenticated(ctx, &identity.tenant);
        }
        let key = match header.method {
            // A webhook's repeats are the engine's to drop, by the sender's own delivery id.
            http::Method::POST if !inbound => {
                idempotency::parse_key(header.headers.get(idempotency::KEY_HEADER))?
            }
            _ => None,
        };
        // The route's body rule decides the types it takes, whoever reads the body later.
        let (rule, form) = body_form_of(header, segments.as_slice())?;
        let policy_reads_body = self.policy.is_some()
            && matches!(route, Route::Invoke | Route::Admin)
            && !matches!(form, BodyForm::Raw | BodyForm::Ignored);
        let body = if key.is_some() || policy_reads_body {
            Some(self.read_inspected_body(session, ctx).await?)
        } else {
            None
        };
        let header = session.req_header();
        if let Some(policy) = &self.policy {
            let (resource, executed) = judged_resource(
                header,
                route,
                (rule, form),
                body.as_deref().unwrap_or_default(),
            )?;
            ctx.executed = executed;
            let input = policy_input(header, &identity, route, resource, &ctx.request_id);
            let verdict = policy
                .decide(input, identity.tenant.as_str(), &identity.subject)
                .await?;
            observe::policy_decision(identity.tenant.as_str(), verdict.allow);
            if !verdict.allow {
                let why = if verdict.reasons.is_empty() {
                    "no rule allows this request".to_owned()
                } else {
                    verdict.reasons.join("; ")
                };
                return Err(Problem::new(ErrorCode::PolicyDenied, why)
                    .with_decision_id(verdict.decision_id));
            }
        }
        filters::tenant::resolve(&identity, header.headers.get("x-tenant-id"))?;
        let tenant = identity.tenant.clone();
        ctx.identity = Some(identity);
        match route {
            Route::Audit => return Ok(Next::AnswerAudit),
            Route::Keys => {
                ctx.inspected_body = body.map(Bytes::from);
                return Ok(Next::AnswerKeys);
            }
            _ => {}
        }
        let next = match (key, &body) {
            (Some(key), Some(body)) => {
                self.begin_idempotent(session, ctx, tenant, key, body)
                    .await?
            }
            _ => Next::Proxy,
        };
        ctx.inspected_body = body.map(Bytes::from);
        Ok(next)
    }

    /// Reads the whole body (at most [`MAX_INSPECTED_BODY`]) into Pingora's retry buffer, from
    /// which it is re-sent upstream.
    async fn read_inspected_body(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Vec<u8>, Problem> {
        session.as_mut().enable_retry_buffering();
        let mut body = Vec::new();
        while let Some(chunk) = session.read_request_body().await.map_err(|e| {
            Problem::new(
                ErrorCode::RequestInvalid,
                format!("could not read the body: {e}"),
            )
        })? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_INSPECTED_BODY {
                return Err(Problem::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "a body checked by policy or sent with an Idempotency-Key may carry at most {MAX_INSPECTED_BODY} bytes; \
                         send larger objects raw (Content-Type: application/octet-stream)"
                    ),
                ));
            }
        }
        ctx.body_bytes = body.len();
        Ok(body)
    }

    /// Serves a request that passed the filters from the runtime in this process: the runtime's
    /// own routing, minus the loopback hop and the signing of a context the gateway has just
    /// verified. The response goes through [`ProxyHttp::response_filter`] like a proxied one.
    async fn dispatch_in_process(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        runtime: &dyn Dispatch,
    ) -> pingora::Result<()> {
        let body = match ctx.inspected_body.take() {
            Some(body) => body,
            None => match self.read_body(session).await {
                Ok(body) => body,
                Err(problem) => {
                    return problem::respond(
                        session,
                        problem,
                        &ctx.request_id,
                        &ctx.rate_limit_headers,
                    )
                    .await;
                }
            },
        };
        observe::forwarding(ctx);
        let header = session.req_header();
        let mut request = http::Request::builder()
            .method(header.method.clone())
            .uri(header.uri.clone())
            .header("x-request-id", &ctx.request_id);
        if ctx.route == Some(Route::Inbound) {
            // A webhook's params are its sender's headers, read by the runtime's own rules
            // ([`switchyard_request::inbound`]) as over a socket.
            for (name, value) in &header.headers {
                request = request.header(name, value);
            }
        } else if let Some(content_type) = header.headers.get(http::header::CONTENT_TYPE) {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        // The operator's routes carry no verified context: the runtime checks the token itself.
        if ctx.route == Some(Route::Operator)
            && let Some(authorization) = header.headers.get(http::header::AUTHORIZATION)
        {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        // The client's address: the runtime limits wrong operator tokens by it, and writes it
        // into the audit records of an admin's changes (configure, rollback, secrets).
        if matches!(ctx.route, Some(Route::Operator | Route::Admin))
            && let Some(client) = session.client_addr().and_then(|a| a.as_inet())
        {
            request = request.extension(client.ip());
        }
        if let Some(trace) = &ctx.trace {
            request = request.header("traceparent", &trace.traceparent);
            if let Some(state) = &trace.tracestate {
                request = request.header("tracestate", state);
            }
        }
        if let Some(executed) = ctx.executed.take() {
            request = request.extension(executed);
        }
        request = request.extension(ctx.segments);
        let body = http_body_util::Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        let request = request.body(body).map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "in-process request", e)
        })?;
        let trusted = ctx.identity.as_ref().map(|identity| CallContext {
            tenant: identity.tenant.clone(),
            request_id: ctx.request_id.clone(),
            subject: Some(identity.subject.clone()),
            service: None,
        });
        let timeout = Duration::from_millis(self.config.limits.upstream_timeout_ms);
        let Ok(response) = tokio::time::timeout(timeout, runtime.dispatch(request, trusted)).await
        else {
            let problem = Problem::new(
                ErrorCode::Timeout,
                format!(
                    "the runtime did not answer within {} ms",
                    timeout.as_millis()
                ),
            );
            // Nothing worth replaying: free the key before the refusal leaves, for the retry.
            self.settle_idempotency(ctx, true).await;
            return problem::respond(session, problem, &ctx.request_id, &ctx.rate_limit_headers)
                .await;
        };
        let (parts, body) = response.into_parts();
        if parts.headers.get(http::header::CONTENT_TYPE)
            == Some(&http::HeaderValue::from_static(
                switchyard_request::EVENT_STREAM,
            ))
        {
            return self.relay_events(session, ctx, parts, body).await;
        }
        let Ok(body) = body.collect().await.map(|b| b.to_bytes());
        let mut answer = ResponseHeader::build(parts.status, Some(parts.headers.len() + 4))?;
        for (name, value) in &parts.headers {
            answer.append_header(name.clone(), value.clone())?;
        }
        answer.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
        self.response_filter(session, &mut answer, ctx).await?;
        let mut body = Some(body);
        self.response_body_filter(session, &mut body, true, ctx)?;
        // The answer is whole here: store it before any of it leaves, so that a client
        // retrying as soon as it has the answer finds the record done and gets the replay.
        self.settle_idempotency(ctx, false).await;
        session
            .write_response_header(Box::new(answer), false)
            .await?;
        session.write_response_body(body, true).await
    }

    /// Passes a stream of server-sent events on as the runtime writes them (a streamed chat's
    /// tokens), each frame flushed as it comes. Such an answer is never stored for an
    /// idempotency key: its key is released, so a retry runs again.
    async fn relay_events(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        parts: http::response::Parts,
        mut body: switchyard_request::ResponseBody,
    ) -> pingora::Result<()> {
        let mut answer = ResponseHeader::build(parts.status, Some(parts.headers.len() + 4))?;
        for (name, value) in &parts.headers {
            answer.append_header(name.clone(), value.clone())?;
        }
        self.response_filter(session, &mut answer, ctx).await?;
        self.settle_idempotency(ctx, true).await;
        session
            .write_response_header(Box::new(answer), false)
            .await?;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame;
            if let Ok(data) = frame.into_data() {
                session.write_response_body(Some(data), false).await?;
            }
        }
        session.write_response_body(None, true).await
    }

    /// Reads a body nobody inspected, for in-process dispatch, within the body limit.
    async fn read_body(&self, session: &mut Session) -> Result<Bytes, Problem> {
        let limit = self.config.limits.max_body_bytes;
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = session.read_request_body().await.map_err(|e| {
            Problem::new(
                ErrorCode::RequestInvalid,
                format!("could not read the body: {e}"),
            )
        })? {
            if body.is_empty() && session.is_body_done() {
                // The common case: one chunk is the whole body, kept without a copy.
                return Ok(chunk);
            }
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                return Err(filters::body_limit::too_large(limit));
            }
        }
        Ok(body.freeze())
    }

    /// Asks the store whether to proceed, replay or refuse a request with an idempotency key;
    /// a key found in flight is asked again for up to [`idempotency::IN_FLIGHT_WAIT`] before
    /// the 409, so a retry sent as soon as a proxied answer arrived gets the replay.
    async fn begin_idempotent(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        tenant: TenantId,
        key: String,
        body: &[u8],
    ) -> Result<Next, Problem> {
        let header = session.req_header();
        let path = header.uri.path_and_query().map_or("/", |p| p.as_str());
        let fingerprint = idempotency::fingerprint(header.method.as_str(), path, body);
        let config = &self.config.idempotency;
        // A record in flight may belong to a request whose answer has already left: a proxied
        // response is stored in `logging`, after its last byte went out (`response_body_filter`
        // cannot wait for the store), so a client retrying at once can find it still in flight.
        // The retry waits, briefly and bounded, for the record to settle rather than answer 409
        // to a request that has in fact been answered; past the bound the first request is
        // taken to be still running, and the retry gets 409 as before.
        let wait = idempotency::IN_FLIGHT_WAIT.min(Duration::from_millis(
            self.config.limits.upstream_timeout_ms,
        ));
        let started = tokio::time::Instant::now();
        let mut polls = 0;
        let begin = loop {
            let begin = self
                .store
                .idempotency_begin(
                    &tenant,
                    &key,
                    &fingerprint,
                    unix_ms(),
                    config.lease_ms(),
                    config.retention_ms(),
                )
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "idempotency record failed");
                    Problem::new(
                        ErrorCode::Internal,
                        "the idempotency record could not be written; retry",
                    )
                    .with_retryable(true)
                })?;
            let pause = idempotency::in_flight_poll_delay(polls);
            if begin != Begin::InFlight || started.elapsed() + pause > wait {
                break begin;
            }
            tokio::time::sleep(pause).await;
            polls += 1;
        };
        match begin {
            Begin::Proceed => {
                ctx.idempotency = Some(PendingIdempotency {
                    tenant,
                    key,
                    fingerprint,
                    status: None,
                    headers: Vec::new(),
                    body: Vec::new(),
                });
                Ok(Next::Proxy)
            }
            Begin::Replay(stored) => Ok(Next::Replay(stored)),
            refused => Err(idempotency::problem_for(&refused).unwrap_or_else(|| {
                Problem::new(ErrorCode::Internal, "unexpected idempotency state")
            })),
        }
    }

    async fn answer_keys(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_owned();
        let body = match ctx.inspected_body.take() {
            Some(body) => Ok(body.to_vec()),
            None if method == http::Method::POST => self.read_inspected_body(session, ctx).await,
            None => Ok(Vec::new()),
        };
        let answer = match (body, &ctx.identity) {
            (Ok(body), Some(identity)) => {
                let caller = keys::Caller {
                    subject: identity.subject.clone(),
                    request_id: ctx.request_id.clone(),
                    source: session
                        .client_addr()
                        .and_then(|a| a.as_inet())
                        .map(|a| a.ip()),
                };
                keys::answer(
                    &method,
                    &path,
                    &body,
                    &identity.tenant,
                    &caller,
                    &self.store,
                )
                .await
            }
            (Err(problem), _) => Err(problem),
            (_, None) => Err(Problem::new(ErrorCode::Unauthenticated, "no identity")),
        };
        match answer {
            Ok(answer) => {
                let body = Bytes::from(answer.to_string());
                let mut response = ResponseHeader::build(200, Some(4))?;
                response.insert_header("content-type", "application/json")?;
                response.insert_header("content-length", body.len().to_string())?;
                response.insert_header("x-request-id", &ctx.request_id)?;
                response.insert_header("cache-control", "no-store")?;
                session
                    .write_response_header(Box::new(response), false)
                    .await?;
                session.write_response_body(Some(body), true).await
            }
            Err(problem) => problem::respond(session, problem, &ctx.request_id, &[]).await,
        }
    }

    /// Hands the request to the console, which calls the API back on the listener the request
    /// came in on, as the signed-in user.
    async fn answer_console(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let header = session.req_header();
        let method = header.method.clone();
        let path = header.uri.path().to_owned();
        let query = header.uri.query().map(str::to_owned);
        let cookie = header
            .headers
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let api_base = match session.server_addr().and_then(|a| a.as_inet()) {
            Some(addr) => format!("http://{addr}"),
            None => {
                let problem = Problem::new(ErrorCode::Internal, "the console needs a TCP listener");
                return problem::respond(session, problem, &ctx.request_id, &[]).await;
            }
        };
        let body = if method == http::Method::POST {
            match self.read_inspected_body(session, ctx).await {
                Ok(body) => Bytes::from(body),
                Err(problem) => {
                    return problem::respond(session, problem, &ctx.request_id, &[]).await;
                }
            }
        } else {
            Bytes::new()
        };
        let page = self
            .console
            .handle(switchyard_console::Request {
                method,
                path,
                query,
                cookie,
                body,
                api_base,
            })
            .await;
        let mut response = ResponseHeader::build(page.status, Some(page.headers.len() + 2))?;
        for (name, value) in page.headers {
            response.insert_header(name, value)?;
        }
        response.insert_header("content-length", page.body.len().to_string())?;
        response.insert_header("x-request-id", &ctx.request_id)?;
        session
            .write_response_header(Box::new(response), page.body.is_empty())
            .await?;
        if page.body.is_empty() {
            return Ok(());
        }
        session.write_response_body(Some(page.body), true).await
    }

    /// The operator plane: authenticated by an operator key here, never by a tenant's.
    async fn answer_admin(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let header = session.req_header();
        let method = header.method.clone();
        let query = header.uri.query().map(str::to_owned);
        let path = header.uri.path().to_owned();
        let answer =
            match admin::authenticate(header.headers.get("authorization"), &self.store).await {
                Err(problem) => Err(problem),
                Ok(operator) => {
                    let body = if matches!(method, http::Method::POST | http::Method::PUT) {
                        self.read_inspected_body(session, ctx).await
                    } else {
                        Ok(Vec::new())
                    };
                    match body {
                        Err(problem) => Err(problem),
                        Ok(body) => {
                            let caller = admin::Caller {
                                operator,
                                request_id: ctx.request_id.clone(),
                                source: session
                                    .client_addr()
                                    .and_then(|a| a.as_inet())
                                    .map(|a| a.ip()),
                            };
                            let plane = admin::Plane {
                                store: &self.store,
                                gate: &self.tenant_gate,
                                limiter: &self.rate_limiter,
                                policy: self.policy.as_deref(),
                                config: &self.config.admin,
                            };
                            let segments = ctx.segments.of(&path);
                            admin::answer(
                                &plane,
                                &caller,
                                &method,
                                segments.as_slice(),
                                query.as_deref(),
                                &body,
                            )
                            .await
                        }
                    }
                }
            };
        match answer {
            Ok(answer) => {
                let body = Bytes::from(answer.body.to_string());
                let mut response = ResponseHeader::build(answer.status, Some(4))?;
                response.insert_header("content-type", "application/json")?;
                response.insert_header("content-length", body.len().to_string())?;
                response.insert_header("x-request-id", &ctx.request_id)?;
                response.insert_header("cache-control", "no-store")?;
                session
                    .write_response_header(Box::new(response), false)
                    .await?;
                session.write_response_body(Some(body), true).await
            }
            Err(problem) => {
                observe::refused(ctx, problem.code);
                problem::respond(session, problem, &ctx.request_id, &[]).await
            }
        }
    }

    async fn answer_audit(&self, session: &mut Session, ctx: &RequestCtx) -> pingora::Result<()> {
        let header = session.req_header();
        let (path, query) = (
            header.uri.path().to_owned(),
            header.uri.query().map(str::to_owned),
        );
        let Some(identity) = &ctx.identity else {
            return problem::respond(
                session,
                Problem::new(ErrorCode::Unauthenticated, "no identity"),
                &ctx.request_id,
                &[],
            )
            .await;
        };
        if path.starts_with("/audit/") {
            return audit_log::respond(session, &ctx.request_id, &identity.tenant, &self.store)
                .await;
        }
        if path == "/policies/decisions/export" {
            let policy = self.policy.as_deref();
            return audit::export(
                session,
                &ctx.request_id,
                &identity.tenant,
                policy,
                &self.store,
            )
            .await;
        }
        match audit::answer(
            &path,
            query.as_deref(),
            &identity.tenant,
            self.policy.as_deref(),
            &self.store,
        )
        .await
        {
            Ok(answer) => {
                let mut response = ResponseHeader::build(200, Some(4))?;
                response.insert_header("content-type", answer.content_type)?;
                response.insert_header("content-length", answer.body.len().to_string())?;
                response.insert_header("x-request-id", &ctx.request_id)?;
                response.insert_header("x-bundle-revision", answer.revision)?;
                session
                    .write_response_header(Box::new(response), false)
                    .await?;
                session.write_response_body(Some(answer.body), true).await
            }
            Err(problem) => problem::respond(session, problem, &ctx.request_id, &[]).await,
        }
    }

    /// Stores the response captured for a recorded request, or releases its key so that a
    /// retry may proceed (a failed exchange, a status not worth replaying, a body too large to
    /// store). Does nothing for a request without a key, or one already settled: in-process
    /// dispatch settles before writing the answer, `logging` settles what was proxied.
    async fn settle_idempotency(&self, ctx: &mut RequestCtx, failed: bool) {
        let Some(pending) = ctx.idempotency.take() else {
            return;
        };
        let stored = match (failed, pending.status) {
            (false, Some(status))
                if self
                    .config
                    .idempotency
                    .should_store(status, pending.body.len()) =>
            {
                let response = StoredResponse {
                    status,
                    headers: pending.headers,
                    body: pending.body,
                };
                self.store
                    .idempotency_complete(
                        &pending.tenant,
                        &pending.key,
                        &pending.fingerprint,
                        &response,
                    )
                    .await
            }
            _ => {
                self.store
                    .idempotency_release(&pending.tenant, &pending.key, &pending.fingerprint)
                    .await
            }
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "could not settle an idempotency record");
        }
    }

    async fn replay(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        stored: StoredResponse,
    ) -> pingora::Result<()> {
        let mut header = ResponseHeader::build(stored.status, Some(stored.headers.len() + 4))?;
        for (name, value) in &stored.headers {
            header.insert_header(name.clone(), value)?;
        }
        header.insert_header("content-length", stored.body.len().to_string())?;
        header.insert_header("x-request-id", &ctx.request_id)?;
        header.insert_header(idempotency::REPLAYED_HEADER, "true")?;
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session
            .write_response_body(Some(Bytes::from(stored.body)), true)
            .await
    }

    /// Marks the attempt failed; true when another upstream may be tried.
    fn may_retry(&self, ctx: &mut RequestCtx) -> bool {
        ctx.failed_upstream = ctx.upstream;
        if ctx.retries < self.config.upstreams.retries {
            ctx.retries += 1;
            true
        } else {
            false
        }
    }
}

/// The policy input's `resource` of a request whose body (if its route reads one) is `body`:
/// for the routes the runtime serves, what it will execute, read by its own rules (refused
/// with 415 or 400 as it would refuse it), with that reading to hand it; for the gateway's own
/// routes and the reads, the query parameters.
pub fn policy_resource(
    header: &RequestHeader,
    route: Route,
    body: &[u8],
) -> Result<(serde_json::Value, Option<Executed>), Problem> {
    judged_resource(header, route, body_form(header)?, body)
}

/// The route's body rule and the form its Content-Type gives the body (415 when the route
/// does not take that type); read once per request, before the body is.
fn body_form(header: &RequestHeader) -> Result<(BodyRule, BodyForm), Problem> {
    body_form_of(header, Split::of(header.uri.path()).as_slice())
}

/// [`body_form`] of a request whose path is already split.
fn body_form_of(
    header: &RequestHeader,
    segments: &[&str],
) -> Result<(BodyRule, BodyForm), Problem> {
    let rule = envelope::rule_of_segments(&header.method, segments);
    let form = envelope::accept(rule, header.headers.get(http::header::CONTENT_TYPE))?;
    Ok((rule, form))
}

/// [`policy_resource`] for a request whose body form is already known.
fn judged_resource(
    header: &RequestHeader,
    route: Route,
    (rule, form): (BodyRule, BodyForm),
    body: &[u8],
) -> Result<(serde_json::Value, Option<Executed>), Problem> {
    if !matches!(route, Route::Invoke | Route::Admin | Route::Inbound) {
        return Ok((envelope::query_params(header.uri.query()), None));
    }
    let executed = envelope::execute(rule, form, header.uri.query(), &header.headers, body)?;
    Ok((executed.resource(), Some(executed)))
}

/// The policy input: who asks, for what, on which resource (the params that run).
fn policy_input(
    header: &RequestHeader,
    identity: &Identity,
    route: Route,
    resource: serde_json::Value,
    request_id: &str,
) -> serde_json::Value {
    let path = header.uri.path();
    let target = Target::of(path);
    let operation = match route {
        Route::Public => "public",
        Route::Read => "read",
        Route::Admin => "admin",
        Route::Invoke | Route::Inbound => "invoke",
        Route::Audit => "audit",
        Route::Keys => "keys",
        Route::Console => "console",
        Route::Operator => "operator",
        Route::Platform => "platform",
    };
    let action = if route == Route::Audit {
        path.trim_start_matches("/policies/")
            .trim_start_matches("/audit/")
    } else {
        target.action
    };
    let target_tenant = header
        .headers
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(identity.tenant.as_str());
    let ai = (target.domain == switchyard_request::openai::PROVIDER.0
        && target.provider == switchyard_request::openai::PROVIDER.1)
        .then(|| switchyard_request::openai::policy_facts(&resource));
    serde_json::json!({
        "ai": ai,
        "tenant": identity.tenant.as_str(),
        "subject": identity.subject,
        "roles": identity.roles,
        "scopes": identity.scopes.as_list(),
        "operation": operation,
        "domain": target.domain,
        "provider": target.provider,
        "action": action,
        "resource": resource,
        "request": {"method": header.method.as_str(), "path": path, "request_id": request_id},
        "target_tenant": target_tenant,
    })
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
        ctx.segments = Segments::parse(session.req_header().uri.path());
        observe::start(ctx, session.req_header());
        ctx.in_flight = self.drain.enter();
        if ctx.in_flight.is_none() {
            let refusal = Problem::new(
                ErrorCode::ShuttingDown,
                "the gateway is shutting down; retry on another instance",
            );
            session.set_keepalive(None);
            problem::respond(session, refusal, &ctx.request_id, &[]).await?;
            return Ok(true);
        }
        if let Some(answered) = self.answer_operator(session, ctx).await {
            answered?;
            return Ok(true);
        }
        match self.run_filters(session, ctx).await {
            Ok(Next::Proxy) => match &self.runtime {
                RuntimeLink::Http(_) => Ok(false),
                RuntimeLink::InProcess(runtime) => {
                    self.dispatch_in_process(session, ctx, runtime.as_ref())
                        .await?;
                    Ok(true)
                }
            },
            Ok(Next::Replay(stored)) => {
                self.replay(session, ctx, stored).await?;
                Ok(true)
            }
            Ok(Next::AnswerKeys) => {
                self.answer_keys(session, ctx).await?;
                Ok(true)
            }
            Ok(Next::AnswerConsole) => {
                self.answer_console(session, ctx).await?;
                Ok(true)
            }
            Ok(Next::AnswerAudit) => {
                self.answer_audit(session, ctx).await?;
                Ok(true)
            }
            Ok(Next::AnswerAdmin) => {
                self.answer_admin(session, ctx).await?;
                Ok(true)
            }
            Err(refusal) => {
                observe::refused(ctx, refusal.code);
                let mut headers = ctx.rate_limit_headers.clone();
                if refusal.code == ErrorCode::IdempotencyInFlight {
                    headers.push(("retry-after", "1".to_owned()));
                }
                problem::respond(session, refusal, &ctx.request_id, &headers).await?;
                Ok(true)
            }
        }
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        ctx.body_bytes += body.as_ref().map_or(0, Bytes::len);
        if ctx.body_bytes > self.config.limits.max_body_bytes {
            return Err(pingora::Error::explain(
                pingora::ErrorType::HTTPStatus(413),
                "request body over the limit",
            ));
        }
        filters::forward::tag_chunk(ctx, body, end_of_stream);
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        let upstream = match &self.runtime {
            RuntimeLink::Http(upstreams) => upstreams.select(ctx.failed_upstream),
            // Requests are answered in `request_filter`; none is ever proxied.
            RuntimeLink::InProcess(_) => None,
        };
        let Some(addr) = upstream else {
            ctx.no_healthy_upstream = true;
            return Err(pingora::Error::explain(
                pingora::ErrorType::ConnectNoRoute,
                "no healthy runtime upstream",
            ));
        };
        ctx.upstream = Some(addr);
        Ok(Box::new(upstream::peer(addr, &self.config.limits)))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<pingora::Error>,
    ) -> Box<pingora::Error> {
        // Nothing reached the runtime: any request may go to another one.
        if self.may_retry(ctx) {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<pingora::Error>,
        ctx: &mut Self::CTX,
        client_reused: bool,
    ) -> Box<pingora::Error> {
        let mut e = e.more_context(format!("runtime {peer}"));
        // The runtime may have acted on the request: only idempotent methods are resent.
        let resendable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        if resendable && self.may_retry(ctx) {
            e.set_retry(true);
        } else if resendable {
            e.retry.decide_reuse(client_reused);
        } else {
            e.set_retry(false);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        observe::forwarding(ctx);
        filters::forward::prepare(upstream_request, ctx, &self.internal_key)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        observe::upstream_answered(ctx, upstream_response);
        upstream_response.insert_header("x-request-id", &ctx.request_id)?;
        for (name, value) in &ctx.rate_limit_headers {
            upstream_response.insert_header(*name, value)?;
        }
        if let Some(pending) = &mut ctx.idempotency {
            pending.status = Some(upstream_response.status.as_u16());
            pending.headers = idempotency::storable_headers(&upstream_response.headers);
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<Option<Duration>> {
        if let (Some(pending), Some(chunk)) = (&mut ctx.idempotency, body.as_ref()) {
            // Past the storable size the body is not kept; `logging` then releases the key.
            if pending.body.len() <= self.config.idempotency.max_stored_body_bytes {
                pending.body.extend_from_slice(chunk);
            }
        }
        Ok(None)
    }

    /// Runs last, success or not: stores the response of a recorded proxied request, or
    /// releases the key so that a retry may proceed. This is after the response has left (the
    /// body filter before it is synchronous); a retry arriving in between waits for the record
    /// in [`Gateway::begin_idempotent`]. An in-process answer was settled before it was written.
    async fn logging(
        &self,
        session: &mut Session,
        error: Option<&pingora::Error>,
        ctx: &mut Self::CTX,
    ) {
        if let Some(tenant) = observe::tenant(ctx) {
            let status = session.response_written().map_or(0, |r| r.status.as_u16());
            self.usage.count(tenant, status);
        }
        observe::finish(session, ctx);
        self.settle_idempotency(ctx, error.is_some()).await;
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &pingora::Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        use pingora::ErrorType as T;
        // The connection is not reused after a failed proxy attempt. Turning keep-alive off
        // makes Pingora answer `Connection: close`, so a client's pool does not send its next
        // request into a socket about to close.
        session.set_keepalive(None);
        let mut headers = Vec::new();
        let problem = match (e.etype(), e.esource()) {
            (T::HTTPStatus(413), _) => Some(filters::body_limit::too_large(
                self.config.limits.max_body_bytes,
            )),
            _ if ctx.no_healthy_upstream => {
                headers.push(("retry-after", NO_UPSTREAM_RETRY_AFTER.to_owned()));
                Some(
                    Problem::new(
                        ErrorCode::UpstreamUnavailable,
                        "no provider runtime is healthy; retry shortly",
                    )
                    .with_retryable(true),
                )
            }
            (T::ReadTimedout | T::WriteTimedout, _) => Some(Problem::new(
                ErrorCode::Timeout,
                format!(
                    "the runtime did not answer within {} ms",
                    self.config.limits.upstream_timeout_ms
                ),
            )),
            (_, pingora::ErrorSource::Upstream) => Some(Problem::new(
                ErrorCode::UpstreamUnavailable,
                "the provider runtime could not be reached; retry shortly",
            )),
            (
                T::WriteError | T::ReadError | T::ConnectionClosed,
                pingora::ErrorSource::Downstream,
            ) => None,
            (_, pingora::ErrorSource::Downstream) => Some(Problem::new(
                ErrorCode::RequestInvalid,
                "the request could not be read",
            )),
            _ => Some(Problem::new(
                ErrorCode::Internal,
                "the gateway failed to proxy the request",
            )),
        };
        let error_code = problem.as_ref().map_or(0, Problem::status);
        if let Some(problem) = &problem {
            observe::refused(ctx, problem.code);
        }
        if let Some(problem) = problem
            && let Err(write_error) =
                problem::respond(session, problem, &ctx.request_id, &headers).await
        {
            tracing::debug!(error = %write_error, "could not write the error response");
        }
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }
}
