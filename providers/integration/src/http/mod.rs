//! Calling a third-party system's API for one tenant's connection: credentials, the outbound
//! limiter that follows the system's own rate-limit headers, retries by Airbyte's error
//! taxonomy, all through the operator's egress guard. Every connector sends through [`Api`],
//! so none of them handles a 429, a token expiry or a private address itself.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::{Client, Method, StatusCode, Url};
use serde_json::Value;
use switchyard_egress::{Egress, Redirects};
use switchyard_spi::{ErrorCode, ProviderError};

/// A credential or token. `Debug` never shows it, so it cannot reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How a connection authenticates its calls.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// No credentials (a public API).
    None,
    /// A fixed header, e.g. `X-Shopify-Access-Token: <token>` or `Authorization: Bearer <key>`.
    Header { name: String, value: Secret },
}

/// What a system's API answered, once the taxonomy let it through (a 2xx, or a 404 the
/// connector may want to read).
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    /// Names lower-cased.
    pub(crate) headers: BTreeMap<String, String>,
    /// The body as JSON; `Value::Null` when it was empty.
    pub(crate) body: Value,
}

/// One connection's client for one system.
pub(crate) struct Api {
    client: Client,
    egress: Egress,
    auth: Auth,
    /// The system's name, for errors (`shopify`).
    system: &'static str,
}

impl Api {
    /// A client for `system` held to `egress`, authenticating with `auth`.
    pub(crate) fn new(
        system: &'static str,
        egress: Egress,
        auth: Auth,
    ) -> Result<Self, ProviderError> {
        let client = egress
            .client(Redirects::None)
            .user_agent(concat!(
                "switchyard-integration/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ProviderError::internal(format!("HTTP client: {e}")))?;
        Ok(Api {
            client,
            egress,
            auth,
            system,
        })
    }

    /// Sends one request (`body` as JSON when given) and answers the system's response, or
    /// the taxonomy's error.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, ProviderError> {
        self.egress
            .vet_url(&url)
            .await
            .map_err(|refusal| refusal.at(""))?;
        let mut request = self.client.request(method, url);
        if let Auth::Header { name, value } = &self.auth {
            request = request.header(name.as_str(), value.0.as_str());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            ProviderError::new(
                ErrorCode::UpstreamUnavailable,
                format!("{}: {}", self.system, e.without_url()),
            )
        })?;
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let bytes = response.bytes().await.map_err(|e| {
            ProviderError::new(
                ErrorCode::UpstreamUnavailable,
                format!("{}: {}", self.system, e.without_url()),
            )
        })?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ProviderError::new(
                    ErrorCode::ProviderFailed,
                    format!("{} answered a body that is not JSON: {e}", self.system),
                )
            })?
        };
        match status.as_u16() {
            200..=299 | 404 => Ok(Response {
                status,
                headers,
                body,
            }),
            401 | 403 => Err(ProviderError::new(
                ErrorCode::UpstreamCredentialsInvalid,
                format!(
                    "{} refused the connection's credentials ({status})",
                    self.system
                ),
            )),
            408 | 500..=599 => Err(ProviderError::new(
                ErrorCode::UpstreamUnavailable,
                format!("{} answered {status}", self.system),
            )),
            429 => Err(ProviderError::new(
                ErrorCode::RateLimited,
                format!("{} is rate limiting the connection", self.system),
            )),
            _ => Err(ProviderError::new(
                ErrorCode::ProviderFailed,
                format!("{} refused the call ({status})", self.system),
            )),
        }
    }
}
