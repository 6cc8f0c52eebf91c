//! The runtime's observability endpoints: `/metrics` (the process's OpenMetrics),
//! `/providers/{d}/{n}/metrics` (one provider, one tenant) and `/readyz`; and the header that
//! tells the gateway which error code a problem carried.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_telemetry::metrics::{self, Format};

use crate::runtime::Runtime;

pub use switchyard_request::CODE_HEADER;

/// `SWITCHYARD_REQUIRED_PROVIDERS`: `domain/name` list the runtime must host to be ready.
static REQUIRED: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::env::var("SWITCHYARD_REQUIRED_PROVIDERS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
});

/// `GET /metrics`: the whole process, for an operator's scraper.
pub fn process_metrics(headers: &HeaderMap) -> Result<Response<Full<Bytes>>, Problem> {
    // The runtime's port is internal (only gateways should reach it): without a configured
    // token it is open.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if metrics::scrape_token_matches(authorization) == Some(false) {
        return Err(Problem::new(
            ErrorCode::Unauthenticated,
            "/metrics needs the bearer token in SWITCHYARD_METRICS_TOKEN",
        ));
    }
    Ok(exposition(headers, metrics::global().encode()))
}

/// `GET /providers/{d}/{n}/metrics`: that provider's series of the calling tenant only.
pub fn provider_metrics(
    headers: &HeaderMap,
    runtime: &Runtime,
    tenant: &TenantId,
    domain: &str,
    name: &str,
) -> Result<Response<Full<Bytes>>, Problem> {
    if runtime.registry().index_of(domain, name).is_none() {
        return Err(Problem::new(
            ErrorCode::ProviderNotFound,
            format!("no provider {domain}/{name}; GET /providers lists them"),
        ));
    }
    let body = metrics::global().encode_provider(domain, name, Some(tenant.as_str()));
    Ok(exposition(headers, body))
}

/// The tenant whose platform-default instances `/readyz` probes. Reserved: its instances run
/// on the platform's default config and serve no one.
const PROBE_TENANT: &str = "readyz";

/// How long one required provider's health may take before it counts as not running.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /readyz`: the platform store answers, and every provider in
/// `SWITCHYARD_REQUIRED_PROVIDERS` is hosted here and runs — its instance on the platform's
/// default config (under the reserved tenant `readyz`) reports `up`. Liveness, `/healthz`,
/// asks neither.
pub async fn readiness(runtime: &Arc<Runtime>) -> Response<Full<Bytes>> {
    let Ok(probe) = TenantId::parse(PROBE_TENANT) else {
        return ready_answer(false, json!({"reason": "no probe tenant"}));
    };
    let store_ok = runtime.store().tenant_exists(&probe).await.is_ok();
    let mut not_running = Vec::new();
    for required in REQUIRED.iter() {
        let (domain, name) = required.split_once('/').unwrap_or((required, ""));
        let health = tokio::time::timeout(PROBE_TIMEOUT, runtime.health(&probe, domain, name))
            .await
            .ok()
            .and_then(Result::ok);
        let up = health.is_some_and(|h| h["status"] == "up" && h["lifecycle"] == "running");
        if !up {
            not_running.push(required.as_str());
        }
    }
    let ready = store_ok && not_running.is_empty();
    let mut answer = ready_answer(
        ready,
        json!({"store": if store_ok {"up"} else {"down"}, "providers_not_running": not_running}),
    );
    if ready
        && runtime
            .node_local()
            .as_array()
            .is_some_and(|l| !l.is_empty())
    {
        *answer.body_mut() = Full::new(Bytes::from(
            json!({"status": "ready", "node_local": runtime.node_local()}).to_string(),
        ));
    }
    answer
}

fn ready_answer(ready: bool, detail: serde_json::Value) -> Response<Full<Bytes>> {
    let (status, body) = if ready {
        (StatusCode::OK, json!({"status": "ready"}))
    } else {
        let mut body = json!({"status": "not_ready"});
        if let (Some(body), Some(detail)) = (body.as_object_mut(), detail.as_object()) {
            body.extend(detail.clone());
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `openmetrics` in the format the scraper's `Accept` asks for.
fn exposition(headers: &HeaderMap, openmetrics: String) -> Response<Full<Bytes>> {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let mut response = Response::new(Full::new(Bytes::from(format.render(openmetrics))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}
