//! A connection's OAuth2 tokens: the access token, the newest refresh token (systems that
//! rotate them answer a new one with every access token, and the old one stops working), and
//! when to refresh. One [`Tokens`] handle per tenant × connection, cloned into every call, so
//! that concurrent calls needing a new token share one refresh instead of racing N (with a
//! rotating system, N refreshes from one refresh token would revoke all but one).
//!
//! A token is refreshed before it expires (at 90% of its lifetime, and at most 60 s early),
//! at least daily when the system does not say when it expires, and once when the system
//! refuses it (a 401, Salesforce's `INVALID_SESSION_ID`). Kept through a [`TokenStore`], so a
//! rotated refresh token survives a restart.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::Client;
use serde::{Deserialize, Serialize};
use switchyard_egress::Egress;
use switchyard_spi::ProviderError;
use tokio::sync::Mutex;

use super::{OAuth2, Secret};

/// The earliest a token is refreshed before its expiry; shorter-lived tokens are refreshed
/// at 90% of their lifetime.
const MARGIN_SECONDS: u64 = 60;

/// A token whose expiry the system does not state is refreshed this long after it was
/// obtained (Nango's "at least daily").
const DAY_SECONDS: u64 = 24 * 60 * 60;

/// An OAuth2 token as obtained, and as a [`TokenStore`] keeps it. `Debug` shows no secret;
/// the serialized form holds them (it is for the store alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(super) access_token: Secret,
    pub(super) refresh_token: Option<Secret>,
    /// Seconds since the Unix epoch.
    pub(super) obtained_at: u64,
    pub(super) expires_at: Option<u64>,
    /// Where the API lives, when the token endpoint says (Salesforce's `instance_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) instance_url: Option<String>,
    /// The credentials it was obtained with ([`OAuth2::origin`]).
    pub(super) origin: String,
}

impl Token {
    /// Whether the token should be refreshed at `now` rather than used.
    fn due(&self, now: u64) -> bool {
        let daily = self.obtained_at.saturating_add(DAY_SECONDS);
        let refresh_at = match self.expires_at {
            Some(expires_at) => {
                let lifetime = expires_at.saturating_sub(self.obtained_at);
                expires_at
                    .saturating_sub(MARGIN_SECONDS.min(lifetime / 10))
                    .min(daily)
            }
            None => daily,
        };
        now >= refresh_at
    }
}

/// Where a connection's tokens are kept between processes: SYNC keeps them in the tenant's
/// own store, so one tenant's tokens are out of every other tenant's reach.
#[async_trait]
pub(crate) trait TokenStore: Send + Sync + 'static {
    /// The token kept for `connection`, if any.
    async fn load(&self, connection: &str) -> Result<Option<Token>, ProviderError>;

    /// Keeps `token` for `connection`, replacing the one before.
    async fn save(&self, connection: &str, token: &Token) -> Result<(), ProviderError>;
}

/// Tokens kept in memory only, for tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemoryTokenStore {
    tokens: std::sync::Mutex<std::collections::HashMap<String, Token>>,
}

#[cfg(test)]
#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn load(&self, connection: &str) -> Result<Option<Token>, ProviderError> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        Ok(tokens.get(connection).cloned())
    }

    async fn save(&self, connection: &str, token: &Token) -> Result<(), ProviderError> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.insert(connection.to_owned(), token.clone());
        Ok(())
    }
}

/// A refresh the token endpoint refused: what the sync reports as the
/// `integration.auth.failed` event. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthFailed {
    /// The connection, as the [`Tokens`] handle was named.
    pub(crate) connection: String,
    /// The token endpoint's error code (`invalid_grant`, `invalid_client`).
    pub(crate) reason: String,
}

type OnAuthFailed = Arc<dyn Fn(AuthFailed) + Send + Sync>;

/// Why no access token could be had.
#[derive(Debug)]
pub(crate) enum RefreshError {
    /// The token endpoint refused the credentials (`invalid_grant`, `invalid_client`).
    Refused { reason: String },
    /// It could not be reached, or answered no token.
    Unavailable(String),
    /// The egress guard refuses the token endpoint, or the token store failed.
    Other(ProviderError),
}

/// A connection's tokens, shared by all its calls. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Tokens {
    inner: Arc<Inner>,
}

struct Inner {
    connection: String,
    store: Arc<dyn TokenStore>,
    on_auth_failed: OnAuthFailed,
    /// Held across a refresh: the calls that need a token meanwhile wait for that one.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    loaded: bool,
    token: Option<Token>,
    /// The system refused the current access token.
    refused: bool,
    /// The credentials (their origin) whose last refresh was refused, and reported: their
    /// next refusals are not, until a refresh succeeds or the credentials change.
    failing: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("connection", &self.inner.connection)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// The tokens of `connection` (unique within the store, e.g. the engine instance's name),
    /// kept in `store`; `on_auth_failed` hears of each refused refresh (once per run of
    /// refusals of the same credentials).
    pub(crate) fn new(
        connection: impl Into<String>,
        store: Arc<dyn TokenStore>,
        on_auth_failed: impl Fn(AuthFailed) + Send + Sync + 'static,
    ) -> Tokens {
        Tokens {
            inner: Arc::new(Inner {
                connection: connection.into(),
                store,
                on_auth_failed: Arc::new(on_auth_failed),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Tokens kept in memory only, refusals reported nowhere: for tests.
    #[cfg(test)]
    pub(crate) fn in_memory(connection: impl Into<String>) -> Tokens {
        Tokens::new(connection, Arc::new(MemoryTokenStore::default()), |_| {})
    }

    /// The `instance_url` the token endpoint answered with the current token, if any.
    pub(super) async fn instance_url(&self) -> Option<String> {
        let state = self.inner.state.lock().await;
        state.token.as_ref()?.instance_url.clone()
    }

    /// An access token to send: the current one while it is good, else a new one from
    /// `grant`'s token endpoint (kept in the store before it is used).
    pub(super) async fn access(
        &self,
        grant: &OAuth2,
        client: &Client,
        egress: &Egress,
    ) -> Result<Secret, RefreshError> {
        let inner = &self.inner;
        let mut state = inner.state.lock().await;
        if !state.loaded {
            state.token = inner
                .store
                .load(&inner.connection)
                .await
                .map_err(RefreshError::Other)?;
            state.loaded = true;
        }
        // Checked on every call, not once: a handle kept across a config change (a hot swap,
        // a new authorization) must not go on with the old credentials' token.
        let origin = grant.origin();
        let current = state.token.as_ref().filter(|token| token.origin == origin);
        if let Some(token) = current
            && !state.refused
            && !token.due(unix_now())
        {
            return Ok(token.access_token.clone());
        }
        let rotated = current.and_then(|token| token.refresh_token.as_ref());
        match grant.request(client, egress, rotated).await {
            Ok(token) => {
                if let Err(error) = inner.store.save(&inner.connection, &token).await {
                    // The token still works; only a restart would lose a rotated refresh token.
                    tracing::warn!(
                        connection = %inner.connection,
                        code = %error.code,
                        "a refreshed OAuth2 token could not be kept: {}",
                        error.detail
                    );
                }
                let access = token.access_token.clone();
                *state = State {
                    loaded: true,
                    token: Some(token),
                    refused: false,
                    failing: None,
                };
                Ok(access)
            }
            Err(RefreshError::Refused { reason }) => {
                if state.failing.as_ref() != Some(&origin) {
                    state.failing = Some(origin);
                    (inner.on_auth_failed)(AuthFailed {
                        connection: inner.connection.clone(),
                        reason: reason.clone(),
                    });
                }
                Err(RefreshError::Refused { reason })
            }
            Err(other) => Err(other),
        }
    }

    /// The system refused `used`: the next call refreshes, unless a concurrent call already
    /// did (then `used` is no longer the current token and this is a no-op).
    pub(super) async fn invalidate(&self, used: &Secret) {
        let mut state = self.inner.state.lock().await;
        if state
            .token
            .as_ref()
            .is_some_and(|token| token.access_token == *used)
        {
            state.refused = true;
        }
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(obtained_at: u64, expires_at: Option<u64>) -> Token {
        Token {
            access_token: Secret("a".to_owned()),
            refresh_token: None,
            obtained_at,
            expires_at,
            instance_url: None,
            origin: String::new(),
        }
    }

    #[test]
    fn an_hour_token_is_refreshed_a_minute_before_it_expires() {
        let hour = token(1_000, Some(4_600));
        assert!(!hour.due(4_539));
        assert!(hour.due(4_540));
    }

    #[test]
    fn a_short_token_is_refreshed_at_nine_tenths_of_its_life() {
        let short = token(1_000, Some(1_100));
        assert!(!short.due(1_089));
        assert!(short.due(1_090));
    }

    #[test]
    fn a_token_is_refreshed_at_least_daily() {
        let unknown = token(1_000, None);
        assert!(!unknown.due(1_000 + DAY_SECONDS - 1));
        assert!(unknown.due(1_000 + DAY_SECONDS));
        let week = token(1_000, Some(1_000 + 7 * DAY_SECONDS));
        assert!(week.due(1_000 + DAY_SECONDS));
    }
}
