//! What the gateway tells operators about each request: its RED metrics, its spans, its
//! access log line; and the two endpoints it answers itself, `/metrics` (the process's
//! OpenMetrics) and `/readyz`.
//!
//! The filters only report facts (a refusal's code, a policy decision); this module turns
//! them into series and spans, so the request path stays a list of filters. Labels come from
//! the verified identity and, for the target, from the path only when the runtime answered it
//! with something other than 404/405: a caller probing random paths (even one refused with
//! 429 or 403 first) lands in one [`OTHER`] series instead of minting new ones.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_request::CODE_HEADER;
use switchyard_telemetry::metrics::{
    self, CallLabels, Counter, DecisionLabels, Format, Histogram, OK, OTHER, OutcomeLabels,
    TenantLabels,
};
use switchyard_telemetry::trace::{self, Context, Kind};

use crate::filters::idempotency::REPLAYED_HEADER;
use crate::upstream::RuntimeLink;
use crate::{Gateway, RequestCtx, problem};

/// The request's observation so far.
#[derive(Default)]
pub struct Observed {
    started: Option<Instant>,
    /// The code of the problem that answered the request, the gateway's own or the runtime's.
    code: Option<ErrorCode>,
    /// The caller's tenant, once authenticated (refusals after that are counted under it).
    tenant: Option<TenantId>,
    /// The runtime answered (its path named a real target) rather than a gateway filter.
    from_runtime: bool,
    /// The request's server span, its filters span and its forward (client) span.
    root: Option<Context>,
    filters: Option<Context>,
    forward: Option<Context>,
}

/// Starts the clock and, when tracing is on, the request's span (continuing the client's
/// `traceparent` when it is valid) with its filters span under it.
pub fn start(ctx: &mut RequestCtx, header: &RequestHeader) {
    ctx.observed.started = Some(Instant::now());
    if !trace::enabled() {
        return;
    }
    let sent = header.headers.get("traceparent");
    let accepted = crate::filters::trace_context::accept(sent, None);
    let continued = sent.is_some_and(|v| v.as_bytes() == accepted.traceparent.as_bytes());
    let parent = trace::remote_parent(continued.then_some(accepted.traceparent.as_str()));
    let root = trace::start(
        "gateway.request",
        Kind::Server,
        &parent,
        vec![
            trace::attr("http.request.method", header.method.as_str()),
            trace::attr("url.path", header.uri.path()),
            trace::attr("switchyard.request_id", ctx.request_id.clone()),
        ],
    );
    ctx.observed.filters = Some(trace::start(
        "gateway.filters",
        Kind::Internal,
        &root,
        vec![],
    ));
    ctx.observed.root = Some(root);
}

/// The request leaves for the runtime: the filters span ends, a client span starts, and the
/// `traceparent` sent along names it, so the runtime's spans hang under it.
pub fn forwarding(ctx: &mut RequestCtx) {
    let Some(root) = &ctx.observed.root else {
        return;
    };
    if let Some(filters) = ctx.observed.filters.take() {
        trace::end(&filters, None);
    }
    let forward = trace::start("gateway.forward", Kind::Client, root, vec![]);
    if let Some(trace_ctx) = &mut ctx.trace {
        trace_ctx.traceparent = trace::traceparent(&forward);
    }
    ctx.observed.forward = Some(forward);
}

/// The runtime answered: keep the code of its problem, named in an internal header so that
/// no body is parsed, and strip that header.
pub fn upstream_answered(ctx: &mut RequestCtx, response: &mut ResponseHeader) {
    if let Some(code) = response
        .headers
        .get(CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_value(serde_json::Value::String(v.to_owned())).ok())
    {
        ctx.observed.code = Some(code);
    }
    ctx.observed.from_runtime = true;
    response.remove_header(CODE_HEADER);
    if let Some(forward) = ctx.observed.forward.take() {
        let code = ctx.observed.code.map(ErrorCode::as_str);
        trace::end(&forward, code);
    }
}

/// The credentials named this tenant.
pub fn authenticated(ctx: &mut RequestCtx, tenant: &TenantId) {
    ctx.observed.tenant = Some(tenant.clone());
}

/// The caller's tenant, once authenticated.
pub fn tenant(ctx: &RequestCtx) -> Option<&TenantId> {
    ctx.observed.tenant.as_ref()
}

/// The gateway answered the request with this problem itself.
pub fn refused(ctx: &mut RequestCtx, code: ErrorCode) {
    ctx.observed.code = Some(code);
}

/// Counts one policy decision.
pub fn policy_decision(tenant: &str, allow: bool) {
    let result = if allow { "allow" } else { "deny" };
    DECISIONS.with_borrow_mut(|series| {
        series.with(
            &[tenant, result],
            || {
                metrics::global()
                    .gateway
                    .policy_decisions
                    .get_or_create_owned(&DecisionLabels {
                        tenant: tenant.to_owned(),
                        result: result.to_owned(),
                    })
            },
            |counter| {
                counter.inc();
            },
        );
    });
}

/// The series of one label set, found by the label values joined in a buffer the thread
/// reuses: a request counted in a series its thread has seen allocates nothing. Each thread
/// keeps its own (Pingora's worker threads are few and long-lived, and label sets are bounded,
/// see [`metrics`]), so finding one takes no lock; the handles share their values with the
/// registry's families.
struct ThreadSeries<M> {
    key: String,
    known: HashMap<Box<str>, M>,
}

impl<M> ThreadSeries<M> {
    fn new() -> Self {
        ThreadSeries {
            key: String::new(),
            known: HashMap::new(),
        }
    }

    /// Applies `record` to the series of `labels`, resolving it with `resolve` the first time.
    fn with(&mut self, labels: &[&str], resolve: impl FnOnce() -> M, record: impl FnOnce(&M)) {
        self.key.clear();
        for label in labels {
            // No label value holds a NUL (they are verified words, see `target`).
            self.key.push_str(label);
            self.key.push('\0');
        }
        if let Some(series) = self.known.get(self.key.as_str()) {
            record(series);
            return;
        }
        let series = resolve();
        record(&series);
        self.known.insert(self.key.as_str().into(), series);
    }
}

/// A request's duration and its count by outcome.
struct RequestSeries {
    duration: Histogram,
    requests: Counter,
}

thread_local! {
    static REQUESTS: RefCell<ThreadSeries<RequestSeries>> = RefCell::new(ThreadSeries::new());
    static DECISIONS: RefCell<ThreadSeries<Counter>> = RefCell::new(ThreadSeries::new());
}

/// `SWITCHYARD_ACCESS_LOG_SAMPLE`: the share of successful requests that get an access log
/// line, from 0 to 1 (default 1, every request). Refusals and errors are always logged.
static ACCESS_LOG_SAMPLE: LazyLock<f64> = LazyLock::new(|| {
    let sample = std::env::var("SWITCHYARD_ACCESS_LOG_SAMPLE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| (0.0..=1.0).contains(v));
    if sample.is_none() && std::env::var_os("SWITCHYARD_ACCESS_LOG_SAMPLE").is_some() {
        tracing::warn!(
            "SWITCHYARD_ACCESS_LOG_SAMPLE is not a number from 0 to 1; logging every request"
        );
    }
    sample.unwrap_or(1.0)
});

/// Whether this successful request is one of the sampled: every `1/sample`-th, counted over
/// the process, so the share is exact however the requests spread over threads.
fn sampled(sample: f64) -> bool {
    static SUCCESSES: AtomicU64 = AtomicU64::new(0);
    if sample >= 1.0 {
        return true;
    }
    let n = SUCCESSES.fetch_add(1, Ordering::Relaxed) as f64;
    (n * sample).floor() != ((n + 1.0) * sample).floor()
}

/// The request is over (called from `logging`, which runs for every request): record its
/// metrics, end its spans and write its access log line.
pub fn finish(session: &Session, ctx: &mut RequestCtx) {
    let Some(started) = ctx.observed.started else {
        return;
    };
    let elapsed = started.elapsed();
    let response = session.response_written();
    let status = response.map_or(0, |r| r.status.as_u16());
    let code = match ctx.observed.code {
        Some(code) => code.as_str(),
        None if (1..400).contains(&status) => OK,
        // No response, or an error nobody named (a proxy failure answered by Pingora).
        None => OTHER,
    };
    let tenant = ctx.observed.tenant.as_ref().map_or(OTHER, TenantId::as_str);
    let segments = ctx.segments.of(session.req_header().uri.path());
    let replayed = response.is_some_and(|r| r.headers.contains_key(REPLAYED_HEADER));
    // A path is trusted as a label only once the runtime (or a stored answer it gave) has
    // answered it with something else than "no such thing".
    let vouched = ctx.observed.from_runtime || replayed;
    let (domain, provider, action) = if vouched && status != 404 && status != 405 {
        target(segments.as_slice())
    } else {
        (OTHER, OTHER, OTHER)
    };
    REQUESTS.with_borrow_mut(|series| {
        series.with(
            &[tenant, domain, provider, action, code],
            || {
                let gateway = &metrics::global().gateway;
                let call = CallLabels {
                    tenant: tenant.to_owned(),
                    domain: domain.to_owned(),
                    provider: provider.to_owned(),
                    action: action.to_owned(),
                };
                RequestSeries {
                    duration: gateway.duration.get_or_create_owned(&call),
                    requests: gateway.requests.get_or_create_owned(&OutcomeLabels {
                        tenant: call.tenant,
                        domain: call.domain,
                        provider: call.provider,
                        action: call.action,
                        code: code.to_owned(),
                    }),
                }
            },
            |series| {
                series.duration.observe(elapsed.as_secs_f64());
                series.requests.inc();
            },
        );
    });
    let gateway = &metrics::global().gateway;
    let tenant_labels = || TenantLabels {
        tenant: tenant.to_owned(),
    };
    if ctx.observed.code == Some(ErrorCode::RateLimited) {
        gateway.rate_limited.get_or_create(&tenant_labels()).inc();
    }
    if replayed {
        gateway
            .idempotency_replays
            .get_or_create(&tenant_labels())
            .inc();
    }
    let trace_id = match &ctx.observed.root {
        Some(root) => trace::trace_id(root),
        None => ctx
            .trace
            .as_ref()
            .and_then(|t| t.traceparent.get(3..35))
            .unwrap_or_default()
            .to_owned(),
    };
    for span in [ctx.observed.forward.take(), ctx.observed.filters.take()]
        .into_iter()
        .flatten()
    {
        trace::end(&span, None);
    }
    if let Some(root) = ctx.observed.root.take() {
        let code = (code != OK).then_some(code);
        trace::end(&root, code);
    }
    if code == OK && !sampled(*ACCESS_LOG_SAMPLE) {
        return;
    }
    tracing::info!(
        target: "switchyard::access",
        tenant,
        request_id = %ctx.request_id,
        trace_id,
        domain,
        provider,
        action,
        status,
        code,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
}

/// `(domain, provider, action)` of a path's segments, each a bounded word or [`OTHER`].
fn target<'a>(segments: &[&'a str]) -> (&'a str, &'a str, &'a str) {
    let sane = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
    };
    let (domain, provider, action) = match segments {
        ["providers"] => (OTHER, OTHER, "catalog"),
        ["providers", d, n] => (*d, *n, "describe"),
        ["providers", d, n, a] => (*d, *n, *a),
        ["services", n, a] => ("services", *n, *a),
        ["inbound", _, d, n] => (*d, *n, switchyard_request::inbound::ACTION),
        ["policies", what] => ("policies", OTHER, *what),
        _ => (OTHER, OTHER, OTHER),
    };
    if [domain, provider, action].iter().all(|s| sane(s)) {
        (domain, provider, action)
    } else {
        (OTHER, OTHER, OTHER)
    }
}

impl Gateway {
    /// Answers `/metrics` and `/readyz`, which no filter sees: `Some` when the request was one
    /// of them.
    pub(crate) async fn answer_operator(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
    ) -> Option<pingora::Result<()>> {
        let header = session.req_header();
        if header.method != http::Method::GET {
            return None;
        }
        let answer = match header.uri.path() {
            "/metrics" if may_scrape(session) => {
                let format =
                    Format::negotiate(header.headers.get("accept").and_then(|v| v.to_str().ok()));
                Ok((
                    200,
                    format.content_type(),
                    Bytes::from(format.render(metrics::global().encode())),
                ))
            }
            "/metrics" => Err(Problem::new(
                ErrorCode::Unauthenticated,
                "/metrics needs the bearer token in SWITCHYARD_METRICS_TOKEN (without one, loopback clients only)",
            )),
            "/readyz" => {
                let ready = match &self.runtime {
                    RuntimeLink::Http(upstreams) => upstreams.select(None).is_some(),
                    RuntimeLink::InProcess(_) => true,
                };
                Ok(if ready {
                    (200, "application/json", self.ready_body.clone())
                } else {
                    (
                        503,
                        "application/json",
                        Bytes::from_static(
                            b"{\"status\":\"not_ready\",\"reason\":\"no provider runtime is healthy\"}",
                        ),
                    )
                })
            }
            _ => return None,
        };
        Some(match answer {
            Ok((status, content_type, body)) => {
                write_plain(session, status, content_type, body, &ctx.request_id).await
            }
            Err(problem) => problem::respond(session, problem, &ctx.request_id, &[]).await,
        })
    }
}

/// `SWITCHYARD_METRICS_TOKEN` as a bearer token, or — when none is configured — a loopback
/// peer: the series name every tenant, so the public port must not show them to anyone.
fn may_scrape(session: &Session) -> bool {
    let authorization = session
        .req_header()
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    metrics::scrape_token_matches(authorization).unwrap_or_else(|| {
        session
            .client_addr()
            .and_then(|a| a.as_inet())
            .is_some_and(|a| a.ip().is_loopback())
    })
}

async fn write_plain(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Bytes,
    request_id: &str,
) -> pingora::Result<()> {
    let mut response = ResponseHeader::build(status, Some(3))?;
    response.insert_header("content-type", content_type)?;
    response.insert_header("content-length", body.len().to_string())?;
    response.insert_header("x-request-id", request_id)?;
    session
        .write_response_header(Box::new(response), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_request::path::Split;

    #[test]
    fn a_sample_logs_that_share_of_successes() {
        assert_eq!((0..1000).filter(|_| sampled(0.25)).count(), 250);
        assert_eq!((0..1000).filter(|_| sampled(0.0)).count(), 0);
        assert!((0..10).all(|_| sampled(1.0)));
    }

    #[test]
    fn a_thread_resolves_each_label_set_once() {
        let mut series = ThreadSeries::new();
        let mut resolved = 0;
        let mut recorded = Vec::new();
        for labels in [["a", "b"], ["a", "b"], ["ab", ""], ["a", "b"]] {
            series.with(
                &labels,
                || {
                    resolved += 1;
                    resolved
                },
                |id| recorded.push(*id),
            );
        }
        assert_eq!(resolved, 2);
        assert_eq!(recorded, [1, 1, 2, 1]);
    }

    fn target_of(path: &str) -> (&str, &str, &str) {
        target(Split::of(path).as_slice())
    }

    #[test]
    fn targets_are_bounded_words() {
        assert_eq!(
            target_of("/providers/cache/memory/get"),
            ("cache", "memory", "get")
        );
        assert_eq!(
            target_of("/services/ledger/post_journal"),
            ("services", "ledger", "post_journal")
        );
        assert_eq!(
            target_of("/providers/db/sqlite/health"),
            ("db", "sqlite", "health")
        );
        assert_eq!(
            target_of("/providers/cache/Memory%20x/get"),
            (OTHER, OTHER, OTHER)
        );
        assert_eq!(
            target_of(&format!("/providers/cache/{}/get", "m".repeat(65))),
            (OTHER, OTHER, OTHER)
        );
        assert_eq!(target_of("/healthz"), (OTHER, OTHER, OTHER));
    }
}
