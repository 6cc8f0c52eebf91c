//! Out-of-process providers: a service anywhere, described by a manifest and reached over
//! HTTP with the contract's own envelope and error model (docs/adr/0018).
//!
//! The manifest (JSON) names the provider and how to reach it:
//! ```json
//! {"domain": "cache", "name": "remote", "version": "1.0.0", "summary": "…",
//!  "capabilities": ["ttl"], "actions": ["get", "set"], "config_schema": {"type": "object"},
//!  "endpoint": "http://10.0.0.7:9000", "health_path": "/health",
//!  "auth": {"type": "bearer", "token": "secret://env/CACHE_REMOTE_TOKEN"}}
//! ```
//! The runtime then sends, each with `Authorization: Bearer <token>` when `auth` is given:
//! - `POST {endpoint}/start` `{"tenant", "config"}` → `{"data": {"instance": "…"}}`, when a
//!   tenant's instance starts (lazily, or on reconfigure);
//! - `POST {endpoint}/{action}` `{"params", "metadata": {"instance"}}` with `X-Tenant-Id` and
//!   `X-Request-Id` → `{"data": …}` or `application/problem+json` with a contract `code`;
//! - `POST {endpoint}/stop` `{"tenant", "instance"}` when the instance stops;
//! - `GET {endpoint}{health_path}` → `{"status", "dependencies"}`.
//!
//! The token is a secret reference, resolved when an instance starts (so a rotation reaches
//! it on the next start); it never appears in an answer, a log line or an error.
//!
//! Health is polled every `health_interval_ms` (default 10 s) from the first instance start
//! on: while the last poll found the service down, calls fail fast with a retryable
//! `provider_unavailable` instead of each waiting for a connect timeout.
//!
//! Egress: the manifest is the operator's (`SWITCHYARD_REMOTE_PROVIDERS`), never a tenant's,
//! so its `endpoint` counts as operator-allowed — it may be on loopback or a private network
//! without `[tenancy.egress]` opening it. The runtime's client goes through the platform's one
//! egress guard (`switchyard-egress`) held to exactly that host and port: no redirect is
//! followed, no proxy is used, and no other forbidden address is reached. What tenants send
//! (config, params) travels to the service; where the runtime connects is never theirs to
//! choose. Errors name the provider, never the endpoint.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use serde_json::{Value, json};
use switchyard_egress::{Egress, Redirects};
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};

use crate::foreign;
use crate::secrets::{Secret, SecretRef, SecretResolver};

/// A manifest the runtime cannot use, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("remote provider manifest: {0}")]
pub struct ManifestError(pub String);

/// The registered engine: a descriptor from the manifest and the way to the service.
pub struct RemoteFactory {
    descriptor: ProviderDescriptor,
    endpoint: String,
    health_path: String,
    /// The reference as written in the manifest; resolved per instance start.
    token: Option<String>,
    secrets: Arc<SecretResolver>,
    http: reqwest::Client,
    health_every: Duration,
    polled: Arc<Polled>,
    /// Set once the poller runs (it needs the tokio runtime the first start runs in).
    poller: OnceLock<()>,
}

/// The service's health as last polled, shared by the factory, its poller and its instances.
#[derive(Default)]
struct Polled(Mutex<Option<Health>>);

impl Polled {
    /// Why calls should not even try: the last poll found the service down.
    fn down(&self) -> Option<String> {
        let last = self.0.lock().ok()?;
        let health = last.as_ref().filter(|h| h.status == HealthStatus::Down)?;
        Some(
            health
                .dependencies
                .iter()
                .filter_map(|d| d.detail.clone())
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// Records a health; answers the previous status when it changed.
    fn record(&self, health: &Health) -> Option<Option<HealthStatus>> {
        let mut last = self.0.lock().ok()?;
        let previous = last.as_ref().map(|h| h.status);
        *last = Some(health.clone());
        (previous != Some(health.status)).then_some(previous)
    }
}

impl RemoteFactory {
    pub fn from_manifest(
        manifest: &Value,
        secrets: Arc<SecretResolver>,
    ) -> Result<RemoteFactory, ManifestError> {
        let descriptor = foreign::descriptor(manifest).map_err(|e| ManifestError(e.to_string()))?;
        let endpoint = manifest
            .get("endpoint")
            .and_then(Value::as_str)
            .filter(|e| e.starts_with("http://") || e.starts_with("https://"))
            .ok_or_else(|| ManifestError("endpoint must be an http:// or https:// URL".into()))?
            .trim_end_matches('/')
            .to_owned();
        let endpoint_url = Url::parse(&endpoint)
            .ok()
            .filter(|url| url.host().is_some())
            .ok_or_else(|| ManifestError("endpoint is not a URL with a host".into()))?;
        let health_path = manifest
            .get("health_path")
            .and_then(Value::as_str)
            .unwrap_or("/health")
            .to_owned();
        if !health_path.starts_with('/') {
            return Err(ManifestError("health_path must start with '/'".into()));
        }
        let token = match manifest.get("auth") {
            None | Some(Value::Null) => None,
            Some(auth) => {
                if auth.get("type").and_then(Value::as_str) != Some("bearer") {
                    return Err(ManifestError(
                        "auth.type must be \"bearer\" (the only scheme so far)".into(),
                    ));
                }
                let token = auth
                    .get("token")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // Checked without echoing the value: a plaintext token must not reach a log.
                SecretRef::parse(token).map_err(|_| {
                    ManifestError(
                        "auth.token must be a secret reference (secret://env/NAME, \
                         secret://file/<path>, secret://vault/<mount>/<path>#<key>), never the token itself"
                            .into(),
                    )
                })?;
                Some(token.to_owned())
            }
        };
        let health_every = match manifest.get("health_interval_ms") {
            None => Duration::from_secs(10),
            Some(ms) => ms
                .as_u64()
                .filter(|ms| *ms >= 100)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    ManifestError("health_interval_ms must be an integer of at least 100".into())
                })?,
        };
        let http = Egress::operator_endpoint(&endpoint_url)
            .client(Redirects::None)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ManifestError(format!("HTTP client: {e}")))?;
        Ok(RemoteFactory {
            descriptor,
            endpoint,
            health_path,
            token,
            secrets,
            http,
            health_every,
            polled: Arc::default(),
            poller: OnceLock::new(),
        })
    }

    /// Reads a manifest file (JSON).
    pub fn from_file(
        path: &std::path::Path,
        secrets: Arc<SecretResolver>,
    ) -> Result<RemoteFactory, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError(format!("{}: {e}", path.display())))?;
        let manifest: Value = serde_json::from_str(&text)
            .map_err(|e| ManifestError(format!("{}: not JSON: {e}", path.display())))?;
        RemoteFactory::from_manifest(&manifest, secrets)
            .map_err(|e| ManifestError(format!("{}: {}", path.display(), e.0)))
    }

    fn id(&self) -> String {
        format!("{}/{}", self.descriptor.domain, self.descriptor.name)
    }

    async fn token(&self) -> Result<Option<Secret>, ProviderError> {
        resolve_token(&self.secrets, self.token.as_deref(), &self.id()).await
    }

    /// Polls the service's health until the factory is gone (the poller then holds the only
    /// reference to the shared record), logging each change of status.
    fn start_poller(&self) {
        self.poller.get_or_init(|| {
            let polled = self.polled.clone();
            let (http, every, id) = (self.http.clone(), self.health_every, self.id());
            let url = format!("{}{}", self.endpoint, self.health_path);
            let (secrets, reference) = (self.secrets.clone(), self.token.clone());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    ticks.tick().await;
                    if Arc::strong_count(&polled) == 1 {
                        return;
                    }
                    let health = match resolve_token(&secrets, reference.as_deref(), &id).await {
                        Ok(token) => probe(&http, &url, token.as_ref()).await,
                        Err(e) => down(e.detail),
                    };
                    if let Some(previous) = polled.record(&health) {
                        tracing::info!(provider = %id, ?previous, status = ?health.status, "remote provider health changed");
                    }
                }
            });
        });
    }
}

/// The manifest's token, resolved; `None` when the manifest has no `auth`.
async fn resolve_token(
    secrets: &SecretResolver,
    reference: Option<&str>,
    id: &str,
) -> Result<Option<Secret>, ProviderError> {
    let Some(reference) = reference else {
        return Ok(None);
    };
    let parsed = SecretRef::parse(reference)
        .map_err(|e| ProviderError::new(ErrorCode::ConfigInvalid, e.to_string()))?;
    secrets
        .resolve(&parsed, reference)
        .await
        .map(Some)
        .map_err(|e| ProviderError::unavailable(format!("{id}: auth token: {e}")))
}

fn down(detail: String) -> Health {
    Health::from_dependencies(vec![DependencyHealth {
        name: "remote".into(),
        status: HealthStatus::Down,
        detail: Some(detail),
    }])
}

/// One `GET` of the health path; the service's own dependencies follow a `remote` entry.
async fn probe(http: &reqwest::Client, url: &str, token: Option<&Secret>) -> Health {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => match response.json::<Health>().await {
            Ok(mut health) => {
                let remote = DependencyHealth {
                    name: "remote".into(),
                    status: HealthStatus::Up,
                    detail: None,
                };
                health.dependencies.insert(0, remote);
                health
            }
            Err(e) => down(format!("invalid health answer: {}", e.without_url())),
        },
        Ok(response) => down(format!("health answered {}", response.status())),
        Err(e) => down(format!("health unreachable: {}", e.without_url())),
    }
}

/// What one instance needs to reach the service.
struct Link {
    id: String,
    endpoint: String,
    health_path: String,
    token: Option<Secret>,
    http: reqwest::Client,
}

impl Link {
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        tenant: &TenantId,
        request_id: &str,
    ) -> Result<Value, ProviderError> {
        let mut request = request
            .header("x-tenant-id", tenant.as_str())
            .header("x-request-id", request_id);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| {
            let e = e.without_url();
            tracing::warn!(provider = %self.id, error = %e, "remote provider unreachable");
            ProviderError::unavailable(format!(
                "{} is unreachable: {}",
                self.id,
                if e.is_connect() {
                    "could not connect"
                } else {
                    "the request failed"
                }
            ))
        })?;
        let status = response.status();
        let body: Option<Value> = response.json().await.ok();
        match body {
            // The runtime's own credentials were refused: an operator's problem (the token
            // behind the manifest's reference), not the caller's, so never a 401 to the caller.
            _ if status == reqwest::StatusCode::UNAUTHORIZED => {
                Err(ProviderError::unavailable(format!(
                    "{} refused the runtime's credentials (401); check the manifest's auth.token",
                    self.id
                ))
                .with_retryable(false))
            }
            Some(body) if status.is_success() => body.get("data").cloned().ok_or_else(|| {
                foreign::failed(format!("{} answered {status} without \"data\"", self.id))
            }),
            Some(body) if body.get("code").is_some() => Err(foreign::error(
                &body,
                &format!("remote provider {}", self.id),
            )),
            _ if matches!(status.as_u16(), 502..=504) => Err(ProviderError::unavailable(format!(
                "{} answered {status}",
                self.id
            ))),
            _ => Err(foreign::failed(format!(
                "{} answered {status} without a problem document",
                self.id
            ))),
        }
    }
}

#[async_trait]
impl ProviderFactory for RemoteFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    /// No tenant client: its code runs behind an endpoint, which a tenant client cannot reach.
    fn in_process(&self) -> bool {
        false
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        self.start_poller();
        let link = Link {
            id: self.id(),
            endpoint: self.endpoint.clone(),
            health_path: self.health_path.clone(),
            token: self.token().await?,
            http: self.http.clone(),
        };
        let request = link
            .http
            .post(format!("{}/start", link.endpoint))
            .json(&json!({"tenant": ctx.tenant.as_str(), "config": ctx.config}));
        let started = link.send(request, &ctx.tenant, "start").await?;
        Ok(Arc::new(RemoteProvider {
            instance: started.get("instance").cloned().unwrap_or(Value::Null),
            tenant: ctx.tenant,
            link,
            polled: self.polled.clone(),
        }))
    }
}

/// One tenant's instance of a remote provider.
struct RemoteProvider {
    tenant: TenantId,
    /// What the service answered to `start`, echoed in every call's metadata.
    instance: Value,
    link: Link,
    polled: Arc<Polled>,
}

#[async_trait]
impl Provider for RemoteProvider {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        if let Some(why) = self.polled.down() {
            return Err(ProviderError::unavailable(format!(
                "{} is down by its last health poll: {why}",
                self.link.id
            )));
        }
        let request = self
            .link
            .http
            .post(format!("{}/{}", self.link.endpoint, call.action))
            .json(&json!({"params": call.params, "metadata": {"instance": self.instance}}));
        self.link.send(request, &ctx.tenant, &ctx.request_id).await
    }

    /// A fresh probe, which also counts as the latest poll.
    async fn health(&self) -> Health {
        let url = format!("{}{}", self.link.endpoint, self.link.health_path);
        let health = probe(&self.link.http, &url, self.link.token.as_ref()).await;
        self.polled.record(&health);
        health
    }

    async fn stop(&self) {
        let request = self
            .link
            .http
            .post(format!("{}/stop", self.link.endpoint))
            .json(&json!({"tenant": self.tenant.as_str(), "instance": self.instance}));
        if let Err(e) = self.link.send(request, &self.tenant, "stop").await {
            tracing::warn!(provider = %self.link.id, tenant = %self.tenant, error = %e.detail, "remote stop failed");
        }
    }
}

/// Manifests named by `SWITCHYARD_REMOTE_PROVIDERS` (paths separated like `PATH`).
pub fn configured() -> Vec<std::path::PathBuf> {
    std::env::var_os("SWITCHYARD_REMOTE_PROVIDERS")
        .map(|paths| {
            std::env::split_paths(&paths)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(auth: Value) -> Value {
        json!({"domain": "cache", "name": "r", "version": "1", "endpoint": "http://127.0.0.1:1",
               "auth": auth})
    }

    #[test]
    fn a_plaintext_token_is_refused_without_being_echoed() {
        let secrets = Arc::new(SecretResolver::default());
        let Err(e) = RemoteFactory::from_manifest(
            &manifest(json!({"type": "bearer", "token": "hunter2-plaintext"})),
            secrets.clone(),
        ) else {
            panic!("a plaintext token was accepted");
        };
        assert!(e.to_string().contains("secret reference"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let ok = RemoteFactory::from_manifest(
            &manifest(json!({"type": "bearer", "token": "secret://env/SOME_TOKEN"})),
            secrets,
        )
        .unwrap();
        assert_eq!(ok.descriptor().actions.len(), 7, "every cache action");
    }

    #[tokio::test]
    async fn an_unreachable_service_is_unavailable_and_retryable() {
        let factory =
            RemoteFactory::from_manifest(&manifest(Value::Null), Default::default()).unwrap();
        let Err(e) = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({}),
                client: None,
            })
            .await
        else {
            panic!("started against nothing");
        };
        assert_eq!(e.code, ErrorCode::ProviderUnavailable, "{e:?}");
        assert!(e.retryable);
    }
}
