//! The connection's OAuth2 session with the org: an access token from
//! `<login_url>/services/oauth2/token` (the client credentials grant, or the refresh token
//! grant when the config holds a refresh token) and the `instance_url` that token is good for.
//!
//! Salesforce answers no `expires_in` (a session lasts as long as the org's session timeout
//! and ends early on a logout), so a token is used until a call answers 401
//! `INVALID_SESSION_ID`; then one new token is fetched (concurrent calls that saw the same
//! expired token share it) and the call is sent once more. A token request the org refuses
//! (`invalid_grant` for a revoked refresh token, `invalid_client`) is
//! `upstream_credentials_invalid`.

use std::sync::Arc;

use reqwest::{Method, Url};
use serde::Deserialize;
use switchyard_egress::Egress;
use switchyard_spi::{ErrorCode, ProviderError};
use tokio::sync::Mutex;

use crate::http::{Api, Auth, Secret};

/// How the connection proves itself to the token endpoint.
pub(super) enum Grant {
    ClientCredentials,
    RefreshToken(Secret),
}

/// One access token, with the client that sends it.
pub(super) struct Session {
    pub(super) api: Api,
    /// The org's instance (`https://<domain>.my.salesforce.com`), which data paths join.
    pub(super) instance: Url,
    /// Counts the tokens this connection fetched, so a caller holding an expired one asks for
    /// a new one only if nobody has already.
    generation: u64,
}

/// The token endpoint's answer (the fields used; `issued_at`, `signature`, `id` are not).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    instance_url: String,
}

pub(super) struct Sessions {
    token_url: Url,
    client_id: String,
    client_secret: Secret,
    grant: Grant,
    egress: Egress,
    /// Sends the token requests: no credentials of its own, they are in the request.
    token_api: Api,
    current: Mutex<Option<Arc<Session>>>,
}

impl Sessions {
    pub(super) fn new(
        login_url: &Url,
        client_id: String,
        client_secret: Secret,
        grant: Grant,
        egress: Egress,
    ) -> Result<Self, ProviderError> {
        let token_url = login_url
            .join("/services/oauth2/token")
            .map_err(|e| ProviderError::internal(format!("token URL: {e}")))?;
        Ok(Sessions {
            token_url,
            client_id,
            client_secret,
            grant,
            token_api: Api::new("salesforce", egress.clone(), Auth::None)?,
            egress,
            current: Mutex::new(None),
        })
    }

    /// The session to call with: the current one, or a new one when there is none or when
    /// `expired` (a session a call was refused with) is still the current one.
    pub(super) async fn get(
        &self,
        expired: Option<&Session>,
    ) -> Result<Arc<Session>, ProviderError> {
        let mut current = self.current.lock().await;
        if let Some(session) = current.as_ref()
            && expired.is_none_or(|e| e.generation != session.generation)
        {
            return Ok(session.clone());
        }
        let generation = current.as_ref().map_or(1, |s| s.generation + 1);
        let session = Arc::new(self.fetch(generation).await?);
        *current = Some(session.clone());
        Ok(session)
    }

    async fn fetch(&self, generation: u64) -> Result<Session, ProviderError> {
        let mut url = self.token_url.clone();
        {
            let mut form = url.query_pairs_mut();
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_secret", &self.client_secret.0);
            match &self.grant {
                Grant::ClientCredentials => {
                    form.append_pair("grant_type", "client_credentials");
                }
                Grant::RefreshToken(token) => {
                    form.append_pair("grant_type", "refresh_token");
                    form.append_pair("refresh_token", &token.0);
                }
            }
        }
        let answer = self
            .token_api
            .send(Method::POST, url, None)
            .await
            .map_err(|e| match e.code {
                ErrorCode::UpstreamUnavailable | ErrorCode::RateLimited => e,
                // Whatever else the token endpoint refuses (400 invalid_grant, invalid_client,
                // 401) is the connection's credentials.
                _ => ProviderError::new(
                    ErrorCode::UpstreamCredentialsInvalid,
                    "salesforce refused the connection's credentials (token request)",
                ),
            })?;
        let token: TokenAnswer = serde_json::from_value(answer.body).map_err(|_| {
            ProviderError::new(
                ErrorCode::ProviderFailed,
                "salesforce's token answer has no access_token or instance_url",
            )
        })?;
        let instance = Url::parse(&token.instance_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorCode::ProviderFailed,
                    "salesforce's token answer names an instance_url that is not an http(s) URL",
                )
            })?;
        let auth = Auth::Header {
            name: "authorization".into(),
            value: Secret(format!("Bearer {}", token.access_token)),
        };
        Ok(Session {
            api: Api::new("salesforce", self.egress.clone(), auth)?,
            instance,
            generation,
        })
    }
}
