//! Calling a third-party system's API for one tenant's connection: credentials, the outbound
//! limiter that follows the system's own rate-limit headers, retries by Airbyte's error
//! taxonomy, all through the operator's egress guard. Every connector sends through [`Api`],
//! so none of them handles a 429, a token expiry or a private address itself.
//!
//! A call meets, in this order: the egress guard (the URL vetted, no redirect followed), the
//! [`limiter`] (a pause a 429 or 503 asked for, the system's own usage headers, an optional
//! requests/second ceiling), the credentials ([`Auth`]: a fixed header, or an OAuth2 access
//! token from [`Tokens`], refreshed before it expires), the request, then the [`retry`]
//! taxonomy of the answer. What only a connector knows enters through small hooks: a
//! [`RateHeaders`] reader and a [`Classify`] function (Salesforce's `INVALID_SESSION_ID` body,
//! its 403 `REQUEST_LIMIT_EXCEEDED`).
//!
//! No error or `Debug` output holds a URL (some APIs carry tokens in the query), a header
//! value or a token.

mod auth;
mod limiter;
mod retry;
mod tokens;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::Retryable;
use reqwest::{Client, Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_egress::{Egress, Redirects};
use switchyard_spi::ProviderError;
use tokio::time::Instant;

pub(crate) use auth::{Auth, Grant, OAuth2};
use limiter::{Limiter, retry_after};
pub(crate) use limiter::{RateHeaders, Usage};
pub(crate) use retry::Verdict;
use retry::{Failure, Replay, Retries};
#[cfg(test)]
use tokens::MemoryTokenStore;
pub(crate) use tokens::{AuthFailed, Token, TokenStore, Tokens};

/// How long connecting may take, and a whole exchange: a system that hangs fails the call
/// as `upstream_unavailable` instead of holding the sync forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A credential or token. `Debug` never shows it, so it cannot reach a log line. Serialized
/// as the bare string, for a [`TokenStore`] only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A response's headers: names lower-cased, values that are not text left out.
pub(crate) type Headers = BTreeMap<String, String>;

/// A connector's reading of an answer the status alone would misjudge, e.g. Salesforce's
/// 403 `REQUEST_LIMIT_EXCEEDED` (a rate limit, not a refused credential). `None` leaves the
/// answer to the taxonomy of [`Verdict::of`].
pub(crate) type Classify = fn(StatusCode, &Value) -> Option<Verdict>;

/// What a system's API answered, once the taxonomy let it through (a 2xx, a 404 the
/// connector may want to read, or whatever its [`Classify`] hook calls an answer).
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    /// Names lower-cased.
    pub(crate) headers: Headers,
    /// The body as JSON; `Value::Null` when it was empty.
    pub(crate) body: Value,
}

/// One connection's client for one system. Share it (behind an `Arc`) between the calls of
/// one connection: its limiter and its tokens are the connection's.
pub(crate) struct Api {
    client: Client,
    egress: Egress,
    auth: Auth,
    /// The system's name, for errors (`shopify`).
    system: &'static str,
    limiter: Limiter,
    classify: Option<Classify>,
    retries: Retries,
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
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::internal(format!("HTTP client: {e}")))?;
        Ok(Api {
            client,
            egress,
            auth,
            system,
            limiter: Limiter::default(),
            classify: None,
            retries: Retries::default(),
        })
    }

    /// Follows the system's own usage headers: calls slow down as the usage nears its top.
    pub(crate) fn with_rate_headers(mut self, headers: RateHeaders) -> Self {
        self.limiter.follow(headers);
        self
    }

    /// At most `per_second` calls a second on this connection, whatever the system allows
    /// (a tenant's own ceiling, e.g. to leave room for its other integrations).
    pub(crate) fn with_ceiling(mut self, per_second: NonZeroU32) -> Self {
        self.limiter.cap(per_second);
        self
    }

    /// The connector's reading of answers the status alone would misjudge.
    pub(crate) fn with_classify(mut self, classify: Classify) -> Self {
        self.classify = Some(classify);
        self
    }

    /// The `instance_url` the OAuth2 token endpoint answered with the current token (where a
    /// Salesforce org's API lives), obtaining a token first when the connection has none.
    /// `None` without OAuth2, or when the endpoint names none.
    pub(crate) async fn instance_url(&self) -> Result<Option<String>, ProviderError> {
        let Auth::OAuth2 { grant, tokens } = &self.auth else {
            return Ok(None);
        };
        tokens
            .access(grant, &self.client, &self.egress)
            .await
            .map_err(|e| Failure::refresh(self.system, e).into_error())?;
        Ok(tokens.instance_url().await)
    }

    /// Sends one request (`body` as JSON when given) and answers the system's response, or
    /// the taxonomy's error. Shorthand for [`Api::call`].
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, ProviderError> {
        let mut call = self.call(method, url);
        call.body = body;
        call.send().await
    }

    /// A request to build further (a JSON body, [`Call::replay_safe`]) and send.
    pub(crate) fn call(&self, method: Method, url: Url) -> Call<'_> {
        Call {
            api: self,
            method,
            url,
            body: None,
            replay_safe: false,
        }
    }
}

/// One request of one connection, sent with [`Call::send`].
pub(crate) struct Call<'a> {
    api: &'a Api,
    method: Method,
    url: Url,
    body: Option<&'a Value>,
    replay_safe: bool,
}

impl<'a> Call<'a> {
    pub(crate) fn json(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sending this request twice leaves the system as sending it once (an upsert by
    /// external id), so it is retried after a failure that may have reached the system,
    /// like a GET or PUT is. Without it a POST or PATCH is retried only when the system
    /// cannot have processed it (refused connection, 408, 429, 503).
    pub(crate) fn replay_safe(mut self) -> Self {
        self.replay_safe = true;
        self
    }

    /// Sends the request, retried by the taxonomy within the connection's [`Retries`].
    pub(crate) async fn send(self) -> Result<Response, ProviderError> {
        let api = self.api;
        api.egress
            .vet_url(&self.url)
            .await
            .map_err(|refusal| refusal.at(""))?;
        let deadline = Instant::now() + api.retries.total;
        let replayable = self.replay_safe || self.method.is_idempotent();
        let reauthorized = AtomicBool::new(false);
        (|| self.attempt(deadline, &reauthorized))
            .retry(api.retries.backoff())
            .when(|failure| failure.retryable(replayable))
            .adjust(|failure, delay| failure.delay(delay, deadline))
            .await
            .map_err(Failure::into_error)
    }

    /// One exchange: admitted by the limiter, authenticated, sent, judged.
    async fn attempt(
        &self,
        deadline: Instant,
        reauthorized: &AtomicBool,
    ) -> Result<Response, Failure> {
        let api = self.api;
        let system = api.system;
        api.limiter
            .admit(deadline)
            .await
            .map_err(|wait| Failure::held_too_long(system, wait))?;
        let mut request = api.client.request(self.method.clone(), self.url.clone());
        let bearer = match &api.auth {
            Auth::None => None,
            Auth::Header { name, value } => {
                request = request.header(name.as_str(), value.0.as_str());
                None
            }
            Auth::OAuth2 { grant, tokens } => {
                let token = tokens
                    .access(grant, &api.client, &api.egress)
                    .await
                    .map_err(|e| Failure::refresh(system, e))?;
                request = request.bearer_auth(&token.0);
                Some((tokens, token))
            }
        };
        if let Some(body) = self.body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::network(system, &e, Replay::of_send(&e)))?;
        let status = response.status();
        let headers: Headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        api.limiter.observe(&headers);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::network(system, &e, Replay::IfIdempotent))?;
        // An error page (a proxy's HTML 503) is no JSON; only an answer's body must be.
        let parsed = if bytes.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_slice(&bytes)
        };
        let verdict = api
            .classify
            .and_then(|classify| classify(status, parsed.as_ref().unwrap_or(&Value::Null)))
            .unwrap_or_else(|| Verdict::of(status));
        match verdict {
            Verdict::Answer => Ok(Response {
                status,
                headers,
                body: parsed.map_err(|e| Failure::answer_not_json(system, &e))?,
            }),
            Verdict::Reauthorize => match bearer {
                Some((tokens, token)) if !reauthorized.swap(true, Ordering::SeqCst) => {
                    tokens.invalidate(&token).await;
                    Err(Failure::reauthorize(system, status))
                }
                _ => Err(Failure::credentials(system, status)),
            },
            Verdict::RateLimited => {
                let after = retry_after(&headers);
                if let Some(after) = after {
                    api.limiter.pause(after);
                }
                Err(Failure::rate_limited(system, after))
            }
            Verdict::Unavailable => {
                let after = retry_after(&headers);
                if let Some(after) = after {
                    api.limiter.pause(after);
                }
                Err(Failure::unavailable(system, status, after))
            }
            Verdict::Refused => Err(Failure::refused(system, status)),
        }
    }
}
