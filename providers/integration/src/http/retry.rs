//! Airbyte's error taxonomy, applied to every answer of every connector's calls:
//!
//! | answer | verdict | then |
//! |---|---|---|
//! | 2xx, 404 | the answer | the connector reads it |
//! | 401, 403 | credentials refused | an OAuth2 connection refreshes its token once and sends again; then `upstream_credentials_invalid` |
//! | 429 | rate limited | wait `Retry-After` (or the backoff), then `rate_limited` |
//! | 408, 5xx, no answer | transient | back off and send again, then `upstream_unavailable` |
//! | any other | refused | `provider_failed` |
//!
//! A request that may have reached the system (a 500, a connection broken after sending) is
//! sent again only when that is harmless: an idempotent method, or a call the connector
//! marked replay-safe. One the system cannot have processed (a refused connection, 408, 429,
//! 503) is sent again whatever its method. Retries stop at the [`Retries`] budget: attempts
//! and total time, so a call never outlives the caller's patience.

use std::time::Duration;

use backon::ExponentialBuilder;
use reqwest::StatusCode;
use switchyard_egress::Refusal;
use switchyard_spi::{ErrorCode, ProviderError};
use tokio::time::Instant;

use super::tokens::RefreshError;

/// How the taxonomy reads an answer. A connector's [`super::Classify`] hook answers one for
/// answers the status alone misjudges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand the response to the connector.
    Answer,
    /// The credentials were refused: refresh the OAuth2 token once and send again
    /// (Salesforce's `INVALID_SESSION_ID`).
    Reauthorize,
    /// The system asks to slow down (Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`).
    RateLimited,
    /// The system failed for now: back off and send again.
    Unavailable,
    /// The system refuses this call; sending it again will not help.
    Refused,
}

impl Verdict {
    /// The taxonomy by status alone.
    pub(crate) fn of(status: StatusCode) -> Verdict {
        match status.as_u16() {
            200..=299 | 404 => Verdict::Answer,
            401 | 403 => Verdict::Reauthorize,
            429 => Verdict::RateLimited,
            408 | 500..=599 => Verdict::Unavailable,
            _ => Verdict::Refused,
        }
    }
}

/// A call's retry budget: at most `attempts` sends, and no retry that would end past `total`
/// after the call began (a `Retry-After` beyond it fails the call at once as `rate_limited`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Retries {
    pub(super) attempts: usize,
    pub(super) total: Duration,
}

impl Default for Retries {
    /// Five sends within 20 s: inside the runtime's 30 s call timeout, so a synchronous
    /// action (`check`, `upsert`) answers the taxonomy's error rather than a timeout. A
    /// sync retries whole pages itself on top.
    fn default() -> Self {
        Retries {
            attempts: 5,
            total: Duration::from_secs(20),
        }
    }
}

impl Retries {
    /// Exponential backoff with jitter, so the connections of many tenants that failed
    /// together do not retry together.
    pub(super) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.attempts.saturating_sub(1))
    }
}

/// Whether a failed request may have been processed by the system.
#[derive(Debug, Clone, Copy)]
pub(super) enum Replay {
    /// It cannot have been: any method may be sent again.
    Safe,
    /// It may have been: only an idempotent or replay-safe call is sent again.
    IfIdempotent,
}

impl Replay {
    /// A request whose connection was never made never reached the system.
    pub(super) fn of_send(error: &reqwest::Error) -> Replay {
        if error.is_connect() {
            Replay::Safe
        } else {
            Replay::IfIdempotent
        }
    }
}

#[derive(Debug)]
enum Retry {
    Never,
    /// At once: the token was refreshed.
    Now,
    Later {
        after: Option<Duration>,
        replay: Replay,
    },
}

/// One attempt's failure: the error the call answers if it is the last, and whether and
/// when to try again.
#[derive(Debug)]
pub(super) struct Failure {
    error: ProviderError,
    retry: Retry,
}

impl Failure {
    pub(super) fn retryable(&self, replayable: bool) -> bool {
        match self.retry {
            Retry::Never => false,
            Retry::Now
            | Retry::Later {
                replay: Replay::Safe,
                ..
            } => true,
            Retry::Later {
                replay: Replay::IfIdempotent,
                ..
            } => replayable,
        }
    }

    /// The wait before the next attempt: the backoff's, or longer when the system asked
    /// for it; `None` (give up) when the backoff is spent or the wait ends past `deadline`.
    pub(super) fn delay(&self, backoff: Option<Duration>, deadline: Instant) -> Option<Duration> {
        let backoff = backoff?;
        let wait = match self.retry {
            Retry::Now => Duration::ZERO,
            Retry::Later { after, .. } => backoff.max(after.unwrap_or_default()),
            Retry::Never => return None,
        };
        (Instant::now() + wait <= deadline).then_some(wait)
    }

    pub(super) fn into_error(self) -> ProviderError {
        self.error
    }

    fn never(error: ProviderError) -> Failure {
        Failure {
            error,
            retry: Retry::Never,
        }
    }

    /// The limiter would hold the call past its budget.
    pub(super) fn held_too_long(system: &str, wait: Duration) -> Failure {
        Failure::never(ProviderError::new(
            ErrorCode::RateLimited,
            format!(
                "{system} is rate limiting the connection: the next call may go in {} s, past \
                 the call's retry budget",
                wait.as_secs_f64().ceil()
            ),
        ))
    }

    pub(super) fn refresh(system: &str, error: RefreshError) -> Failure {
        match error {
            RefreshError::Refused { reason } => Failure::never(
                ProviderError::new(
                    ErrorCode::UpstreamCredentialsInvalid,
                    format!(
                        "{system}'s token endpoint refused the connection's credentials ({reason})"
                    ),
                )
                .with_retryable(false),
            ),
            RefreshError::Unavailable(detail) => Failure {
                error: unavailable(system, format_args!("token endpoint: {detail}")),
                retry: Retry::Later {
                    after: None,
                    replay: Replay::Safe,
                },
            },
            RefreshError::Other(error) => Failure::never(error),
        }
    }

    /// No answer: the connection failed, timed out or broke off.
    pub(super) fn network(system: &str, error: &reqwest::Error, replay: Replay) -> Failure {
        if let Some(refusal) = Refusal::of(error) {
            return Failure::never(refusal.at(""));
        }
        Failure {
            error: unavailable(system, cause(error)),
            retry: Retry::Later {
                after: None,
                replay,
            },
        }
    }

    pub(super) fn answer_not_json(system: &str, error: &serde_json::Error) -> Failure {
        Failure::never(ProviderError::new(
            ErrorCode::ProviderFailed,
            format!("{system} answered a body that is not JSON: {error}"),
        ))
    }

    /// The credentials were refused and the token has been marked for refresh.
    pub(super) fn reauthorize(system: &str, status: StatusCode) -> Failure {
        Failure {
            retry: Retry::Now,
            ..Failure::credentials(system, status)
        }
    }

    pub(super) fn credentials(system: &str, status: StatusCode) -> Failure {
        Failure::never(
            ProviderError::new(
                ErrorCode::UpstreamCredentialsInvalid,
                format!("{system} refused the connection's credentials ({status})"),
            )
            .with_retryable(false),
        )
    }

    pub(super) fn rate_limited(system: &str, after: Option<Duration>) -> Failure {
        let asked = after.map_or(String::new(), |after| {
            format!(" (it asked to wait {} s)", after.as_secs_f64().ceil())
        });
        Failure {
            error: ProviderError::new(
                ErrorCode::RateLimited,
                format!("{system} is rate limiting the connection{asked}"),
            ),
            retry: Retry::Later {
                after,
                replay: Replay::Safe,
            },
        }
    }

    pub(super) fn unavailable(
        system: &str,
        status: StatusCode,
        after: Option<Duration>,
    ) -> Failure {
        // 408 and 503 say the request was not handled; a 500, 502 or 504 may have been.
        let replay = match status {
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => Replay::Safe,
            _ => Replay::IfIdempotent,
        };
        Failure {
            error: unavailable(system, format_args!("answered {status}")),
            retry: Retry::Later { after, replay },
        }
    }

    pub(super) fn refused(system: &str, status: StatusCode) -> Failure {
        Failure::never(ProviderError::new(
            ErrorCode::ProviderFailed,
            format!("{system} refused the call ({status})"),
        ))
    }
}

/// `upstream_unavailable` for `system` (retryable).
fn unavailable(system: &str, detail: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(
        ErrorCode::UpstreamUnavailable,
        format!("{system}: {detail}"),
    )
}

/// What went wrong with a transport error, and its innermost cause (`Connection refused (os
/// error 111)`). Never reqwest's own text, which quotes the URL.
pub(super) fn cause(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut root = None;
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        if !source.is::<reqwest::Error>() {
            root = Some(source);
        }
        next = source.source();
    }
    match root {
        Some(root) => format!("{what}: {root}"),
        None => what.to_owned(),
    }
}
