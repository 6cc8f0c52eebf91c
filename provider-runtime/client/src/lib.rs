//! The provider client: the only way a business service reaches a database, a bus or any other
//! capability. Services hold a `&dyn ProviderClient` and name providers by id (`db/sqlite`), so
//! the same service code runs in process next to the runtime or against a gateway over HTTP,
//! and no crate under `business-services/` needs a driver.
//!
//! A client is bound to one tenant when it is made; there is no call that takes a tenant, so
//! a service cannot act for another tenant by passing the wrong argument.

mod service;

pub use service::{Service, ServiceDescriptor};

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem, TenantId};

#[async_trait]
pub trait ProviderClient: Send + Sync {
    /// The tenant every call of this client acts for.
    fn tenant(&self) -> &TenantId;

    /// Runs `action` of `provider` (`"<domain>/<name>"`, or `"services/<name>"` for a business
    /// service) and answers its `data`, or the problem the provider, the runtime or the gateway
    /// answered.
    async fn invoke(&self, provider: &str, action: &str, params: Value) -> Result<Value, Problem>;

    /// What `provider` (`"<domain>/<name>"`) declares of itself, as `GET
    /// /providers/{domain}/{name}` answers it: its descriptor (capabilities, actions, config
    /// schema) with the tenant's status and config. A service learns from it what the provider
    /// speaks, e.g. a db provider's `dialect:<name>` (ADR 24). Over a gateway this is a read,
    /// which the key's `read` scope grants.
    async fn describe(&self, provider: &str) -> Result<Value, Problem>;

    /// The principal a service's call is made for: the gateway's authenticated subject of the
    /// request that reached the service (`key:<id>`, `oidc:<sub>`), or the client subject of
    /// the in-process caller (`service:orders`, `provider:workflow/restate`). Set by the
    /// runtime, never from params, so a service may record it as who claimed or decided
    /// something. `None` where the client serves no one's call (an HTTP client, a worker).
    fn caller(&self) -> Option<&str> {
        None
    }

    /// Runs `action` of `provider` as a stream of partial results
    /// (the items of the provider's `stream`). A problem before the first item is the
    /// `Err` answered here. Clients that cannot stream answer `action_not_found`.
    async fn stream(
        &self,
        provider: &str,
        action: &str,
        _params: Value,
    ) -> Result<ValueStream, Problem> {
        Err(Problem::new(
            ErrorCode::ActionNotFound,
            format!("this client cannot stream {provider}/{action}"),
        ))
    }
}

/// The items of a streamed call, each a partial result or the problem that ended the stream.
pub type ValueStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Value, Problem>> + Send>>;

/// The domain part that addresses a business service instead of a provider: `services/ledger`
/// reaches `/services/ledger/{action}`, so one service composes another the same way it
/// composes providers.
pub const SERVICES: &str = "services";

/// Splits `"<domain>/<name>"`, refusing anything that would not name one provider route.
pub fn provider_route(provider: &str) -> Result<(&str, &str), Problem> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    match provider.split_once('/') {
        Some((domain, name)) if valid(domain) && valid(name) => Ok((domain, name)),
        _ => Err(Problem::new(
            ErrorCode::RequestInvalid,
            format!("{provider:?} is not a provider id of the form <domain>/<name>"),
        )),
    }
}

/// Calls providers through a Switchyard gateway with a tenant's API key (or OIDC token). The
/// gateway runs its whole pipeline — authentication, rate limits, policy — on these calls as on
/// any other client's.
pub struct HttpClient {
    http: reqwest::Client,
    base: String,
    tenant: TenantId,
    authorization: String,
}

impl HttpClient {
    /// `base` is the gateway's URL (`http://127.0.0.1:8080`); `credential` an API key or bearer
    /// token of `tenant`. The gateway refuses the calls if the two do not belong together.
    pub fn new(base: impl Into<String>, tenant: TenantId, credential: &str) -> Self {
        HttpClient {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_owned(),
            tenant,
            authorization: format!("Bearer {credential}"),
        }
    }
}

#[async_trait]
impl ProviderClient for HttpClient {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    async fn invoke(&self, provider: &str, action: &str, params: Value) -> Result<Value, Problem> {
        let (domain, name) = provider_route(provider)?;
        let url = if domain == SERVICES {
            format!("{}/services/{name}/{action}", self.base)
        } else {
            format!("{}/providers/{domain}/{name}/{action}", self.base)
        };
        let request = self.http.post(url).json(&json!({"params": params}));
        let mut envelope = self.answer(request).await?;
        Ok(envelope["data"].take())
    }

    async fn describe(&self, provider: &str) -> Result<Value, Problem> {
        let (domain, name) = provider_route(provider)?;
        let url = format!("{}/providers/{domain}/{name}", self.base);
        self.answer(self.http.get(url)).await
    }
}

impl HttpClient {
    /// Sends `request` as this client's tenant and answers the gateway's JSON body, or the
    /// problem it answered.
    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Value, Problem> {
        let response = request
            .header("authorization", &self.authorization)
            .header("x-tenant-id", self.tenant.as_str())
            .send()
            .await
            .map_err(|e| {
                Problem::new(
                    ErrorCode::UpstreamUnavailable,
                    format!("gateway unreachable: {e}"),
                )
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            Problem::new(
                ErrorCode::UpstreamUnavailable,
                format!("gateway answer cut short: {e}"),
            )
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                Problem::new(
                    ErrorCode::Internal,
                    format!("gateway answered {status} with a body that is not JSON: {e}"),
                )
            });
        }
        Err(
            serde_json::from_slice::<Problem>(&body).unwrap_or_else(|_| {
                let code = if status.is_server_error() {
                    ErrorCode::UpstreamUnavailable
                } else {
                    ErrorCode::Internal
                };
                Problem::new(
                    code,
                    format!("gateway answered {status} without a problem document"),
                )
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_name_exactly_one_route() {
        assert_eq!(provider_route("db/sqlite").unwrap(), ("db", "sqlite"));
        for bad in [
            "db",
            "db/",
            "/sqlite",
            "db/sqlite/query",
            "db/../x",
            "DB/sqlite",
            "",
        ] {
            let problem = provider_route(bad).unwrap_err();
            assert_eq!(problem.code, ErrorCode::RequestInvalid, "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_a_retryable_upstream_problem() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = HttpClient::new(
            format!("http://127.0.0.1:{port}"),
            TenantId::parse("acme").unwrap(),
            "key",
        );
        let problem = client
            .invoke("cache/memory", "get", json!({"key": "k"}))
            .await
            .unwrap_err();
        assert_eq!(problem.code, ErrorCode::UpstreamUnavailable);
        assert!(problem.retryable);
    }
}
