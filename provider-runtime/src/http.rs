//! The runtime's HTTP service: the provider contract over hyper.
//!
//! Every `/providers` route requires the context the gateway signed ([`crate::internal_auth`]);
//! `/openapi.json` and `/healthz` are public. Errors are problem+json with the request id.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use switchyard_contracts::{
    ErrorCode, InvokeRequest, InvokeResponse, PROBLEM_CONTENT_TYPE, Problem, ResponseMeta, TenantId,
};
use switchyard_spi::CallContext;
use tokio::net::TcpListener;

use crate::internal_auth::{CONTEXT_HEADER, InternalKey, SIGNATURE_HEADER, unix_now};
use crate::observe;
use crate::runtime::Runtime;
use switchyard_telemetry::trace;

/// Largest request body, raw storage uploads included.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A request body from the network (hyper's) or handed over by the gateway in the same
/// process ([`Service::dispatch`]); boxed so that one routing code serves both. Its error is
/// hyper's (an in-memory body has none).
pub type RequestBody = UnsyncBoxBody<Bytes, hyper::Error>;

pub struct Service {
    runtime: Arc<Runtime>,
    key: InternalKey,
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
        let (stream, _) = tokio::select! {
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
            let handler = service_fn(move |req| {
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
    pub fn new(runtime: Arc<Runtime>, key: InternalKey) -> Self {
        Service { runtime, key }
    }

    /// Answers one request from the network; `/providers` and `/services` need the context
    /// the gateway signed.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let req = req.map(BodyExt::boxed_unsync);
        self.dispatch(req, None).await
    }

    /// Answers one request; the W3C `traceparent` it came with is echoed, so a caller (and
    /// the tests) can see that the trace crossed the gateway intact. `trusted` is the context
    /// of a caller the gateway in this same process has already authenticated (in-process
    /// dispatch, ADR 16): nothing crossed a socket, so there is no signature to check. Without
    /// it, the signed internal headers must prove the context.
    pub async fn dispatch(
        &self,
        req: Request<RequestBody>,
        trusted: Option<CallContext>,
    ) -> Response<Full<Bytes>> {
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
    ) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (req.method(), segments.as_slice()) {
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
            (_, ["providers", ..] | ["services", ..]) => {
                let verified = match trusted {
                    Some(ctx) => Ok(ctx),
                    None => self.verify(&req),
                };
                let ctx = match verified {
                    Ok(ctx) => ctx,
                    Err(problem) => return problem_response(problem, &fallback_request_id(&req)),
                };
                let request_id = ctx.request_id.clone();
                match self.route(req, &segments, ctx).await {
                    Ok(response) => response,
                    Err(problem) => problem_response(problem, &request_id),
                }
            }
            _ => problem_response(
                Problem::new(ErrorCode::RouteNotFound, format!("no route for {path}")),
                &fallback_request_id(&req),
            ),
        }
    }

    fn verify(&self, req: &Request<RequestBody>) -> Result<CallContext, Problem> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let verified = match (header(CONTEXT_HEADER), header(SIGNATURE_HEADER)) {
            (Some(context), Some(signature)) => {
                self.key
                    .verify(req.method().as_str(), path, context, signature, unix_now())
            }
            _ => None,
        };
        let ctx = verified.ok_or_else(|| {
            Problem::new(
                ErrorCode::Unauthenticated,
                "the runtime accepts only requests forwarded by the gateway",
            )
        })?;
        let tenant = TenantId::parse(&ctx.tenant)
            .map_err(|e| Problem::new(ErrorCode::Unauthenticated, e))?;
        Ok(CallContext {
            tenant,
            request_id: ctx.request_id,
            subject: Some(ctx.subject),
            service: None,
        })
    }

    async fn route(
        &self,
        req: Request<RequestBody>,
        segments: &[&str],
        ctx: CallContext,
    ) -> Result<Response<Full<Bytes>>, Problem> {
        let rt = &self.runtime;
        let tenant = &ctx.tenant;
        let rid = Some(ctx.request_id.as_str());
        let method = req.method().clone();
        let body = match (&method, segments) {
            (&Method::GET, ["providers"]) => rt.catalog(tenant).await,
            (&Method::GET, ["providers", d, n]) => rt.describe(tenant, d, n).await?,
            (&Method::GET, ["providers", d, n, "health"]) => rt.health(tenant, d, n).await?,
            (&Method::GET, ["providers", d, n, "metrics"]) => {
                return observe::provider_metrics(req.headers(), rt, tenant, d, n);
            }
            (&Method::POST, ["providers", d, n, "configure"]) => {
                let body = read_json(req).await?;
                rt.configure(tenant, d, n, body).await?
            }
            (&Method::POST, ["providers", d, n, "start"]) => rt.start(tenant, d, n).await?,
            (&Method::POST, ["providers", d, n, "stop"]) => rt.stop(tenant, d, n).await?,
            (&Method::POST, ["providers", d, n, action]) => {
                return self.invoke(req, &ctx, d, n, action).await;
            }
            (&Method::POST, ["services", name, action]) => {
                return self.invoke_service(req, &ctx, name, action).await;
            }
            (_, ["providers"] | ["providers", _, _] | ["providers", _, _, _]) => {
                return Err(Problem::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{method} is not allowed here"),
                ));
            }
            (_, ["services", _, _]) => {
                return Err(Problem::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{method} is not allowed here"),
                ));
            }
            _ => {
                return Err(Problem::new(
                    ErrorCode::RouteNotFound,
                    "no such route under /providers or /services",
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
        req: Request<RequestBody>,
        ctx: &CallContext,
        domain: &str,
        name: &str,
        action: &str,
    ) -> Result<Response<Full<Bytes>>, Problem> {
        let started = Instant::now();
        let raw = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/octet-stream"));
        let (params, payload) = if raw {
            // Raw bytes in the body; params (strings) in the query string.
            let params: Map<String, Value> =
                form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                    .collect();
            (Value::Object(params), Some(read_body(req).await?))
        } else {
            (read_envelope(req).await?, None)
        };
        let data = self
            .runtime
            .invoke(ctx, domain, name, action, params, payload)
            .await?;
        invoke_answer(ctx, format!("{domain}/{name}"), action, data, started)
    }

    async fn invoke_service(
        &self,
        req: Request<RequestBody>,
        ctx: &CallContext,
        name: &str,
        action: &str,
    ) -> Result<Response<Full<Bytes>>, Problem> {
        let started = Instant::now();
        let params = read_envelope(req).await?;
        let data = self
            .runtime
            .invoke_service(ctx, name, action, params)
            .await?;
        invoke_answer(ctx, format!("services/{name}"), action, data, started)
    }
}

/// The `params` of an invoke envelope `{"params": {...}}`; an empty body means no params.
async fn read_envelope(req: Request<RequestBody>) -> Result<Value, Problem> {
    let body = read_body(req).await?;
    if body.is_empty() {
        return Ok(json!({}));
    }
    let envelope: InvokeRequest = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not an invoke envelope {{\"params\": {{...}}}}: {e}"),
        )
    })?;
    Ok(envelope.params)
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

async fn read_body(req: Request<RequestBody>) -> Result<Bytes, Problem> {
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Problem::new(
                ErrorCode::PayloadTooLarge,
                format!("the body exceeds {MAX_BODY_BYTES} bytes"),
            ))
        }
        Err(e) => Err(Problem::new(
            ErrorCode::RequestInvalid,
            format!("could not read the body: {e}"),
        )),
    }
}

async fn read_json(req: Request<RequestBody>) -> Result<Value, Problem> {
    let body = read_body(req).await?;
    serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not JSON: {e}"),
        )
    })
}

fn fallback_request_id(req: &Request<RequestBody>) -> String {
    req.headers()
        .get("x-request-id")
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
