//! The runtime's HTTP service: the provider contract over hyper.
//!
//! Every `/providers`, `/services`, `/secrets` and `/inbound` route requires the context the gateway signed
//! ([`crate::internal_auth`]); for an inbound webhook ([`inbound`]) that is the context the
//! gateway made from the path's tenant. `/openapi.json` and `/healthz` are public. Errors are problem+json with the request id.
//! What a request executes is read by [`envelope`], the rules the gateway's policy reads it by.

mod openai;
pub mod operator;

/// Shared with the gateway, which reads every request by the same rules.
pub use switchyard_request::{ResponseBody, envelope, inbound, path};

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use switchyard_contracts::{
    ErrorCode, InvokeResponse, PROBLEM_CONTENT_TYPE, Problem, ResponseMeta, TenantId,
};
use switchyard_spi::CallContext;
use tokio::net::TcpListener;

use crate::internal_auth::{
    BODY_TAG_LEN, BodySeal, CONTEXT_HEADER, InternalKey, SIGNATURE_HEADER, unix_now,
};
use crate::observe;
use crate::runtime::{Runtime, store_problem};
use envelope::{BodyForm, BodyRule, Executed};
use operator::OperatorToken;
use path::Segments;
use switchyard_telemetry::trace;

/// Largest request body, raw storage uploads included.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub use switchyard_request::RequestBody;

pub struct Service {
    runtime: Arc<Runtime>,
    key: InternalKey,
    operator: OperatorToken,
}

/// Accepts connections until `shutdown` resolves. Connections already accepted finish their
/// current request.
pub async fn serve(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    key: InternalKey,
    shutdown: impl Future<Output = ()>,
) {
    let service = Arc::new(Service::new(runtime, key));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "runtime accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let handler = service_fn(move |mut req: Request<Incoming>| {
                // The client's address: operator::Guesses limits wrong tokens by it.
                req.extensions_mut().insert(peer.ip());
                let service = service.clone();
                async move { Ok::<_, Infallible>(service.handle(req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler)
                .await
            {
                tracing::debug!(error = %e, "runtime connection ended with an error");
            }
        });
    }
}

impl Service {
    /// The operator's token comes from `SWITCHYARD_OPERATOR_TOKEN` ([`operator`]).
    pub fn new(runtime: Arc<Runtime>, key: InternalKey) -> Self {
        Service {
            runtime,
            key,
            operator: OperatorToken::from_env(),
        }
    }

    /// Answers one request from the network; `/providers` and `/services` need the context
    /// the gateway signed.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        let req = req.map(BodyExt::boxed_unsync);
        self.dispatch(req, None).await
    }

    /// Answers one request; the W3C `traceparent` it came with is echoed, so a caller (and
    /// the tests) can see that the trace crossed the gateway intact. `trusted` is the context
    /// of a caller the gateway in this same process has already authenticated (in-process
    /// dispatch, ADR 16): nothing crossed a socket, so there is no signature to check. Without
    /// it, the signed internal headers must prove the context and the body. With it, an
    /// [`Executed`] in the request's extensions is what the gateway's policy judged, and is
    /// executed as it is instead of being read again.
    pub async fn dispatch(
        &self,
        req: Request<RequestBody>,
        trusted: Option<CallContext>,
    ) -> Response<ResponseBody> {
        let traceparent = req.headers().get("traceparent").cloned();
        let path = trace::enabled().then(|| req.uri().path().to_owned());
        let mut response = trace::serve(
            "runtime.request",
            traceparent.as_ref().and_then(|v| v.to_str().ok()),
            || vec![trace::attr("url.path", path.unwrap_or_default())],
            self.answer(req, trusted),
        )
        .await;
        if let Some(traceparent) = traceparent {
            response.headers_mut().insert("traceparent", traceparent);
        }
        response
    }

    async fn answer(
        &self,
        req: Request<RequestBody>,
        trusted: Option<CallContext>,
    ) -> Response<ResponseBody> {
        // Split once here (or by the gateway in this process), read again from the request's
        // own URI after the request has moved into `admit`.
        let segments = req
            .extensions()
            .get::<Segments>()
            .copied()
            .unwrap_or_else(|| Segments::parse(req.uri().path()));
        if switchyard_request::openai::is_openai(segments.of(req.uri().path()).as_slice()) {
            return self.openai(req, segments, trusted).await;
        }
        self.answer_whole(req, segments, trusted)
            .await
            .map(BodyExt::boxed_unsync)
    }

    /// Answers a request whose answer is whole: every route but a streamed `/v1` chat.
    async fn answer_whole(
        &self,
        req: Request<RequestBody>,
        segments: Segments,
        trusted: Option<CallContext>,
    ) -> Response<Full<Bytes>> {
        match (req.method(), segments.of(req.uri().path()).as_slice()) {
            (&Method::GET, ["openapi.json"]) => {
                json_response(StatusCode::OK, self.runtime.openapi(), None)
            }
            (&Method::GET, ["healthz"]) => json_response(
                StatusCode::OK,
                Bytes::from_static(b"{\"status\":\"up\"}"),
                None,
            ),
            (&Method::GET, ["readyz"]) => observe::readiness(&self.runtime).await,
            (&Method::GET, ["metrics"]) => observe::process_metrics(req.headers())
                .unwrap_or_else(|problem| problem_response(problem, &fallback_request_id(&req))),
            (_, ["providers", "register", ..]) => {
                let request_id = fallback_request_id(&req);
                // Owned: the request moves into the answer. Rare requests, a short path.
                let path = req.uri().path().to_owned();
                operator::answer(
                    &self.runtime,
                    &self.operator,
                    req,
                    path::Split::of(&path).as_slice(),
                    trusted.is_some(),
                    &request_id,
                )
                .await
                .unwrap_or_else(|problem| problem_response(problem, &request_id))
            }
            (_, ["providers", ..] | ["services", ..] | ["inbound", ..] | ["secrets", ..]) => {
                let given_id = req.headers().get("x-request-id").cloned();
                let (ctx, request) = match self.admit(req, segments, trusted).await {
                    Ok(admitted) => admitted,
                    Err(problem) => {
                        return problem_response(problem, &request_id_or_new(given_id.as_ref()));
                    }
                };
                let request_id = ctx.request_id.clone();
                let source = request.parts.extensions.get::<std::net::IpAddr>().copied();
                let answered = self.route(request, segments, ctx);
                let answered = match source {
                    Some(address) => {
                        crate::runtime::CLIENT_ADDRESS
                            .scope(address, answered)
                            .await
                    }
                    None => answered.await,
                };
                match answered {
                    Ok(response) => response,
                    Err(problem) => problem_response(problem, &request_id),
                }
            }
            _ => problem_response(
                Problem::new(
                    ErrorCode::RouteNotFound,
                    format!("no route for {}", req.uri().path()),
                ),
                &fallback_request_id(&req),
            ),
        }
    }

    /// The caller's context and the request as it executes: its body read whole (checked
    /// against the gateway's seal when it crossed a socket) and what it executes, by the
    /// route's body rule.
    async fn admit(
        &self,
        req: Request<RequestBody>,
        segments: Segments,
        trusted: Option<CallContext>,
    ) -> Result<(CallContext, Admitted), Problem> {
        let (ctx, seal) = match trusted {
            Some(ctx) => (ctx, None),
            None => {
                let (ctx, seal, signature) = self.verify(&req)?;
                (ctx, Some((seal, signature)))
            }
        };
        let (mut parts, body) = req.into_parts();
        // Only the gateway in this process hands over what its policy judged (its Content-Type
        // already accepted by the same rules); a request from the network is read here by
        // those rules, from the body its signature covers.
        let judged = parts
            .extensions
            .remove::<Executed>()
            .filter(|_| seal.is_none());
        let reading = match judged {
            Some(executed) => Reading::Judged(executed),
            None => {
                let split = segments.of(parts.uri.path());
                let rule = envelope::rule_of_segments(&parts.method, split.as_slice());
                let form = envelope::accept(rule, parts.headers.get(header::CONTENT_TYPE))?;
                Reading::ByRule(rule, form)
            }
        };
        let body = read_body(body, MAX_BODY_BYTES + BODY_TAG_LEN).await?;
        let body = match seal {
            None => body,
            Some((seal, signature)) => {
                self.key.open_body(&seal, &signature, body).ok_or_else(|| {
                    Problem::new(
                        ErrorCode::Unauthenticated,
                        "the body is not the one the gateway signed",
                    )
                })?
            }
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        let executed = match reading {
            Reading::Judged(executed) => executed,
            Reading::ByRule(rule, form) => {
                envelope::execute(rule, form, parts.uri.query(), &parts.headers, &body)?
            }
        };
        Ok((
            ctx,
            Admitted {
                parts,
                body,
                executed,
            },
        ))
    }

    fn verify(
        &self,
        req: &Request<RequestBody>,
    ) -> Result<(CallContext, BodySeal, String), Problem> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let verified = match (header(CONTEXT_HEADER), header(SIGNATURE_HEADER)) {
            (Some(context), Some(signature)) => self
                .key
                .verify(req.method().as_str(), path, context, signature, unix_now())
                .map(|ctx| (ctx, signature.to_owned())),
            _ => None,
        };
        let (ctx, signature) = verified.ok_or_else(|| {
            Problem::new(
                ErrorCode::Unauthenticated,
                "the runtime accepts only requests forwarded by the gateway",
            )
        })?;
        let tenant = TenantId::parse(&ctx.tenant)
            .map_err(|e| Problem::new(ErrorCode::Unauthenticated, e.to_string()))?;
        let call = CallContext {
            tenant,
            request_id: ctx.request_id,
            subject: Some(ctx.subject),
            service: None,
        };
        Ok((call, ctx.body, signature))
    }

    async fn route(
        &self,
        req: Admitted,
        segments: Segments,
        ctx: CallContext,
    ) -> Result<Response<Full<Bytes>>, Problem> {
        let rt = &self.runtime;
        let tenant = &ctx.tenant;
        let rid = Some(ctx.request_id.as_str());
        let Admitted {
            parts,
            body,
            executed,
        } = req;
        let method = &parts.method;
        let split = segments.of(parts.uri.path());
        let body = match (method, split.as_slice()) {
            (&Method::GET, ["providers"]) => rt.catalog(tenant).await,
            (&Method::GET, ["providers", d, n]) => rt.describe(tenant, d, n).await?,
            (&Method::GET, ["providers", d, n, "health"]) => rt.health(tenant, d, n).await?,
            (&Method::GET, ["providers", d, n, "metrics"]) => {
                return observe::provider_metrics(&parts.headers, rt, tenant, d, n);
            }
            (&Method::POST, ["providers", d, n, "configure"]) => {
                rt.configure_as(&ctx, d, n, executed.configure_body())
                    .await?
            }
            // Config history and secrets (docs/adr/0043): the bodies are read here, not by the
            // shared rules, so a secret's value never becomes the policy's input.
            (&Method::GET, ["providers", d, n, "configs"]) => {
                rt.config_history(tenant, d, n).await?
            }
            (&Method::POST, ["providers", d, n, "configs", "rollback"]) => {
                rt.rollback_config(&ctx, d, n, &body).await?
            }
            (&Method::GET, ["secrets"]) => rt.list_secrets(tenant).await?,
            (&Method::PUT, ["secrets", name]) => rt.write_secret(&ctx, name, &body).await?,
            (&Method::POST, ["providers", d, n, "start"]) => rt.start(tenant, d, n).await?,
            (&Method::POST, ["providers", d, n, "stop"]) => rt.stop(tenant, d, n).await?,
            (&Method::POST, ["providers", d, n, action]) => {
                return self.invoke(executed, body, &ctx, d, n, action).await;
            }
            (&Method::POST, ["inbound", tenant, inbound::DOMAIN, name]) => {
                return self.inbound(executed, body, &ctx, tenant, name).await;
            }
            (&Method::POST, ["services", name, action]) => {
                return self
                    .invoke_service(executed, body, &ctx, name, action)
                    .await;
            }
            (_, ["providers"] | ["providers", _, _] | ["providers", _, _, _]) => {
                return Err(Problem::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{method} is not allowed here"),
                ));
            }
            (_, ["services", _, _] | ["secrets"] | ["secrets", _])
            | (_, ["providers", _, _, "configs", "rollback"]) => {
                return Err(Problem::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{method} is not allowed here"),
                ));
            }
            _ => {
                return Err(Problem::new(
                    ErrorCode::RouteNotFound,
                    "no such route under /providers, /services, /secrets or /inbound",
                ));
            }
        };
        Ok(json_response(
            StatusCode::OK,
            Bytes::from(body.to_string()),
            rid,
        ))
    }

    async fn invoke(
        &self,
        executed: Executed,
        body: Bytes,
        ctx: &CallContext,
        domain: &str,
        name: &str,
        action: &str,
    ) -> Result<Response<Full<Bytes>>, Problem> {
        let started = Instant::now();
        let (params, payload) = params(executed, body)?;
        let data = self
            .runtime
            .invoke(ctx, domain, name, action, params, payload)
            .await?;
        invoke_answer(ctx, format!("{domain}/{name}"), action, data, started)
    }

    /// An inbound webhook: the engine's `receive` for the tenant the path names, which is the
    /// tenant of the context the gateway made from that path. Until its signature verifies the
    /// sender is nobody, so whatever would tell it about the tenant answers as a bad signature
    /// does ([`inbound::refused`]): an engine that is not there, takes no webhooks or that the
    /// tenant never configured (it has no secret to verify with), and the engine's own refusal,
    /// whose detail may name what the tenant configured. An outage stays one, so the sender
    /// retries.
    async fn inbound(
        &self,
        executed: Executed,
        body: Bytes,
        ctx: &CallContext,
        tenant: &str,
        name: &str,
    ) -> Result<Response<Full<Bytes>>, Problem> {
        if ctx.tenant.as_str() != tenant {
            return Err(inbound::refused());
        }
        let configured = self
            .runtime
            .store()
            .current_config(&ctx.tenant, inbound::DOMAIN, name)
            .await
            .map_err(store_problem)?;
        if configured.is_none() {
            return Err(inbound::refused());
        }
        let answer = self
            .invoke(executed, body, ctx, inbound::DOMAIN, name, inbound::ACTION)
            .await;
        match answer {
            Err(p)
                if matches!(
                    p.code,
                    ErrorCode::ProviderNotFound
                        | ErrorCode::ActionNotFound
                        | ErrorCode::ProviderNotConfigured
                        | ErrorCode::SignatureInvalid
                ) =>
            {
                tracing::info!(tenant = %ctx.tenant, provider = %format!("{}/{name}", inbound::DOMAIN), code = %p.code, detail = %p.detail, "inbound webhook refused");
                Err(inbound::refused())
            }
            answer => answer,
        }
    }

    async fn invoke_service(
        &self,
        executed: Executed,
        body: Bytes,
        ctx: &CallContext,
        name: &str,
        action: &str,
    ) -> Result<Response<Full<Bytes>>, Problem> {
        let started = Instant::now();
        let (params, _) = params(executed, body)?;
        let data = self
            .runtime
            .invoke_service(ctx, name, action, params)
            .await?;
        invoke_answer(ctx, format!("services/{name}"), action, data, started)
    }
}

/// A request past its checks: its head, its whole body, and what it executes.
struct Admitted {
    parts: Parts,
    body: Bytes,
    executed: Executed,
}

/// How a request's body is read: as the gateway in this process judged it, or here by its
/// route's rule and the form its Content-Type gave.
enum Reading {
    Judged(Executed),
    ByRule(BodyRule, BodyForm),
}

/// The params of an invoke and, for a raw upload, its payload.
fn params(executed: Executed, body: Bytes) -> Result<(Value, Option<Bytes>), Problem> {
    let payload = envelope::payload(&executed, body);
    match executed {
        Executed::Params { params, .. } => Ok((params, payload)),
        Executed::Nothing | Executed::Config(_) => Err(Problem::new(
            ErrorCode::Internal,
            "an invoke route was read without params",
        )),
    }
}

fn invoke_answer(
    ctx: &CallContext,
    provider: String,
    action: &str,
    data: Value,
    started: Instant,
) -> Result<Response<Full<Bytes>>, Problem> {
    let answer = InvokeResponse {
        data,
        meta: ResponseMeta {
            request_id: ctx.request_id.clone(),
            provider,
            action: action.to_owned(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
    };
    let body = serde_json::to_vec(&answer)
        .map_err(|e| Problem::new(ErrorCode::Internal, e.to_string()))?;
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(body),
        Some(&ctx.request_id),
    ))
}

/// The whole body, refused with 413 past `limit` bytes.
async fn read_body(body: RequestBody, limit: usize) -> Result<Bytes, Problem> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(Problem::new(
            ErrorCode::RequestInvalid,
            format!("could not read the body: {e}"),
        )),
    }
}

fn too_large() -> Problem {
    Problem::new(
        ErrorCode::PayloadTooLarge,
        format!("the body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

fn fallback_request_id(req: &Request<RequestBody>) -> String {
    request_id_or_new(req.headers().get("x-request-id"))
}

/// The request's `X-Request-Id`, or a new id when it came without one.
fn request_id_or_new(given: Option<&HeaderValue>) -> String {
    given
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

fn json_response(
    status: StatusCode,
    body: Bytes,
    request_id: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert("x-request-id", id);
    }
    response
}

pub fn problem_response(problem: Problem, request_id: &str) -> Response<Full<Bytes>> {
    let problem = problem.with_request_id(request_id);
    let status =
        StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, Bytes::from(problem.to_body()), Some(request_id));
    response.headers_mut().insert(
        observe::CODE_HEADER,
        HeaderValue::from_static(problem.code.as_str()),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    // A retryable outage (backend down, circuit open, bulkhead full) says when to come back.
    if status == StatusCode::SERVICE_UNAVAILABLE && problem.retryable {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// How the gateway in this process reaches the runtime, without depending on the runtime crate.
#[async_trait::async_trait]
impl switchyard_request::Dispatch for Service {
    async fn dispatch(
        &self,
        request: Request<RequestBody>,
        trusted: Option<CallContext>,
    ) -> Response<ResponseBody> {
        Service::dispatch(self, request, trusted).await
    }
}
