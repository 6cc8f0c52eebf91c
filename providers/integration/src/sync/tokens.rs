//! A connection's OAuth2 tokens kept in the tenant's own sync store ([`StoreTokens`]), and
//! the `integration.auth.failed` event when a refresh is refused.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use switchyard_spi::ProviderError;

use super::events::{AUTH_FAILED, Publisher};
use super::store::Store;
use crate::http::{AuthFailed, Token, TokenStore, Tokens};

/// [`TokenStore`] over one tenant's store: a rotated refresh token survives a restart, and
/// no other tenant's file holds it.
pub(crate) struct StoreTokens(pub(crate) Arc<Store>);

#[async_trait]
impl TokenStore for StoreTokens {
    async fn load(&self, connection: &str) -> Result<Option<Token>, ProviderError> {
        let Some(text) = self.0.token(connection).await? else {
            return Ok(None);
        };
        // A token kept by another version that this one cannot read is as good as none: the
        // connection obtains a new one.
        Ok(serde_json::from_str(&text).ok())
    }

    async fn save(&self, connection: &str, token: &Token) -> Result<(), ProviderError> {
        let text = serde_json::to_string(token)
            .map_err(|e| ProviderError::internal(format!("a token is not serializable: {e}")))?;
        self.0.set_token(connection, Some(&text)).await
    }
}

/// The tokens of one tenant's connection, shared by its instances (a reconfigure keeps the
/// handle, so an old and a new instance never refresh at once); a refused refresh is
/// published through the events settings of the instance started last.
pub(crate) fn tokens(
    connection: &'static str,
    store: Arc<Store>,
    events: Arc<Mutex<Option<Publisher>>>,
) -> Tokens {
    Tokens::new(
        connection,
        Arc::new(StoreTokens(store)),
        move |failed: AuthFailed| {
            let publisher = events.lock().ok().and_then(|p| p.clone());
            if let Some(publisher) = publisher {
                tokio::spawn(async move {
                    let data = json!({"connection": failed.connection, "reason": failed.reason});
                    publisher.publish_all(AUTH_FAILED, None, vec![data]).await;
                });
            }
        },
    )
}
