//! How a connection authenticates: a fixed header (an API key, a bearer token), or OAuth2,
//! whose token requests (the client credentials grant, the refresh token grant) the `oauth2`
//! crate builds and reads, sent through the connection's own egress-guarded client.

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, ExtraTokenFields, HttpClientError, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use reqwest::{Client, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchyard_egress::{Egress, Refusal};

use super::retry::cause;
use super::tokens::{RefreshError, Token, unix_now};
use super::{Secret, Tokens};

/// How a connection authenticates its calls.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// No credentials (a public API).
    None,
    /// A fixed header, e.g. `X-Shopify-Access-Token: <token>` or `Authorization: Bearer <key>`.
    Header { name: String, value: Secret },
    /// An OAuth2 access token, obtained by `grant` and kept (with its refresh token) by
    /// `tokens`, sent as `Authorization: Bearer`.
    OAuth2 { grant: OAuth2, tokens: Tokens },
}

impl Auth {
    /// `Authorization: Bearer <token>` with a fixed token (an API key used as a bearer).
    pub(crate) fn bearer(token: &Secret) -> Auth {
        Auth::Header {
            name: "authorization".to_owned(),
            value: Secret(format!("Bearer {}", token.0)),
        }
    }
}

/// An OAuth2 client and the grant that obtains its access tokens.
#[derive(Debug, Clone)]
pub(crate) struct OAuth2 {
    pub(crate) token_url: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) grant: Grant,
    /// Scopes asked for; none asks for the client's default.
    pub(crate) scopes: Vec<String>,
    /// Sends the client id and secret as form fields of the token request (Salesforce's
    /// documented way) instead of HTTP Basic authentication (RFC 6749's preferred one).
    pub(crate) credentials_in_body: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Grant {
    /// The client's own credentials obtain the token (machine to machine).
    ClientCredentials,
    /// The refresh token of an authorization code grant the tenant completed elsewhere (an
    /// `x-secret` of its config). A system that rotates refresh tokens answers a new one
    /// with every access token; [`Tokens`] keeps the newest.
    RefreshToken(Secret),
}

/// The token answer's fields beyond RFC 6749's that a connector may need.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Extra {
    /// Where the API of the org that granted the token lives (Salesforce).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_url: Option<String>,
}

impl ExtraTokenFields for Extra {}

type Answer = StandardTokenResponse<Extra, BasicTokenType>;

type Oauth2Client = oauth2::Client<
    BasicErrorResponse,
    Answer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

impl OAuth2 {
    /// What identifies the credentials a token was obtained with: a kept token whose
    /// origin differs (the tenant changed its config, e.g. authorized again) is not used.
    pub(super) fn origin(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.token_url.as_str());
        hash.update([0]);
        hash.update(&self.client_id);
        hash.update([0]);
        match &self.grant {
            Grant::ClientCredentials => hash.update("client_credentials"),
            Grant::RefreshToken(token) => {
                hash.update("refresh_token\0");
                hash.update(&token.0);
            }
        }
        for scope in &self.scopes {
            hash.update([0]);
            hash.update(scope);
        }
        hex::encode(hash.finalize())
    }

    /// Asks the token endpoint for a new access token, with `rotated` (the newest refresh
    /// token kept) in place of the configured one when there is one.
    pub(super) async fn request(
        &self,
        client: &Client,
        egress: &Egress,
        rotated: Option<&Secret>,
    ) -> Result<Token, RefreshError> {
        egress
            .vet_url(&self.token_url)
            .await
            .map_err(|refusal| RefreshError::Other(refusal.at("")))?;
        let mut oauth = Oauth2Client::new(ClientId::new(self.client_id.clone())).set_auth_type(
            if self.credentials_in_body {
                AuthType::RequestBody
            } else {
                AuthType::BasicAuth
            },
        );
        if let Some(secret) = &self.client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.0.clone()));
        }
        let oauth = oauth.set_token_uri(TokenUrl::from_url(self.token_url.clone()));
        let scopes = self.scopes.iter().cloned().map(Scope::new);
        let (answer, used) = match &self.grant {
            Grant::ClientCredentials => (
                oauth
                    .exchange_client_credentials()
                    .add_scopes(scopes)
                    .request_async(client)
                    .await,
                None,
            ),
            Grant::RefreshToken(configured) => {
                let used = rotated.unwrap_or(configured);
                let refresh = RefreshToken::new(used.0.clone());
                let answer = oauth
                    .exchange_refresh_token(&refresh)
                    .add_scopes(scopes)
                    .request_async(client)
                    .await;
                (answer, Some(used.clone()))
            }
        };
        let answer = answer.map_err(refresh_error)?;
        let obtained_at = unix_now();
        Ok(Token {
            access_token: Secret(answer.access_token().secret().clone()),
            // A system that does not rotate answers no refresh token: the one used stays.
            refresh_token: answer
                .refresh_token()
                .map(|token| Secret(token.secret().clone()))
                .or(used),
            obtained_at,
            expires_at: answer
                .expires_in()
                .map(|lifetime| obtained_at + lifetime.as_secs()),
            instance_url: answer.extra_fields().instance_url.clone(),
            origin: self.origin(),
        })
    }
}

/// The token endpoint's failure, told without its body (which may echo a token) or URL.
fn refresh_error(
    error: RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
) -> RefreshError {
    match error {
        RequestTokenError::ServerResponse(answer) => match answer.error() {
            // RFC 6749 errors that say the server failed, not the credentials.
            BasicErrorResponseType::Extension(code)
                if code == "server_error" || code == "temporarily_unavailable" =>
            {
                RefreshError::Unavailable(format!("it answered {code}"))
            }
            code => RefreshError::Refused {
                reason: code.to_string(),
            },
        },
        RequestTokenError::Request(HttpClientError::Reqwest(error)) => match Refusal::of(&error) {
            Some(refusal) => RefreshError::Other(refusal.at("")),
            None => RefreshError::Unavailable(cause(&error)),
        },
        RequestTokenError::Request(_) => {
            RefreshError::Unavailable("the request could not be made".to_owned())
        }
        // A proxy's error page, or a 2xx without an access token.
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => RefreshError::Unavailable(
            "it answered something that is not an OAuth2 token response".to_owned(),
        ),
    }
}
