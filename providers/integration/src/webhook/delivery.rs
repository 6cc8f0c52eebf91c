//! Sending one message: Standard Webhooks signing, the attempts, and the waits between them.
//!
//! An attempt is a 2xx (delivered), a retryable failure (5xx, 429, no answer), or a refusal
//! (any other status: the receiver said no, and asking again will not change its mind).
//! Between retryable failures the wait is exponential with jitter (backon's schedule), or the
//! receiver's `Retry-After` when that is longer. The whole delivery fits in the tenant's
//! `max_total_ms`: an attempt or a wait that would not fit is not started.
//!
//! These retries are the webhook contract's own, not the runtime's call retries: the runtime
//! never retries a trigger (its errors are not `provider_unavailable` once anything was sent).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBuilder};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Client, StatusCode};
use sha2::Sha256;

use super::config::{Endpoint, SigningKey, WebhookConfig};
use super::store::Store;

/// An attempt is not started with less time than this left: it could only time out.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// The tenant's limits for one delivery (a trigger, or a redeliver).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub attempt_timeout: Duration,
    pub max_total: Duration,
}

impl Budget {
    pub fn of(config: &WebhookConfig) -> Self {
        Budget {
            max_attempts: config.max_attempts,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
            attempt_timeout: config.attempt_timeout,
            max_total: config.max_total,
        }
    }
}

/// What one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub delivered: bool,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

enum Attempt {
    Delivered(u16),
    Retryable {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    Refused {
        status: u16,
        error: String,
    },
}

/// Sends `body` as message `message_id` to `endpoint` until it is delivered, refused, or the
/// budget runs out, counting each attempt in `store`. The endpoint has passed the SSRF guard;
/// the client's resolver checks hostnames again at connect time. A failure to count is logged, not
/// returned: the attempt happened, and the outcome must still reach the caller.
pub async fn deliver(
    client: &Client,
    store: &Store,
    endpoint: &Endpoint,
    message_id: &str,
    body: &str,
    budget: Budget,
) -> Report {
    let deadline = Instant::now() + budget.max_total;
    let retries = usize::try_from(budget.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    let mut waits = ExponentialBuilder::default()
        .with_min_delay(budget.initial_backoff)
        .with_max_delay(budget.max_backoff)
        .with_jitter()
        .with_max_times(retries)
        .build();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = send(
            client,
            endpoint,
            message_id,
            body,
            budget.attempt_timeout.min(left),
        )
        .await;
        let (status, error) = match &attempt {
            Attempt::Delivered(status) => (Some(*status), None),
            Attempt::Retryable { status, error, .. } => (*status, Some(error.as_str())),
            Attempt::Refused { status, error } => (Some(*status), Some(error.as_str())),
        };
        if let Err(e) = store.record_attempt(message_id, status, error).await {
            tracing::error!(message_id, error = %e.detail, "could not count a webhook attempt");
        }
        let report = Report {
            delivered: matches!(attempt, Attempt::Delivered(_)),
            last_status: status,
            last_error: error.map(str::to_owned),
        };
        let Attempt::Retryable { retry_after, .. } = attempt else {
            return report;
        };
        let Some(backoff) = waits.next() else {
            return report;
        };
        let wait = backoff.max(retry_after.unwrap_or_default());
        if Instant::now() + wait + MIN_ATTEMPT > deadline {
            return report;
        }
        tokio::time::sleep(wait).await;
    }
}

async fn send(
    client: &Client,
    endpoint: &Endpoint,
    message_id: &str,
    body: &str,
    timeout: Duration,
) -> Attempt {
    let timestamp = unix_seconds();
    let response = client
        .post(endpoint.url.clone())
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature(&endpoint.key, message_id, timestamp, body),
        )
        .body(body.to_owned())
        .send()
        .await;
    match response {
        Ok(response) => judge(response.status(), response.headers()),
        Err(e) => Attempt::Retryable {
            status: None,
            error: describe(&e.without_url(), timeout),
            retry_after: None,
        },
    }
}

fn judge(status: StatusCode, headers: &HeaderMap) -> Attempt {
    if status.is_success() {
        Attempt::Delivered(status.as_u16())
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Attempt::Retryable {
            status: Some(status.as_u16()),
            error: format!("the receiver answered {status}"),
            retry_after: retry_after(headers, SystemTime::now()),
        }
    } else {
        Attempt::Refused {
            status: status.as_u16(),
            error: format!("the receiver answered {status}; not retried"),
        }
    }
}

/// `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`: the Standard Webhooks
/// signature. A new timestamp, so a new signature, on every attempt.
pub fn signature(key: &SigningKey, message_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length; `new_from_slice` only fails for fixed-size MACs.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC accepts any key length");
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A `Retry-After` of delta-seconds or an HTTP date; a date in the past means now.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// Why a request got no answer, from the innermost cause (a refused connection, the SSRF
/// guard's refusal). Built from an error stripped of its URL: the URL may carry a token.
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let what = if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    format!("{what}: {cause}")
}

pub fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn the_signature_matches_the_reference_implementations_vector() {
        // The test vector of the `standardwebhooks` crate, the spec authors' implementation.
        let config = WebhookConfig::from_value(serde_json::json!({"endpoints": {"e": {
            "url": "https://example.com", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
        }}}))
        .unwrap();
        assert_eq!(
            signature(
                &config.endpoints["e"].key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                r#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&earlier).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn only_5xx_and_429_are_retried() {
        let headers = HeaderMap::new();
        assert!(matches!(
            judge(StatusCode::NO_CONTENT, &headers),
            Attempt::Delivered(204)
        ));
        for retried in [500, 502, 503, 504, 429] {
            let status = StatusCode::from_u16(retried).unwrap();
            assert!(
                matches!(judge(status, &headers), Attempt::Retryable { .. }),
                "{retried}"
            );
        }
        for refused in [301, 400, 401, 404, 410] {
            let status = StatusCode::from_u16(refused).unwrap();
            assert!(
                matches!(judge(status, &headers), Attempt::Refused { .. }),
                "{refused}"
            );
        }
    }
}
