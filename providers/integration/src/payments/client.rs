//! The payments API (Stripe's PaymentIntents) for one tenant's account: form-encoded requests
//! with the secret key and the caller's `Idempotency-Key`, retried while that is harmless, and
//! Stripe's error objects read into the platform's stable codes.
//!
//! Every POST carries an idempotency key, so sending it again after a failure that may have
//! reached the API (a 500, a broken connection) is safe: the API answers the first result.
//! That is why this client retries every method, where `crate::http` retries a POST only when
//! the system cannot have processed it. Stripe's error taxonomy (docs.stripe.com/error-codes):
//!
//! | answer | code | retried |
//! |---|---|---|
//! | 402 `card_error` | `payment_declined` | no |
//! | 400 `idempotency_error` | `idempotency_key_reused` | no |
//! | 409 (the key's first request still running) | `idempotency_in_flight` | yes |
//! | 400 `payment_intent_unexpected_state`, `charge_already_refunded` | `conflict` | no |
//! | 400 on a parameter | `params_unprocessable` at `/params/<field>` | no |
//! | 404 `resource_missing` | `resource_not_found` | no |
//! | 401, 403 | `upstream_credentials_invalid` | no |
//! | 429 | `rate_limited` | yes |
//! | 5xx, timeout, no answer | `upstream_unavailable` | yes |
//!
//! No error holds the secret key, a URL or a header value.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::Value;
use switchyard_egress::{Egress, Redirects};
use switchyard_spi::{ErrorCode, ProviderError};
use tokio::time::Instant;

use crate::http::Secret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One exchange; Stripe answers in well under a second.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Sends per call, and the time they fit in: inside the runtime's 30 s call timeout.
const ATTEMPTS: usize = 4;
const BUDGET: Duration = Duration::from_secs(20);

/// The API version the engine was written against, sent on every call so an account's
/// default version cannot change the objects' shape.
const STRIPE_VERSION: &str = "2024-06-20";

/// One tenant's account.
pub(super) struct Stripe {
    client: Client,
    egress: Egress,
    origin: Url,
    bearer: Secret,
}

/// A successful answer.
pub(super) struct Answer {
    pub(super) body: Value,
    /// `Idempotent-Replayed: true`: a saved result of an earlier call with the same key.
    pub(super) replayed: bool,
}

/// Why one attempt failed, and whether another may help.
struct Failure {
    error: ProviderError,
    retry: bool,
}

impl Stripe {
    pub(super) fn new(
        origin: Url,
        secret_key: &Secret,
        egress: Egress,
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
        Ok(Stripe {
            client,
            egress,
            origin,
            bearer: Secret(format!("Bearer {}", secret_key.0)),
        })
    }

    /// Sends `form` to `path` (`/v1/…`), with `idempotency_key` on a POST, retrying within
    /// the call's budget.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Answer, ProviderError> {
        let url = self
            .origin
            .join(path)
            .map_err(|_| ProviderError::internal("a payments API path did not join the origin"))?;
        self.egress
            .vet_url(&url)
            .await
            .map_err(|refusal| refusal.at("/api_url"))?;
        let deadline = Instant::now() + BUDGET;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter()
            .with_max_times(ATTEMPTS - 1);
        (|| self.attempt(&method, &url, form, idempotency_key))
            .retry(backoff)
            .when(|failure| failure.retry)
            .adjust(|_, delay| delay.filter(|d| Instant::now() + *d < deadline))
            .await
            .map_err(|failure| failure.error)
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Failure> {
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .header("authorization", self.bearer.0.as_str())
            .header("stripe-version", STRIPE_VERSION);
        if *method == Method::GET {
            request = request.query(form);
        } else {
            request = request.form(form);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.map_err(|e| network(&e))?;
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        let bytes = response.bytes().await.map_err(|e| network(&e))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            if body.is_null() {
                return Err(Failure {
                    error: ProviderError::new(
                        ErrorCode::ProviderFailed,
                        "the payments API answered a success that is not JSON",
                    ),
                    retry: false,
                });
            }
            return Ok(Answer { body, replayed });
        }
        Err(refusal(status, &body))
    }
}

fn network(error: &reqwest::Error) -> Failure {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not be reached"
    } else {
        "broke off the exchange"
    };
    Failure {
        // Display of a reqwest error names the URL; only the kind is kept.
        error: ProviderError::new(
            ErrorCode::UpstreamUnavailable,
            format!("the payments API {what}"),
        ),
        retry: true,
    }
}

/// The platform's reading of Stripe's error object.
fn refusal(status: StatusCode, body: &Value) -> Failure {
    let error = &body["error"];
    let kind = error["type"].as_str().unwrap_or_default();
    let code = error["code"].as_str().unwrap_or_default();
    // Stripe's messages name objects and amounts, never the key (a 401's shows four
    // characters of it, and is not quoted).
    let message = error["message"].as_str().unwrap_or("no message");
    let never = |error: ProviderError| Failure {
        error: error.with_retryable(false),
        retry: false,
    };
    match status.as_u16() {
        401 | 403 => never(ProviderError::new(
            ErrorCode::UpstreamCredentialsInvalid,
            format!(
                "the payments API refused the account's secret key ({})",
                status.as_u16()
            ),
        )),
        402 => {
            let reason = error["decline_code"].as_str().unwrap_or(code);
            let payment = error["payment_intent"]["id"].as_str().unwrap_or("none");
            never(ProviderError::new(
                ErrorCode::PaymentDeclined,
                format!("the payment was declined ({reason}): {message} (payment {payment})"),
            ))
        }
        409 => Failure {
            error: ProviderError::new(
                ErrorCode::IdempotencyInFlight,
                format!(
                    "the payments API is still running the first request of this idempotency key: {message}"
                ),
            ),
            retry: true,
        },
        429 => Failure {
            error: ProviderError::new(
                ErrorCode::RateLimited,
                "the payments API is rate limiting the account",
            ),
            retry: true,
        },
        500..=599 | 408 => Failure {
            error: ProviderError::new(
                ErrorCode::UpstreamUnavailable,
                format!("the payments API failed ({})", status.as_u16()),
            ),
            retry: true,
        },
        404 if code == "resource_missing" => never(ProviderError::not_found(message.to_owned())),
        _ if kind == "idempotency_error" => never(ProviderError::new(
            ErrorCode::IdempotencyKeyReused,
            format!("the idempotency key was used with other params: {message}"),
        )),
        _ if matches!(
            code,
            "payment_intent_unexpected_state" | "charge_already_refunded"
        ) =>
        {
            never(ProviderError::new(ErrorCode::Conflict, message.to_owned()))
        }
        _ => match error["param"].as_str() {
            Some(param) => never(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                &format!("/params/{}", our_param(param)),
                message.to_owned(),
            )),
            None => never(ProviderError::new(
                ErrorCode::ProviderFailed,
                format!(
                    "the payments API refused the call ({}): {message}",
                    status.as_u16()
                ),
            )),
        },
    }
}

/// The operation's param a Stripe param comes from.
fn our_param(stripe: &str) -> &str {
    match stripe {
        "amount_to_capture" => "amount",
        "intent" | "payment_intent" => "payment_id",
        "cancellation_reason" => "reason",
        other => other,
    }
}
